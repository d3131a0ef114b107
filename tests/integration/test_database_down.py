"""The database going away (a restart, a failover, a partition) under a running BFF: every request answers a
clear 503 — a page that says what happened and that nothing was lost, or a problem document under /api — with
Retry-After and no-store, never a 500; and the BFF serves again, sessions intact, once the database is back.

Found (issue 15): with the database down, the error page itself needed the database (the server-side session,
the signed-in person) and the visitor got a bare 500."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from sqlalchemy.engine import make_url

from infra.db.migrate import upgrade
from tests.common.cut import CuttableProxy
from tests.conftest import LiveServer
from tests.conftest import build_app
from tests.conftest import postgres_database
from tests.integration.test_auth import SALES_A
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in

pytestmark = pytest.mark.db
TIMEOUT = 20


@pytest.fixture(scope="module")
def line() -> Iterator[tuple[CuttableProxy, str]]:
    """A migrated database reached through a line that can be cut, and its URL through that line."""
    for url in postgres_database("leaseline_down"):
        upgrade(url)
        parsed = make_url(url)
        with CuttableProxy(parsed.host or "127.0.0.1", parsed.port or 5432) as cuttable:
            yield cuttable, parsed.set(host="127.0.0.1", port=cuttable.port).render_as_string(hide_password=False)


@pytest.fixture(scope="module")
def proxy(line: tuple[CuttableProxy, str]) -> CuttableProxy:
    return line[0]


@pytest.fixture(scope="module")
def base(line: tuple[CuttableProxy, str]) -> Iterator[str]:
    app = build_app(line[1])
    with LiveServer(app) as server:
        yield str(server.url)
    app.extensions["leaseline"].db.dispose()


def test_pages_and_the_api_answer_503_while_the_database_is_away_and_recover(base: str, proxy: CuttableProxy) -> None:
    staff = sign_in(base, SALES_A)
    assert staff.get(f"{base}/applications", timeout=TIMEOUT).status_code == 200
    anonymous = requests.Session()
    token = csrf(staff, f"{base}/account")
    proxy.cut()
    try:
        for session, path in ((staff, "/applications"), (staff, "/account"), (anonymous, "/"),
                              (anonymous, "/login"), (anonymous, "/vehicles")):
            page = session.get(f"{base}{path}", timeout=TIMEOUT)
            assert page.status_code == 503, (path, page.status_code, page.text[:500])
            assert page.headers["Content-Type"].startswith("text/html")
            assert "暂时" in page.text or "briefly" in page.text, page.text[:800]
            assert page.headers.get("Retry-After") == "30"
            assert "no-store" in page.headers["Cache-Control"]
        # a form sent meanwhile: not "your session expired" (the session could not be read, it did not end)
        sent = staff.post(f"{base}/logout", data={"csrf_token": token}, timeout=TIMEOUT, allow_redirects=False)
        assert sent.status_code == 503, (sent.status_code, sent.text[:500])
        assert "send it again" in sent.text and "稍后再次提交" in sent.text
        api = anonymous.post(f"{base}/api/v1/plans/search", json={"vehicle_id": "byd-han-ev", "budget": "3000"},
                             timeout=TIMEOUT)
        assert api.status_code == 503, api.text[:500]
        assert api.headers["Content-Type"] == "application/problem+json"
        assert api.json()["status"] == 503 and api.headers.get("Retry-After") == "30"
    finally:
        proxy.restore()
    # back: the same signed-in session goes on (nothing about it was lost, the refused sign-out did not happen)
    assert staff.get(f"{base}/applications", timeout=TIMEOUT, allow_redirects=False).status_code == 200
    assert anonymous.get(f"{base}/", timeout=TIMEOUT).status_code == 200
