"""Server-side sessions over real HTTP (OWASP ASVS 4.0.3 V3): the cookie carries a random id, the server keeps
the session under the id's hash, and sign-out, "sign out everywhere" and deactivation end every copy at once."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import text

from bff.demo import DEMO_PASSWORD
from tests.integration.test_auth import ADMIN_A
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[2]


def rows(app: Any, where: str = "1 = 1", **params: object) -> int:
    """How many server-side sessions the BFF's database holds (matching ``where``)."""
    with app.extensions["leaseline"].db.engine.connect() as conn:
        return int(conn.execute(text(f"SELECT count(*) FROM web_sessions WHERE {where}"), params).scalar_one())


def copy_of(session: requests.Session) -> requests.Session:
    """Another browser holding a copy of ``session``'s session cookie (a stolen or synced cookie)."""
    thief = requests.Session()
    thief.cookies.set("session", session.cookies["session"])
    return thief


def opens(s: requests.Session, base: str, path: str = "/account") -> bool:
    r = s.get(f"{base}{path}", timeout=TIMEOUT, allow_redirects=False)
    assert r.status_code in (200, 302), (path, r.status_code)
    return r.status_code == 200


def staff(app: Any, email: str, role: str = "sales") -> str:
    """An account of its own for a test that ends sessions (the demo accounts serve every other test)."""
    from bff.auth.passwords import hash_secret

    accounts = app.extensions["leaseline"].accounts
    dealer = accounts.by_email(ADMIN_A)[0].dealer_id
    return str(accounts.ensure_user(email, email.split("@")[0], role, dealer, hash_secret(DEMO_PASSWORD), None, []))


def test_a_copied_cookie_is_dead_after_sign_out(bff_server: Any) -> None:
    """The probe's finding: a copy of the session cookie still opened /account and /applications after sign-out."""
    base = bff_server.url
    with sign_in(base, SALES_A) as owner, copy_of(owner) as thief:
        assert opens(thief, base) and opens(thief, base, "/applications")
        r = owner.post(f"{base}/logout", data={"csrf_token": csrf(owner, f"{base}/account")}, timeout=TIMEOUT,
                       allow_redirects=False)
        assert r.status_code == 302
        assert not opens(thief, base) and not opens(thief, base, "/applications")
        assert not opens(owner, base)


def test_the_cookie_is_a_random_id_and_the_server_keeps_only_its_hash(bff_server: Any, app: Any) -> None:
    with sign_in(bff_server.url, SALES_A) as s:
        cookie = s.cookies["session"]
        # no signed payload (itsdangerous: base64 data "." timestamp "." signature), only a 256-bit random id
        assert "." not in cookie and len(cookie) >= 43
        assert rows(app, "key = :k", k=cookie) == 0
        assert rows(app, "key = :k", k=hashlib.sha256(cookie.encode()).hexdigest()) == 1
        user_id = app.extensions["leaseline"].accounts.by_email(SALES_A)[0].id
        assert rows(app, "subject = :s", s=f"staff:{user_id}") >= 1


def test_what_a_session_holds_is_sealed_at_rest(bff_server: Any, app: Any) -> None:
    """A salesperson's session keeps the single-use links of their invitations (the invitations table has only
    hashes): a copy of the sessions table must not give them away, nor whose session is signed in how."""
    from tests.integration.test_invitations import invite

    base = bff_server.url
    with sign_in(base, SALES_A) as sales:
        _, link = invite(base, sales, "13800138202")
        key = hashlib.sha256(sales.cookies["session"].encode()).hexdigest()
        with app.extensions["leaseline"].db.engine.connect() as conn:
            stored = str(conn.execute(text("SELECT data FROM web_sessions WHERE key = :k"), {"k": key}).scalar_one())
    secret = link.rstrip("/").rsplit("/", 1)[1]
    assert secret not in stored and "uid" not in stored and "login_at" not in stored


