"""A real OpenID Provider for the tests (npm oidc-provider 9, ``tests/peers/oidc``), shared by the HTTP-level
tests (tests/integration/test_oidc.py) and the browser tests (tests/e2e/test_oidc_browser.py).

The provider's development interactions take any login name: the subject is that name, and the email is
``<login>@demo.leaseline.cn`` unless the name contains ``@``. Its one client is ``leaseline-bff`` /
``leaseline-test-secret`` with the redirect URI given at start.
"""

from __future__ import annotations

import html
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

PEER = Path(__file__).resolve().parents[1] / "peers" / "oidc"
CLIENT_ID = "leaseline-bff"
CLIENT_SECRET = "leaseline-test-secret"
TIMEOUT = 10


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def oidc_settings(port: int) -> dict[str, object]:
    """``build_app`` overrides making the provider on ``port`` the BFF's default staff issuer."""
    return {"oidc_issuer": f"http://127.0.0.1:{port}", "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": CLIENT_SECRET}


#: the origins of the providers running now: their own pages (the development interactions, whose page loads a
#: favicon it does not have) are not ours for the browser tests' console check (tests/e2e/problems.py)
PROVIDER_ORIGINS: set[str] = set()


@contextmanager
def oidc_provider(port: int, bff_url: str) -> Iterator[str]:
    """Run the provider on ``port`` for the BFF at ``bff_url`` (its callback and post-logout page); yields
    the issuer URL once its discovery document answers (about 0.6 s)."""
    node = shutil.which("node")
    assert node and (PEER / "node_modules" / "oidc-provider").exists(), "run `make peers` (npm ci) first"
    process = subprocess.Popen(
        [node, str(PEER / "provider.mjs"), str(port), f"{bff_url}/auth/oidc/callback", f"{bff_url}/login"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    issuer = f"http://127.0.0.1:{port}"
    try:
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
        PROVIDER_ORIGINS.add(issuer)
        yield issuer
    finally:
        PROVIDER_ORIGINS.discard(issuer)
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
