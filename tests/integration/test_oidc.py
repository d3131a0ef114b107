"""Staff sign-in with OpenID Connect against a real provider (npm oidc-provider, tests/peers/oidc)."""

from __future__ import annotations

import html
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import LiveServer
from tests.conftest import build_app

PEER = Path(__file__).resolve().parents[1] / "peers" / "oidc"
TIMEOUT = 10
pytestmark = pytest.mark.db


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def provider_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def oidc_server(db_url: str, provider_port: int) -> Iterator[LiveServer]:
    """The BFF configured with the provider as its staff issuer."""
    app = build_app(db_url, oidc_issuer=f"http://127.0.0.1:{provider_port}", oidc_client_id="leaseline-bff",
                    oidc_client_secret="leaseline-test-secret")
    with LiveServer(app) as server:
        yield server
    app.extensions["leaseline"].db.dispose()


@pytest.fixture(scope="module")
def provider(oidc_server: LiveServer, provider_port: int) -> Iterator[str]:
    node = shutil.which("node")
    assert node and (PEER / "node_modules" / "oidc-provider").exists(), "run `make peers` (npm ci) first"
    process = subprocess.Popen(
        [node, str(PEER / "provider.mjs"), str(provider_port), f"{oidc_server.url}/auth/oidc/callback",
         f"{oidc_server.url}/login"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    issuer = f"http://127.0.0.1:{provider_port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            if requests.get(f"{issuer}/.well-known/openid-configuration", timeout=1).ok:
                break
        except requests.ConnectionError:
            time.sleep(0.1)
    else:
        process.kill()
        pytest.fail("the OpenID provider did not start: " + (process.stdout.read() if process.stdout else ""))
    yield issuer
    process.terminate()
    process.wait(5)
    if process.stdout:
        process.stdout.close()


def provider_login(s: requests.Session, start: requests.Response, login: str) -> requests.Response:
    """Drive oidc-provider's development interactions: the login form (with its hidden prompt), consent."""
    page = start
    provider_host = urlsplit(start.url).netloc
    for _ in range(4):
        if urlsplit(page.url).netloc != provider_host:  # back at the BFF: the flow is over
            return page
        form = re.search(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', page.text, flags=re.S)
        if form is None:
            return page
        fields = {k: html.unescape(v)
                  for k, v in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form.group(2))}
        if 'name="login"' in form.group(2):
            fields.update(login=login, password="any")
        action = html.unescape(form.group(1))
        if action.startswith("/"):
            parts = urlsplit(page.url)
            action = f"{parts.scheme}://{parts.netloc}{action}"
        page = s.post(action, data=fields, timeout=TIMEOUT)
    return page


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
        assert landing.url.startswith(oidc_server.url + "/account"), (landing.url, reasons)
        assert "admin.xihu@demo.leaseline.cn" in landing.text
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