def test_sign_in_starts_a_new_session_and_forgets_the_anonymous_one(bff_server: Any, app: Any) -> None:
    """Session fixation (ASVS 3.2.1): an id planted before sign-in never becomes a signed-in session."""
    base = bff_server.url
    with requests.Session() as s:
        token = csrf(s, f"{base}/login")
        planted = s.cookies["session"]
        assert rows(app, "key = :k", k=hashlib.sha256(planted.encode()).hexdigest()) == 1
        r = s.post(f"{base}/login", data={"email": SALES_A, "password": DEMO_PASSWORD, "csrf_token": token},
                   timeout=TIMEOUT, allow_redirects=False)
        assert r.status_code == 302 and s.cookies["session"] != planted
        assert rows(app, "key = :k", k=hashlib.sha256(planted.encode()).hexdigest()) == 0
        with requests.Session() as attacker:
            attacker.cookies.set("session", planted)
            assert not opens(attacker, base)


def test_sign_out_everywhere_ends_every_session_of_the_user_and_no_one_else_s(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    email = "everywhere@demo.leaseline.cn"
    user_id = staff(app, email)
    with sign_in(base, email) as phone, sign_in(base, email) as tablet, copy_of(phone) as thief, \
            sign_in(base, SALES_A) as colleague:
        page = phone.get(f"{base}/account", timeout=TIMEOUT).text
        assert 'data-testid="sign-out-everywhere"' in page and 'data-testid="session-count">2<' in page
        r = phone.post(f"{base}/account/sign-out-everywhere", data={"csrf_token": csrf(phone, f"{base}/account")},
                       timeout=TIMEOUT, allow_redirects=False)
        assert r.status_code == 303 and "/login" in r.headers["Location"]
        assert rows(app, "subject = :s", s=f"staff:{user_id}") == 0
        for device in (phone, tablet, thief):
            assert not opens(device, base)
        assert opens(colleague, base)
        # the login page says why, in the page's language
        assert "已在所有设备上退出登录" in phone.get(base + r.headers["Location"], timeout=TIMEOUT).text
    events = app.extensions["leaseline"].audit.search(action="auth.sign_out_everywhere", actor=email)
    assert events and events[0].details.get("sessions") == 2


def test_deactivation_ends_every_session_at_once(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    email = "deactivate.me@demo.leaseline.cn"
    user_id = staff(app, email)
    with sign_in(base, email) as one, sign_in(base, email) as two, sign_in(base, ADMIN_A) as admin:
        assert rows(app, "subject = :s", s=f"staff:{user_id}") == 2
        r = admin.post(f"{base}/staff/{user_id}/deactivate", timeout=TIMEOUT,
                       data={"csrf_token": csrf(admin, f"{base}/staff/{user_id}")})
        assert r.status_code == 200
        assert rows(app, "subject = :s", s=f"staff:{user_id}") == 0  # before either device asks again
        assert not opens(one, base) and not opens(two, base)
    events = app.extensions["leaseline"].audit.search(action="auth.session_end", actor=email)
    assert any(e.details.get("reason") == "deactivated" and e.details.get("sessions") == 2 for e in events)


def test_requests_that_never_write_the_session_create_no_rows(bff_server: Any, app: Any) -> None:
    base = bff_server.url
    before = rows(app)
    quote = {"price": "200000", "down_ratio": "0.2", "term": 36, "rate": "0.0599"}
    for _ in range(3):
        assert requests.post(f"{base}/api/v1/quotes", json=quote, timeout=TIMEOUT).status_code == 200
        assert requests.get(f"{base}/static/css/app.css", timeout=TIMEOUT).status_code == 200
        assert requests.get(f"{base}/healthz", timeout=TIMEOUT).status_code == 200
        missing = requests.get(f"{base}/static/no-such-file.css", timeout=TIMEOUT)  # an HTML 404 page, with a form
        assert missing.status_code == 404 and "Set-Cookie" not in missing.headers
    assert rows(app) == before
    with requests.Session() as browser:  # a page with a form writes its CSRF token: one session, kept
        browser.get(f"{base}/vehicles", timeout=TIMEOUT)
        assert rows(app) == before + 1
        browser.get(f"{base}/vehicles", timeout=TIMEOUT)
        browser.post(f"{base}/api/v1/quotes", json=quote, timeout=TIMEOUT)
        assert rows(app) == before + 1


def test_the_customer_s_session_is_kept_on_the_server_too(bff_server: Any, app: Any) -> None:
    from tests.integration.test_invitations import invite
    from tests.integration.test_invitations import latest_code
    from tests.integration.test_invitations import request_code

    base = bff_server.url
    mobile = "13800138201"
    with sign_in(base, SALES_A) as sales, requests.Session() as customer:
        page, link = invite(base, sales, mobile)
        request_code(customer, link)
        r = customer.post(f"{link}/verify", data={"code": latest_code(app, mobile), "csrf_token": csrf(customer, link)},
                          timeout=TIMEOUT)
        assert r.status_code == 200
        invitation_id = page.rstrip("/").rsplit("/", 1)[1]
        key = hashlib.sha256(customer.cookies["session"].encode()).hexdigest()
        assert rows(app, "key = :k AND subject = :s", k=key, s=f"customer:{invitation_id}") == 1
        assert opens(customer, base, "/applications")  # the customer's own applications, on that session


# -- the store itself ---------------------------------------------------------------------------------------------

def test_the_store_forgets_expired_sessions_and_never_revives_an_ended_one(db_url: str) -> None:
    from infra.db import Database
    from infra.db.models import utcnow
    from infra.sessions import SqlSessionStore

    db = Database(db_url)
    store = SqlSessionStore(db)
    now = utcnow()
    try:
        store.create("a" * 64, '{"x": 1}', "staff:purge-test", now + timedelta(minutes=30), now)
        store.create("b" * 64, '{"x": 2}', "staff:purge-test", now - timedelta(seconds=1), now)
        assert store.load("a" * 64, now) is not None
        assert store.load("b" * 64, now) is None  # expired: gone for the application at once
        store.purge(now)  # and from the table by the purge (which the suite's resumer may have done already)
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM web_sessions WHERE key = :k"),
                                {"k": "b" * 64}).scalar_one() == 0
        assert store.load("a" * 64, now + timedelta(minutes=31)) is None
        # a request that began before sign-out and ends after it must not write the session back
        store.delete("a" * 64)
        assert store.update("a" * 64, '{"x": 3}', "staff:purge-test", now + timedelta(minutes=30)) is False
        assert store.load("a" * 64, now) is None
        store.create("c" * 64, "{}", "staff:purge-test", now + timedelta(minutes=30), now)
        store.create("d" * 64, "{}", "staff:purge-test", now + timedelta(minutes=30), now)
        assert store.count("staff:purge-test", now) == 2
        assert store.end_subject("staff:purge-test") == 2
        assert store.count("staff:purge-test", now) == 0
    finally:
        db.dispose()


def test_leaseline_sessions_purge_deletes_expired_rows(db_url: str) -> None:
    from infra.db import Database
    from infra.db.models import utcnow
    from infra.sessions import SqlSessionStore

    db = Database(db_url)
    store = SqlSessionStore(db)
    now = utcnow()
    try:
        store.create("e" * 64, "{}", None, now - timedelta(hours=1), now - timedelta(hours=13))
        result = subprocess.run([sys.executable, "-m", "leaseline", "sessions", "purge", "--json"], cwd=ROOT,
                                capture_output=True, text=True, timeout=120, check=False,
                                env={**__import__("os").environ, "LEASELINE_DATABASE_URL": db_url})
        assert result.returncode == 0, result.stderr
        assert '"deleted": ' in result.stdout
        with db.engine.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM web_sessions WHERE key = :k"),
                                {"k": "e" * 64}).scalar_one() == 0
    finally:
        db.dispose()
