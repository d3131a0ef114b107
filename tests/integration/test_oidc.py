"""Staff sign-in with OpenID Connect against a real provider (npm oidc-provider, tests/peers/oidc)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import requests

from tests.common.oidc import TIMEOUT
from tests.common.oidc import free_port
from tests.common.oidc import oidc_provider
from tests.common.oidc import oidc_settings
from tests.common.oidc import provider_login
from tests.conftest import LiveServer
from tests.conftest import build_app

pytestmark = pytest.mark.db
GROUP_STAFF = ("g.sales@groupco.example", "g.admin@groupco.example")


@pytest.fixture(scope="module")
def provider_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def oidc_server(db_url: str, provider_port: int) -> Iterator[LiveServer]:
    """The BFF configured with the provider as its (default) staff issuer."""
    app = build_app(db_url, **oidc_settings(provider_port))
    with LiveServer(app) as server:
        yield server
    app.extensions["leaseline"].db.dispose()


@pytest.fixture(scope="module")
def provider(oidc_server: LiveServer, provider_port: int) -> Iterator[str]:
    with oidc_provider(provider_port, oidc_server.url) as issuer:
        yield issuer


@pytest.fixture(scope="module")
def group_provider(oidc_server: LiveServer) -> Iterator[dict[str, str]]:
    """A second provider standing for one dealer group's own issuer, and that group (a dealer, two staff)."""
    accounts = oidc_server.app.extensions["leaseline"].accounts
    group_id = accounts.ensure_group("测试集团 GroupCo")
    dealer_id = accounts.ensure_dealer(group_id, "测试 4S 店", "苏州", ["basic_signing"])
    for email in GROUP_STAFF:
        accounts.create_staff(email, email.split("@")[0], "sales", dealer_id)
    with oidc_provider(free_port(), oidc_server.url) as issuer:
        accounts.set_group_issuer(group_id, issuer)
        try:
            yield {"issuer": issuer, "group_id": group_id}
        finally:
            accounts.set_group_issuer(group_id, None)


def test_invited_staff_sign_in_with_pkce_and_are_linked(oidc_server: LiveServer, provider: str, app: Any) -> None:
    with requests.Session() as s:
        first = s.get(f"{oidc_server.url}/login/oidc", timeout=TIMEOUT, allow_redirects=False)
        assert first.status_code == 302
        query = parse_qs(urlsplit(first.headers["Location"]).query)
        assert first.headers["Location"].startswith(provider + "/auth")
        assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) >= 43
        assert query["state"] and query["nonce"] and query["response_type"] == ["code"]
        landing = provider_login(s, s.get(first.headers["Location"], timeout=TIMEOUT), "admin.xihu")
        reasons = [e.details for e in oidc_server.app.extensions["leaseline"].audit.search(action="auth.sign_in")[:3]]
        # a dealer's staff land on their work (issue 17 §11); the account page is theirs
        assert landing.url.startswith(oidc_server.url + "/desk"), (landing.url, reasons)
        assert "admin.xihu@demo.leaseline.cn" in s.get(f"{oidc_server.url}/account", timeout=TIMEOUT).text
        # RP-initiated logout: signing out here also ends the session at the provider.
        token = re.search(r'name="csrf_token" value="([^"]+)"', landing.text).group(1)  # type: ignore[union-attr]
        out = s.post(f"{oidc_server.url}/logout", data={"csrf_token": token}, timeout=TIMEOUT, allow_redirects=False)
        assert out.status_code == 302 and out.headers["Location"].startswith(provider + "/session/end?")
        assert "id_token_hint=" in out.headers["Location"]
        assert s.get(f"{oidc_server.url}/account", timeout=TIMEOUT, allow_redirects=False).status_code == 302
    linked = oidc_server.app.extensions["leaseline"].accounts.by_subject(provider, "admin.xihu")
    assert linked is not None and linked.email == "admin.xihu@demo.leaseline.cn"


def test_an_uninvited_identity_is_refused(oidc_server: LiveServer, provider: str) -> None:
    with requests.Session() as s:
        first = s.get(f"{oidc_server.url}/login/oidc", timeout=TIMEOUT)
        landing = provider_login(s, first, "stranger@example.com")
        assert landing.status_code == 403 and "/account" not in landing.url


def test_a_wrong_state_is_refused(oidc_server: LiveServer, provider: str) -> None:
    with requests.Session() as s:
        first = s.get(f"{oidc_server.url}/login/oidc", timeout=TIMEOUT, allow_redirects=False)
        consent = provider_login(s, s.get(first.headers["Location"], timeout=TIMEOUT, allow_redirects=True),
                                 "sales.xihu")
        # A callback carrying another state (a forged or replayed response) is refused.
        forged = s.get(f"{oidc_server.url}/auth/oidc/callback?code=abc&state=forged", timeout=TIMEOUT)
        assert forged.status_code == 400
        assert consent.status_code == 200


