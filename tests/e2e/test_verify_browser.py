"""The public contract check in a real browser (Chromium, Pixel 7): the visitor's own browser hashes the log
entry, recomputes the Merkle root from the audit path and checks the checkpoint's Ed25519 signature
(pwa/static/js/verify.js, WebCrypto). A proof altered on its way to the browser is refused by the page."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from playwright.sync_api import Page
from playwright.sync_api import Route
from playwright.sync_api import expect

from tests.conftest import LiveServer
from tests.integration.test_verify_page import bff  # noqa: F401  (fixtures: the BFF before a contract service)
from tests.integration.test_verify_page import contracts  # noqa: F401
from tests.integration.test_verify_page import signed  # noqa: F401

pytestmark = pytest.mark.db


def _check(page: Page, base: str, pdf: bytes, alter: Callable[[str], str] | None = None) -> dict[str, str]:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    if alter is not None:
        def change(route: Route) -> None:
            if route.request.method != "POST":
                route.continue_()
                return
            response = route.fetch()
            route.fulfill(response=response, body=alter(response.text()))
        page.route(f"{base}/verify", change)
    page.goto(f"{base}/verify")
    page.locator("input[name=file]").set_input_files({"name": "contract.pdf", "mimeType": "application/pdf",
                                                     "buffer": pdf})
    page.locator("[data-testid=verify-form] button[type=submit]").click()
    expect(page.locator("[data-proof-result][data-state=done]")).to_be_attached(timeout=15_000)
    assert not errors, errors
    checks = page.locator("[data-proof-result] [data-check]")
    return {checks.nth(i).get_attribute("data-check") or "": checks.nth(i).get_attribute("data-passed") or ""
            for i in range(checks.count())}


def test_the_browser_recomputes_the_log_proof_and_checks_the_checkpoint(
        page: Page, bff: LiveServer, signed: tuple[dict[str, Any], bytes]) -> None:  # noqa: F811
    assert _check(page, bff.url, signed[1]) == {"Root": "true", "Signature": "true"}
    expect(page.locator("[data-proof-result]")).to_contain_text("✓")


def test_an_altered_audit_path_does_not_lead_to_the_root(
        page: Page, bff: LiveServer, signed: tuple[dict[str, Any], bytes]) -> None:  # noqa: F811
    def flip(html: str) -> str:
        found = re.search(r'data-path-hash="([0-9a-f])', html)
        assert found, "the proof has an audit path"
        digit = "1" if found.group(1) == "0" else "0"
        return html[:found.start(1)] + digit + html[found.end(1):]
    assert _check(page, bff.url, signed[1], flip) == {"Root": "false", "Signature": "true"}


def test_a_checkpoint_with_another_time_fails_its_signature(
        page: Page, bff: LiveServer, signed: tuple[dict[str, Any], bytes]) -> None:  # noqa: F811
    def later(html: str) -> str:
        return re.sub(r'data-timestamp="(\d{4})', lambda m: f'data-timestamp="{int(m.group(1)) + 1}', html, count=1)
    assert _check(page, bff.url, signed[1], later) == {"Root": "true", "Signature": "false"}
