"""Staff sign-in over real HTTP: passwords, TOTP for lessor roles, lockout, sessions, CSRF, rate limits."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
import requests

from bff.demo import DEMO_PASSWORD
from bff.demo import DEMO_RECOVERY_CODES
from tests.common.totp import fresh_code

pytestmark = pytest.mark.db
TIMEOUT = 10
SALES_A = "sales.pudong@demo.leaseline.cn"
ADMIN_A = "admin.pudong@demo.leaseline.cn"
RISK1 = "risk1@demo.leaseline.cn"


def csrf(session: requests.Session, url: str) -> str:
    page = session.get(url, timeout=TIMEOUT)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, page.text[:200]
    return match.group(1)


#: the session cookies of lessor sessions signed in by :func:`sign_in`, by (server, account): see there
_SIGNED_IN: dict[tuple[str, str], str] = {}


def sign_in(base: str, email: str, password: str = DEMO_PASSWORD, code: str | None = None) -> requests.Session:
    """A signed-in session (the TOTP step done when ``code`` is given or the role needs it).

    A lessor account's TOTP code opens one session only (RFC 6238 §5.2), and its next code comes 30 seconds
    later: for a lessor account without an explicit ``code``, a session this helper signed in before is handed
    out again while it is still signed in (a copy of its cookie), as a browser stays signed in; otherwise it signs
    in with a code no other test used (tests/common/totp.py)."""
    key = (base, email)
    if code is None and key in _SIGNED_IN:
        s = requests.Session()
        s.cookies.set("session", _SIGNED_IN[key])
        if s.get(f"{base}/account", timeout=TIMEOUT, allow_redirects=False).status_code == 200:
            return s
        s.close()
        del _SIGNED_IN[key]
    s = requests.Session()
    r = s.post(f"{base}/login", data={"email": email, "password": password, "csrf_token": csrf(s, f"{base}/login")},
               timeout=TIMEOUT, allow_redirects=False)
    assert r.status_code == 302, r.text[:300]
    if r.headers["Location"].endswith("/login/second-factor"):
        token = csrf(s, f"{base}/login/second-factor")
        r = s.post(f"{base}/login/second-factor", timeout=TIMEOUT, allow_redirects=False,
                   data={"code": code or fresh_code(email), "csrf_token": token})
        assert r.status_code == 302, r.text[:300]
        if code is None:
            _SIGNED_IN[key] = str(s.cookies["session"])
    return s


@pytest.fixture
def base(bff_server: Any) -> str:
    return str(bff_server.url)


def test_dealer_staff_sign_in_with_password_and_see_their_account(base: str) -> None:
    with sign_in(base, SALES_A) as s:
        page = s.get(f"{base}/account", timeout=TIMEOUT)
        assert page.status_code == 200 and SALES_A in page.text and "上海浦东" in page.text


def test_lessor_roles_need_the_second_factor(base: str) -> None:
    with requests.Session() as s:
        r = s.post(f"{base}/login", data={"email": RISK1, "password": DEMO_PASSWORD,
                                           "csrf_token": csrf(s, f"{base}/login")}, timeout=TIMEOUT,
                   allow_redirects=False)
        assert r.headers["Location"].endswith("/login/second-factor")
        # Not signed in yet: the account page sends to the login page.
        assert s.get(f"{base}/account", timeout=TIMEOUT, allow_redirects=False).status_code == 302
        token = csrf(s, f"{base}/login/second-factor")
        wrong = s.post(f"{base}/login/second-factor", data={"code": "000000", "csrf_token": token}, timeout=TIMEOUT)
        assert wrong.status_code == 401
        ok = s.post(f"{base}/login/second-factor", timeout=TIMEOUT, allow_redirects=False,
                    data={"code": fresh_code(RISK1), "csrf_token": token})
        assert ok.status_code == 302
        assert s.get(f"{base}/account", timeout=TIMEOUT).status_code == 200


def test_a_recovery_code_works_once(base: str) -> None:
    email = "risk2@demo.leaseline.cn"
    code = DEMO_RECOVERY_CODES[-1]
    with requests.Session() as s:
        s.post(f"{base}/login", data={"email": email, "password": DEMO_PASSWORD,
                                      "csrf_token": csrf(s, f"{base}/login")}, timeout=TIMEOUT)
        # the authenticator's six digits get a number pad; a recovery code has letters: a link switches the field
        page = s.get(f"{base}/login/second-factor", timeout=TIMEOUT).text
        assert re.search(r'<input id="code"[^>]*inputmode="numeric"', page) and 'data-testid="use-recovery"' in page
        page = s.get(f"{base}/login/second-factor?recovery=1", timeout=TIMEOUT).text
        field = re.search(r'<input id="code"[^>]*>', page)
        assert field and 'inputmode="text"' in field.group(0) and 'autocapitalize="characters"' in field.group(0)
        token = csrf(s, f"{base}/login/second-factor?recovery=1")
        wrong = s.post(f"{base}/login/second-factor", timeout=TIMEOUT,
                       data={"code": "NOPE-RECOVERY-0000", "recovery": "1", "csrf_token": token})
        assert wrong.status_code == 401 and re.search(r'<input id="code"[^>]*inputmode="text"', wrong.text)
        ok = s.post(f"{base}/login/second-factor", timeout=TIMEOUT, allow_redirects=False,
                    data={"code": code.lower(), "recovery": "1", "csrf_token": token})
        assert ok.status_code == 302
        assert s.get(f"{base}/account", timeout=TIMEOUT).status_code == 200
    with requests.Session() as s:
        s.post(f"{base}/login", data={"email": email, "password": DEMO_PASSWORD,
                                      "csrf_token": csrf(s, f"{base}/login")}, timeout=TIMEOUT)
        again = s.post(f"{base}/login/second-factor", timeout=TIMEOUT,
                       data={"code": code, "csrf_token": csrf(s, f"{base}/login/second-factor")})
        assert again.status_code == 401


def test_wrong_passwords_lock_the_account_and_are_audited(base: str, app: Any) -> None:
    from bff.auth.passwords import hash_secret

    # An account of its own: a locked demo account would fail the other tests for 15 minutes.
    email = "lock.me@demo.leaseline.cn"
    accounts = app.extensions["leaseline"].accounts
    accounts.ensure_user(email, "锁定测试", "sales", accounts.by_email(SALES_A)[0].dealer_id,
                         hash_secret(DEMO_PASSWORD), None, [])
    def message(response: requests.Response) -> str:
        found = re.search(r'<p class="field-error" role="alert">([^<]+)</p>', response.text)
        assert found, response.text[:300]
        return found.group(1)

    with requests.Session() as s:
        token = csrf(s, f"{base}/login")
        messages = set()
        for _ in range(5):
            r = s.post(f"{base}/login", data={"email": email, "password": "wrong", "csrf_token": token},
                       timeout=TIMEOUT)
            assert r.status_code == 401
            messages.add(message(r))
        # Locked: even the right password is refused, with the same message (it never says which).
        r = s.post(f"{base}/login", data={"email": email, "password": DEMO_PASSWORD, "csrf_token": token},
                   timeout=TIMEOUT)
        assert r.status_code == 401
        messages.add(message(r))
        assert len(messages) == 1
    events = app.extensions["leaseline"].audit.search(actor=email)
    assert any(e.action == "auth.lockout" for e in events)
    assert sum(e.action == "auth.sign_in" and e.outcome == "failure" for e in events) >= 6
    assert all(e.ip == "127.0.0.1" for e in events)


def test_an_unknown_email_gets_the_same_answer(base: str) -> None:
    with requests.Session() as s:
        r = s.post(f"{base}/login", data={"email": "nobody@example.com", "password": "x",
                                           "csrf_token": csrf(s, f"{base}/login")}, timeout=TIMEOUT)
        assert r.status_code == 401


def test_sign_in_without_csrf_token_is_refused(base: str) -> None:
    with requests.Session() as s:
        r = s.post(f"{base}/login", data={"email": SALES_A, "password": DEMO_PASSWORD}, timeout=TIMEOUT)
        assert r.status_code == 400


def test_session_is_rotated_on_sign_in(base: str) -> None:
    with requests.Session() as s:
        csrf(s, f"{base}/login")
        before = s.cookies.get("session")
        r = s.post(f"{base}/login", data={"email": SALES_A, "password": DEMO_PASSWORD,
                                           "csrf_token": csrf(s, f"{base}/login")}, timeout=TIMEOUT,
                   allow_redirects=False)
        assert r.status_code == 302
        assert s.cookies.get("session") != before
        cookie = r.headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_sign_out_ends_the_session(base: str) -> None:
    with sign_in(base, SALES_A) as s:
        token = csrf(s, f"{base}/account")
        assert s.post(f"{base}/logout", data={"csrf_token": token}, timeout=TIMEOUT).status_code == 200
        assert s.get(f"{base}/account", timeout=TIMEOUT, allow_redirects=False).status_code == 302


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """Move the sessions' clock (the live server runs in this process): bff.auth.clock alone, never ``time.time``,
    which every thread shares (the suite's worker booked its sweeps hours ahead when it was moved)."""
    from bff.auth import clock as sessions_clock

    offset = [0.0]
    real = sessions_clock.now
    monkeypatch.setattr(sessions_clock, "now", lambda: real() + offset[0])
    yield offset


def test_idle_timeout_after_30_minutes(base: str, clock: list[float]) -> None:
    with sign_in(base, SALES_A) as s:
        clock[0] = 29 * 60
        assert s.get(f"{base}/account", timeout=TIMEOUT, allow_redirects=False).status_code == 200
        clock[0] = 29 * 60 + 31 * 60  # the idle clock was refreshed at 29 min
        assert s.get(f"{base}/account", timeout=TIMEOUT, allow_redirects=False).status_code == 302


def test_absolute_timeout_after_12_hours(base: str, clock: list[float]) -> None:
    with sign_in(base, SALES_A) as s:
        for minutes in range(25, 12 * 60, 25):  # stay active all day
            clock[0] = minutes * 60
            assert s.get(f"{base}/account", timeout=TIMEOUT, allow_redirects=False).status_code == 200
        clock[0] = 12 * 3600 + 60
        assert s.get(f"{base}/account", timeout=TIMEOUT, allow_redirects=False).status_code == 302
        # the sessions' clock alone moved: every other thread's time.time() (the worker's deferrer) did not
        assert abs(time.time() - datetime.now(UTC).timestamp()) < 60


def test_a_deactivated_users_session_ends_at_the_next_request(base: str, app: Any) -> None:
    accounts = app.extensions["leaseline"].accounts
    from bff.auth.passwords import hash_secret

    dealer = accounts.by_email(ADMIN_A)[0].dealer_id
    uid = accounts.ensure_user("temp.sales@demo.leaseline.cn", "临时销售", "sales", dealer,
                               hash_secret(DEMO_PASSWORD), None, [])
    with sign_in(base, "temp.sales@demo.leaseline.cn") as victim, sign_in(base, ADMIN_A) as admin:
        assert victim.get(f"{base}/account", timeout=TIMEOUT).status_code == 200
        token = csrf(admin, f"{base}/staff/{uid}")
        r = admin.post(f"{base}/staff/{uid}/deactivate", data={"csrf_token": token}, timeout=TIMEOUT)
        assert r.status_code == 200 and 'data-testid="status">已停用' in r.text
        assert victim.get(f"{base}/account", timeout=TIMEOUT, allow_redirects=False).status_code == 302
    events = app.extensions["leaseline"].audit.search(action="auth.session_end")
    assert any(e.actor_label == "temp.sales@demo.leaseline.cn" and e.details.get("reason") == "deactivated"
               for e in events)


REDIS = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_up() -> bool:
    try:
        import redis

        with redis.Redis.from_url(REDIS, socket_connect_timeout=1) as r:
            return bool(r.ping())
    except Exception:  # noqa: BLE001 — no Redis here: that storage is skipped, memory is still tested
        return False


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_sign_in_is_rate_limited(db_url: str, storage: str) -> None:
    """flask-limiter in memory (one process) and in Redis (what several gunicorn workers share)."""
    from tests.conftest import LiveServer
    from tests.conftest import build_app

    if storage == "redis" and not redis_up():
        pytest.skip(f"no Redis at {REDIS}")
    redis_url = REDIS if storage == "redis" else ""
    if redis_url:
        import redis

        with redis.Redis.from_url(redis_url) as r:
            r.flushdb()
    limited = build_app(db_url, login_rate="3 per minute", redis_url=redis_url)
    try:
        with LiveServer(limited) as server, requests.Session() as s:
            token = csrf(s, f"{server.url}/login")
            codes = [s.post(f"{server.url}/login", data={"email": "x@example.com", "password": "x",
                                                         "csrf_token": token}, timeout=TIMEOUT).status_code
                     for _ in range(4)]
            assert codes == [401, 401, 401, 429]
        if redis_url:
            with redis.Redis.from_url(redis_url) as r:
                assert r.keys("LIMITS*"), "the counts live in Redis"
    finally:
        limited.extensions["leaseline"].db.dispose()


# -- cookies: Secure except on localhost, in every environment ------------------------------------------------

@pytest.mark.parametrize(("host", "secure"), [("example.com", True), ("leaseline.example.cn:8443", True),
                                              ("127.0.0.1", False), ("localhost:8000", False), ("[::1]:8000", False)])
def test_cookies_are_secure_except_on_localhost(base: str, host: str, secure: bool) -> None:
    """The session cookie (set by the login page's CSRF token) and the locale cookie, by the request's host."""
    with requests.Session() as s:
        page = s.get(f"{base}/login", headers={"Host": host}, timeout=TIMEOUT)
        session_cookie = page.headers["Set-Cookie"]
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
        # The CSRF check compares the page's token with the session's: send the session back by hand, since
        # requests keeps a Secure cookie for https only.
        cookie = session_cookie.split(";", 1)[0]
        locale = s.post(f"{base}/locale", data={"locale": "en", "next": "/login", "csrf_token": token},
                        headers={"Host": host, "Cookie": cookie, "Referer": f"https://{host}/login"},
                        timeout=TIMEOUT, allow_redirects=False)
        assert locale.status_code == 302, locale.text[:200]
        locale_cookie = next(c for c in locale.raw.headers.getlist("Set-Cookie") if c.startswith("locale="))
    for header in (session_cookie, locale_cookie):
        flags = [part.strip().lower() for part in header.split(";")[1:]]
        assert ("secure" in flags) is secure, header
        assert "httponly" in flags and "samesite=lax" in flags, header


def test_every_cookie_is_secure_on_a_public_host_in_development_too(db_url: str) -> None:
    """Not only production: the flags do not depend on LEASELINE_ENV."""
    from tests.conftest import build_app

    app = build_app(db_url, env="development")
    try:
        response = app.test_client().get("/login", base_url="http://staging.leaseline.example")
        assert all("Secure" in c for c in response.headers.getlist("Set-Cookie"))
        assert "Strict-Transport-Security" not in response.headers  # HSTS stays a production decision
    finally:
        app.extensions["leaseline"].db.dispose()
    production = build_app(db_url, env="production")
    try:  # behind a reverse proxy that forwards Host: 127.0.0.1, production cookies stay Secure
        response = production.test_client().get("/login", base_url="http://127.0.0.1:8000")
        assert all("Secure" in c for c in response.headers.getlist("Set-Cookie"))
    finally:
        production.extensions["leaseline"].db.dispose()


# -- modules: a dealer's switched-off module is absent and refused -----------------------------------------------

def test_requires_module_refuses_a_dealer_without_the_module(db_url: str) -> None:
    """A test-only view guarded by ``requires_module`` (no module has feature pages yet), and the nav helper."""
    from flask import render_template_string

    from bff.auth.passwords import hash_secret
    from bff.auth.session import requires
    from bff.auth.session import requires_module
    from tests.conftest import LiveServer
    from tests.conftest import build_app

    app = build_app(db_url)

    @requires("account.view")
    @requires_module("telemetry")
    def telemetry_page() -> str:
        return "telemetry works"

    def nav() -> str:
        return render_template_string("{% if module_on('telemetry') %}[telemetry]{% endif %}"
                                      "{% if module_on('basic_signing') %}[signing]{% endif %}")

    app.add_url_rule("/_test/telemetry", view_func=telemetry_page)
    app.add_url_rule("/_test/nav", view_func=nav)
    accounts = app.extensions["leaseline"].accounts
    group = accounts.ensure_group("模块测试集团")
    on = accounts.ensure_dealer(group, "模块开 4S 店", "南京", ["basic_signing"])
    off = accounts.ensure_dealer(group, "模块关 4S 店", "无锡", ["basic_signing"])
    accounts.set_modules(on, ["telemetry"])
    accounts.set_modules(off, [])
    for email, dealer in (("mod.on@demo.leaseline.cn", on), ("mod.off@demo.leaseline.cn", off)):
        accounts.ensure_user(email, email, "sales", dealer, hash_secret(DEMO_PASSWORD), None, [])
    try:
        with LiveServer(app) as server:
            url = server.url
            anonymous = requests.get(f"{url}/_test/telemetry", timeout=TIMEOUT, allow_redirects=False)
            assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
            assert requests.get(f"{url}/_test/nav", timeout=TIMEOUT).text == ""
            with sign_in(url, "mod.on@demo.leaseline.cn") as s:
                assert s.get(f"{url}/_test/telemetry", timeout=TIMEOUT).text == "telemetry works"
                assert s.get(f"{url}/_test/nav", timeout=TIMEOUT).text == "[telemetry][signing]"
            with sign_in(url, "mod.off@demo.leaseline.cn") as s:
                assert s.get(f"{url}/_test/telemetry", timeout=TIMEOUT).status_code == 404
                assert s.get(f"{url}/_test/nav", timeout=TIMEOUT).text == "[signing]"
                # Switched on by ops: the next request sees it (no cached module list across requests).
                accounts.set_modules(off, ["telemetry"])
                assert s.get(f"{url}/_test/telemetry", timeout=TIMEOUT).status_code == 200
            with sign_in(url, RISK1) as s:  # the lessor's staff work across dealers
                assert s.get(f"{url}/_test/telemetry", timeout=TIMEOUT).status_code == 200
    finally:
        app.extensions["leaseline"].db.dispose()


def test_requires_module_rejects_an_unknown_module() -> None:
    from bff.auth.session import requires_module

    with pytest.raises(ValueError, match="no_such_module"):
        requires_module("no_such_module")


# -- TOTP self-enrolment for new lessor staff ---------------------------------------------------------------------

def test_a_new_lessor_staff_member_sets_up_totp_after_their_password(base: str, app: Any) -> None:
    from bff.auth.passwords import hash_secret

    email = "new.risk@demo.leaseline.cn"
    accounts = app.extensions["leaseline"].accounts
    accounts.ensure_user(email, "新风控", "risk_officer_t1", None, hash_secret(DEMO_PASSWORD), None, [])
    with requests.Session() as s:
        r = s.post(f"{base}/login", data={"email": email, "password": DEMO_PASSWORD,
                                           "csrf_token": csrf(s, f"{base}/login")}, timeout=TIMEOUT,
                   allow_redirects=False)
        assert r.headers["Location"].endswith("/login/totp-setup")
        # The second-factor page also sends there; nothing is signed in yet.
        second = s.get(f"{base}/login/second-factor", timeout=TIMEOUT, allow_redirects=False)
        assert second.headers["Location"].endswith("/login/totp-setup")
        assert s.get(f"{base}/account", timeout=TIMEOUT, allow_redirects=False).status_code == 302
        page = s.get(f"{base}/login/totp-setup", timeout=TIMEOUT)
        assert page.status_code == 200 and 'src="data:image/svg+xml;base64,' in page.text
        assert page.headers["Cache-Control"] == "no-store"
        secret = re.search(r'data-testid="totp-secret">([A-Z2-7 ]+)<', page.text).group(1).replace(" ", "")  # type: ignore[union-attr]
        assert secret not in (s.cookies.get("session") or "")  # derived on the server, never in the cookie
        again = s.get(f"{base}/login/totp-setup", timeout=TIMEOUT)
        assert secret.replace(" ", "") in again.text.replace(" ", "")  # the same key until confirmed
        token = csrf(s, f"{base}/login/totp-setup")
        wrong = s.post(f"{base}/login/totp-setup", data={"code": "000000", "csrf_token": token}, timeout=TIMEOUT)
        assert wrong.status_code == 401 and "data:image/svg+xml" in wrong.text
        enrol_code = fresh_code(email, secret)
        done = s.post(f"{base}/login/totp-setup", timeout=TIMEOUT, data={"code": enrol_code, "csrf_token": token})
        assert done.status_code == 200 and done.headers["Cache-Control"] == "no-store"
        codes = re.findall(r"<li><code>([A-Z0-9-]+)</code></li>", done.text)
        assert len(codes) == 8 and len(set(codes)) == 8
        assert s.get(f"{base}/account", timeout=TIMEOUT).status_code == 200
        # Posting again changes nothing: the session was rotated (the old CSRF token is dead), and with a
        # fresh token there is no pending enrolment and the secret is set.
        replay = s.post(f"{base}/login/totp-setup", timeout=TIMEOUT, allow_redirects=False,
                        data={"code": enrol_code, "csrf_token": token})
        assert replay.status_code == 400
        replay = s.post(f"{base}/login/totp-setup", timeout=TIMEOUT, allow_redirects=False,
                        data={"code": enrol_code, "csrf_token": csrf(s, f"{base}/account")})
        assert replay.status_code == 302
    assert accounts.get(accounts.by_email(email)[0].id).totp_enabled
    # From now on: the ordinary second factor, with the app's codes or a recovery code (once).
    with sign_in(base, email, code=fresh_code(email, secret)) as s:
        assert s.get(f"{base}/account", timeout=TIMEOUT).status_code == 200
    with sign_in(base, email, code=codes[0].lower()) as s:
        assert s.get(f"{base}/account", timeout=TIMEOUT).status_code == 200
    events = app.extensions["leaseline"].audit.search(action="auth.totp_enrol", actor=email)
    assert [e.outcome for e in events] == ["success", "failure"]  # newest first


def test_enrolment_is_only_for_the_pending_lessor_account(base: str) -> None:
    with requests.Session() as s:  # no password step: nothing to enrol
        assert s.get(f"{base}/login/totp-setup", timeout=TIMEOUT, allow_redirects=False).headers[
            "Location"].endswith("/login")
    with requests.Session() as s:  # an account that has TOTP already goes to the ordinary second factor
        s.post(f"{base}/login", data={"email": RISK1, "password": DEMO_PASSWORD,
                                      "csrf_token": csrf(s, f"{base}/login")}, timeout=TIMEOUT)
        r = s.get(f"{base}/login/totp-setup", timeout=TIMEOUT, allow_redirects=False)
        assert r.headers["Location"].endswith("/login/second-factor")