def test_local_accounts_still_work_when_the_provider_is_down(db_url: str) -> None:
    app = build_app(db_url, oidc_issuer=f"http://127.0.0.1:{free_port()}", oidc_client_id="x",
                    oidc_client_secret="y")
    try:
        with LiveServer(app) as server, requests.Session() as s:
            down = s.get(f"{server.url}/login/oidc", timeout=TIMEOUT)
            assert down.status_code == 503 and 'name="password"' in down.text
            from tests.integration.test_auth import sign_in

            with sign_in(server.url, "sales.pudong@demo.leaseline.cn") as local:
                assert local.get(f"{server.url}/account", timeout=TIMEOUT).status_code == 200
    finally:
        app.extensions["leaseline"].db.dispose()


def _audit_reasons(server: LiveServer) -> list[Any]:
    return [e.details.get("reason") for e in server.app.extensions["leaseline"].audit.search(action="auth.sign_in")[:3]]


def test_a_groups_staff_sign_in_with_their_groups_own_issuer(oidc_server: LiveServer, provider: str,
                                                             group_provider: dict[str, str]) -> None:
    base, group_id = oidc_server.url, group_provider["group_id"]
    with requests.Session() as s:
        login = s.get(f"{base}/login", timeout=TIMEOUT)
        assert f"/login/oidc/{group_id}" in login.text and "测试集团 GroupCo" in login.text
        first = s.get(f"{base}/login/oidc/{group_id}", timeout=TIMEOUT, allow_redirects=False)
        assert first.status_code == 302 and first.headers["Location"].startswith(group_provider["issuer"] + "/auth")
        assert parse_qs(urlsplit(first.headers["Location"]).query)["code_challenge_method"] == ["S256"]
        landing = provider_login(s, s.get(first.headers["Location"], timeout=TIMEOUT), GROUP_STAFF[0])
        assert landing.url.startswith(base + "/desk"), (landing.url, _audit_reasons(oidc_server))
        assert GROUP_STAFF[0] in s.get(f"{base}/account", timeout=TIMEOUT).text
        # RP-initiated logout goes to the issuer this session came from, not the default one.
        token = re.search(r'name="csrf_token" value="([^"]+)"', landing.text).group(1)  # type: ignore[union-attr]
        out = s.post(f"{base}/logout", data={"csrf_token": token}, timeout=TIMEOUT, allow_redirects=False)
        assert out.headers["Location"].startswith(group_provider["issuer"] + "/session/end?")
    accounts = oidc_server.app.extensions["leaseline"].accounts
    assert accounts.by_subject(group_provider["issuer"], GROUP_STAFF[0]) is not None


def test_a_groups_issuer_lets_in_only_that_groups_staff(oidc_server: LiveServer, provider: str,
                                                       group_provider: dict[str, str]) -> None:
    """admin.pudong is invited (another group, no issuer of its own) and the email is verified: still refused."""
    with requests.Session() as s:
        first = s.get(f"{oidc_server.url}/login/oidc/{group_provider['group_id']}", timeout=TIMEOUT)
        landing = provider_login(s, first, "admin.pudong")
        assert landing.status_code == 403 and "/account" not in landing.url
        assert s.get(f"{oidc_server.url}/account", timeout=TIMEOUT, allow_redirects=False).status_code == 302
    assert _audit_reasons(oidc_server)[0] == "oidc_wrong_group"
    accounts = oidc_server.app.extensions["leaseline"].accounts
    assert accounts.by_subject(group_provider["issuer"], "admin.pudong") is None  # and nothing was linked


def test_a_group_with_its_own_issuer_cannot_use_the_default_one(oidc_server: LiveServer, provider: str,
                                                                group_provider: dict[str, str]) -> None:
    with requests.Session() as s:
        landing = provider_login(s, s.get(f"{oidc_server.url}/login/oidc", timeout=TIMEOUT), GROUP_STAFF[1])
        assert landing.status_code == 403
    assert _audit_reasons(oidc_server)[0] == "oidc_wrong_group"
    assert oidc_server.app.extensions["leaseline"].accounts.by_subject(provider, GROUP_STAFF[1]) is None


def test_company_sign_in_for_a_group_without_an_issuer_does_not_exist(oidc_server: LiveServer, app: Any) -> None:
    demo_group = app.extensions["leaseline"].accounts.group_of(
        app.extensions["leaseline"].accounts.by_email("sales.pudong@demo.leaseline.cn")[0])
    for group_id in (demo_group.id, "no-such-group"):
        r = requests.get(f"{oidc_server.url}/login/oidc/{group_id}", timeout=TIMEOUT, allow_redirects=False)
        assert r.status_code == 404


def test_a_response_naming_another_issuer_is_refused(oidc_server: LiveServer, provider: str) -> None:
    """RFC 9207: one redirect URI serves every issuer, so a response's ``iss`` must be the flow's issuer."""
    with requests.Session() as s:
        first = s.get(f"{oidc_server.url}/login/oidc", timeout=TIMEOUT, allow_redirects=False)
        state = parse_qs(urlsplit(first.headers["Location"]).query)["state"][0]
        r = s.get(f"{oidc_server.url}/auth/oidc/callback", timeout=TIMEOUT,
                  params={"code": "abc", "state": state, "iss": "http://127.0.0.1:1"})
        assert r.status_code == 400
    assert _audit_reasons(oidc_server)[0] == "oidc_issuer_mismatch"
