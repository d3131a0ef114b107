"""Staff sign-in over real HTTP: passwords, TOTP for lessor roles, lockout, sessions, CSRF, rate limits."""

from __future__ import annotations

import os
import re
import time
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
import requests

from bff.demo import DEMO_PASSWORD
from bff.demo import DEMO_RECOVERY_CODES
from bff.demo import DEMO_TOTP_SECRET

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


def sign_in(base: str, email: str, password: str = DEMO_PASSWORD, code: str | None = None) -> requests.Session:
    """A signed-in session (the TOTP step done when ``code`` is given or the role needs it)."""
    s = requests.Session()
    r = s.post(f"{base}/login", data={"email": email, "password": password, "csrf_token": csrf(s, f"{base}/login")},
               timeout=TIMEOUT, allow_redirects=False)
    assert r.status_code == 302, r.text[:300]
    if r.headers["Location"].endswith("/login/second-factor"):
        token = csrf(s, f"{base}/login/second-factor")
        r = s.post(f"{base}/login/second-factor", timeout=TIMEOUT, allow_redirects=False,
                   data={"code": code or pyotp.TOTP(DEMO_TOTP_SECRET).now(), "csrf_token": token})
        assert r.status_code == 302, r.text[:300]
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
                    data={"code": pyotp.TOTP(DEMO_TOTP_SECRET).now(), "csrf_token": token})
        assert ok.status_code == 302
        assert s.get(f"{base}/account", timeout=TIMEOUT).status_code == 200


def test_a_recovery_code_works_once(base: str) -> None:
    email = "risk2@demo.leaseline.cn"
    code = DEMO_RECOVERY_CODES[-1]
    with sign_in(base, email, code=code.lower()) as s:
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
    """Move the server's clock (the live server runs in this process)."""
    offset = [0.0]
    real = time.time
    monkeypatch.setattr("bff.auth.session.time.time", lambda: real() + offset[0])
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
