"""The public contract check in a real browser (Chromium, Pixel 7): the visitor's own browser checks that the
opened record is this file's signing, recomputes its salted commitment, the public leaf and the Merkle root
from the audit path, and checks the checkpoint's Ed25519 signature (pwa/static/js/verify.js, WebCrypto). A
proof altered on its way to the browser is refused by the page."""

from __future__ import annotations

import base64
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
    assert _check(page, bff.url, signed[1]) == {"Entry": "true", "Root": "true", "Signature": "true"}
    expect(page.locator("[data-proof-result]")).to_contain_text("✓")


def test_an_altered_audit_path_does_not_lead_to_the_root(
        page: Page, bff: LiveServer, signed: tuple[dict[str, Any], bytes]) -> None:  # noqa: F811
    def flip(html: str) -> str:
        found = re.search(r'data-path-hash="([0-9a-f])', html)
        assert found, "the proof has an audit path"
        digit = "1" if found.group(1) == "0" else "0"
        return html[:found.start(1)] + digit + html[found.end(1):]
    assert _check(page, bff.url, signed[1], flip) == {"Entry": "true", "Root": "false", "Signature": "true"}


def test_a_checkpoint_with_another_time_fails_its_signature(
        page: Page, bff: LiveServer, signed: tuple[dict[str, Any], bytes]) -> None:  # noqa: F811
    def later(html: str) -> str:
        return re.sub(r'data-timestamp="(\d{4})', lambda m: f'data-timestamp="{int(m.group(1)) + 1}', html, count=1)
    assert _check(page, bff.url, signed[1], later) == {"Entry": "true", "Root": "true", "Signature": "false"}


def test_another_salt_does_not_open_the_commitment(
        page: Page, bff: LiveServer, signed: tuple[dict[str, Any], bytes]) -> None:  # noqa: F811
    def salt(html: str) -> str:
        return re.sub(r'data-salt="[0-9a-f]{64}"', 'data-salt="' + "00" * 32 + '"', html, count=1)
    assert _check(page, bff.url, signed[1], salt) == {"Entry": "true", "Root": "false", "Signature": "true"}


def test_a_record_of_another_file_is_refused(
        page: Page, bff: LiveServer, signed: tuple[dict[str, Any], bytes]) -> None:  # noqa: F811
    def other(html: str) -> str:
        found = re.search(r'data-entry="([^"]+)"', html)
        assert found, "the page carries the opened record"
        record = base64.b64decode(found.group(1)).replace(signed[0]["signed_sha256"].encode(), b"0" * 64)
        return html[:found.start(1)] + base64.b64encode(record).decode() + html[found.end(1):]
    assert _check(page, bff.url, signed[1], other) == {"Entry": "false", "Root": "false", "Signature": "true"}
