"""The second factor over real HTTP: a TOTP code opens one session only (RFC 6238 §5.2, OWASP ASVS 4.0.3 2.8.4),
also when two sign-ins race with it; a recovery code works once (ASVS 2.6.1), also when sign-ins race with it
or with other recovery codes of the same account."""

from __future__ import annotations

import threading
from datetime import UTC
from datetime import datetime
from typing import Any

import pyotp
import pytest
import requests

from bff.demo import DEMO_PASSWORD
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf

pytestmark = pytest.mark.db


def lessor(app: Any, email: str, recovery_codes: tuple[str, ...] = ()) -> pyotp.TOTP:
    """A lessor account of its own with its own authenticator (the demo accounts share one secret) and the
    recovery codes ``recovery_codes``."""
    from bff.auth.passwords import hash_secret

    secret = pyotp.random_base32()
    app.extensions["leaseline"].accounts.ensure_user(email, email, "risk_officer_t1", None, hash_secret(DEMO_PASSWORD),
                                                     secret, [hash_secret(code) for code in recovery_codes])
    return pyotp.TOTP(secret)


def password_step(base: str, email: str) -> tuple[requests.Session, str]:
    """A session past the password, on the second-factor page; returns it and that page's CSRF token."""
    s = requests.Session()
    r = s.post(f"{base}/login", timeout=TIMEOUT, allow_redirects=False,
               data={"email": email, "password": DEMO_PASSWORD, "csrf_token": csrf(s, f"{base}/login")})
    assert r.headers["Location"].endswith("/login/second-factor")
    return s, csrf(s, f"{base}/login/second-factor")


def second_factor(s: requests.Session, base: str, token: str, code: str) -> int:
    return s.post(f"{base}/login/second-factor", data={"code": code, "csrf_token": token}, timeout=TIMEOUT,
                  allow_redirects=False).status_code


def test_a_totp_code_signs_in_once(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    email = "replay.t1@demo.leaseline.cn"
    totp = lessor(app, email)
    step = totp.timecode(datetime.now(UTC))
    code = totp.generate_otp(step)
    first, token = password_step(base, email)
    assert second_factor(first, base, token, code) == 302
    second, token = password_step(base, email)
    assert second_factor(second, base, token, code) == 401  # the same code again: refused
    assert second.get(f"{base}/account", timeout=TIMEOUT, allow_redirects=False).status_code == 302
    assert second_factor(second, base, token, totp.generate_otp(step - 1)) == 401  # an older one too
    assert second_factor(second, base, token, totp.generate_otp(step + 1)) == 302  # the next one works
    events = app.extensions["leaseline"].audit.search(action="auth.second_factor", actor=email)
    assert any(e.outcome == "failure" and e.details.get("reason") == "totp_reused" for e in events)
    first.close()
    second.close()


def test_two_sign_ins_racing_with_one_code_let_one_in(bff_server: Any, app: Any) -> None:
    """Both pass the password and post the same code at the same moment: the conditional UPDATE lets one win."""
    base = bff_server.url
    email = "race.t1@demo.leaseline.cn"
    totp = lessor(app, email)
    code = totp.generate_otp(totp.timecode(datetime.now(UTC)))
    attempts = [password_step(base, email) for _ in range(4)]
    start = threading.Barrier(len(attempts))
    outcomes: list[int] = []

    def post(s: requests.Session, token: str) -> None:
        start.wait()
        outcomes.append(second_factor(s, base, token, code))

    threads = [threading.Thread(target=post, args=attempt) for attempt in attempts]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(outcomes) == [302, 401, 401, 401]
    for s, _ in attempts:
        s.close()


def race(base: str, email: str, codes: list[str]) -> list[int]:
    """One sign-in per code, each past the password, posting its code at the same moment; their statuses."""
    attempts = [password_step(base, email) for _ in codes]
    start = threading.Barrier(len(attempts))
    outcomes: list[int] = []

    def post(s: requests.Session, token: str, code: str) -> None:
        start.wait()
        outcomes.append(second_factor(s, base, token, code))

    threads = [threading.Thread(target=post, args=(*attempt, code)) for attempt, code in zip(attempts, codes,
                                                                                             strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for s, _ in attempts:
        s.close()
    return outcomes


def once(base: str, email: str, code: str) -> int:
    """A whole sign-in with ``code`` as the second factor: its status (302 signed in, 401 refused)."""
    s, token = password_step(base, email)
    with s:
        return second_factor(s, base, token, code)


def test_sign_ins_racing_with_one_recovery_code_let_one_in(bff_server: Any, app: Any) -> None:
    """Four sign-ins post the same recovery code at once: it works once (before the fix, each read the list,
    found the code, and wrote the list without it: all four signed in)."""
    base = bff_server.url
    email = "recovery.race@demo.leaseline.cn"
    codes = ("AAAA-BBBB-CCC2", "AAAA-BBBB-CCC3", "AAAA-BBBB-CCC4")
    lessor(app, email, codes)
    assert sorted(race(base, email, [codes[0]] * 4)) == [302, 401, 401, 401]
    assert once(base, email, codes[0]) == 401
    svc = app.extensions["leaseline"]
    user_id = svc.accounts.by_email(email)[0].id
    assert len(svc.accounts.secrets_of(user_id).recovery_codes) == 2
    events = svc.audit.search(action="auth.second_factor", actor=email)
    assert any(e.details.get("reason") == "recovery_code_reused" for e in events)
    assert once(base, email, codes[1].lower()) == 302  # the others still work (typed in any case)


def test_different_recovery_codes_used_at_once_are_each_used_up(bff_server: Any, app: Any) -> None:
    """Three sign-ins with three different codes at once all pass, and none of those codes works again (before the
    fix each wrote the list it had read less its own code, so the last write brought the others' codes back)."""
    base = bff_server.url
    email = "recovery.many@demo.leaseline.cn"
    codes = tuple(f"DDDD-EEEE-FFF{n}" for n in range(2, 8))
    lessor(app, email, codes)
    assert race(base, email, list(codes[:3])) == [302, 302, 302]
    assert [once(base, email, code) for code in codes[:3]] == [401, 401, 401]
    svc = app.extensions["leaseline"]
    user_id = svc.accounts.by_email(email)[0].id
    assert len(svc.accounts.secrets_of(user_id).recovery_codes) == 3
    assert [once(base, email, code) for code in codes[3:]] == [302, 302, 302]


def test_the_enrolment_code_does_not_sign_in_again(bff_server: Any, app: Any) -> None:
    """The code that confirmed a new authenticator was used: the next sign-in needs a later one."""
    import re

    from bff.auth.passwords import hash_secret

    base = bff_server.url
    email = "enrol.replay@demo.leaseline.cn"
    app.extensions["leaseline"].accounts.ensure_user(email, email, "auditor", None, hash_secret(DEMO_PASSWORD), None,
                                                     [])
    with requests.Session() as s:
        s.post(f"{base}/login", timeout=TIMEOUT,
               data={"email": email, "password": DEMO_PASSWORD, "csrf_token": csrf(s, f"{base}/login")})
        page = s.get(f"{base}/login/totp-setup", timeout=TIMEOUT).text
        secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")  # type: ignore[union-attr]
        totp = pyotp.TOTP(secret)
        code = totp.generate_otp(totp.timecode(datetime.now(UTC)))
        done = s.post(f"{base}/login/totp-setup", timeout=TIMEOUT,
                      data={"code": code, "csrf_token": csrf(s, f"{base}/login/totp-setup")})
        assert done.status_code == 200
    again, token = password_step(base, email)
    assert second_factor(again, base, token, code) == 401
    again.close()
