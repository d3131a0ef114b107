"""The PWA shell in a real browser: the service worker takes control and serves the offline page, keeps no
personal page or document, and Chromium finds the app installable (manifest, icons, service worker)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import BrowserContext
from playwright.sync_api import Page
from playwright.sync_api import Playwright
from playwright.sync_api import expect

from bff.demo import DEMO_PASSWORD
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.e2e

BUILDER = "/plans/toyota-camry"
CONTROLLED = "navigator.serviceWorker.controller !== null"
SHELL_CACHE = "leaseline-shell-v2"
#: every entry of every cache the service worker keeps: [path, body]
CACHED = """async () => {
  const out = [];
  for (const name of await caches.keys()) {
    const cache = await caches.open(name);
    for (const request of await cache.keys()) {
      const response = await cache.match(request);
      out.push([new URL(request.url).pathname, await response.text()]);
    }
  }
  return out;
}"""


def wait_for_service_worker(page: Page) -> None:
    """Wait until the service worker controls the page (it calls clients.claim() once activated)."""
    wait_until(page, "navigator.serviceWorker !== undefined")
    page.evaluate("navigator.serviceWorker.ready.then(() => true)")
    if not page.evaluate(CONTROLLED):  # claim() normally adopts the page; a reload always does
        page.reload()
    wait_until(page, CONTROLLED)


def test_service_worker_serves_the_offline_page(page: Page, context: BrowserContext) -> None:
    page.goto(BUILDER)
    wait_for_service_worker(page)
    assert page.evaluate("navigator.serviceWorker.controller.scriptURL").endswith("/sw.js")
    assert page.evaluate("caches.keys()") == [SHELL_CACHE]
    rent = page.get_by_test_id("rent")
    expect(rent).to_be_visible()

    context.set_offline(True)
    try:
        page.reload()
        offline = page.locator("section.offline")
        expect(offline.get_by_role("heading", level=1)).to_have_text("您已离线")
        expect(rent).to_have_count(0)
        expect(page).to_have_url(re.compile(re.escape(BUILDER) + "$"))  # the address keeps the choices
        # The shell's assets come from the cache: the stylesheet applies and app.js runs (offline banner).
        expect(page.locator("html")).to_have_class(re.compile(r"\bjs\b"))
        expect(page.locator("#netstatus")).to_be_visible()
        # Any other page is unreachable too and gets the same offline page.
        page.goto("/vehicles?q=BYD")
        expect(offline.get_by_role("heading", level=1)).to_be_visible()
    finally:
        context.set_offline(False)

    page.reload()
    expect(page.locator("#vehicle-list a.vehicle").first).to_be_visible()
    expect(page.locator("#netstatus")).to_be_hidden()


def test_the_service_worker_keeps_nothing_personal(browser: Browser, browser_context_args: dict[str, Any],
                                                   base_url: str) -> None:
    """Installed (or updated) while someone is signed in, the service worker caches only the public shell and
    static files: its offline page is the anonymous one (no name, no account link), and the personal
    pages visited (the pipeline, the account, an application) are not kept."""
    args = {**browser_context_args, "base_url": base_url}
    # Sign in with service workers blocked, then open the signed-in session in a context that allows them:
    # the worker installs with the session's cookie, as it does when a deployment updates it.
    signing_in = browser.new_context(**args, service_workers="block")
    try:
        page = signing_in.new_page()
        page.goto("/login")
        page.locator("#email").fill("sales.pudong@demo.leaseline.cn")
        page.locator("#password").fill(DEMO_PASSWORD)
        page.locator("form button[type=submit]").last.click()
        expect(page.get_by_test_id("signed-in")).to_be_visible()
        state = signing_in.storage_state()
    finally:
        signing_in.close()
    context = browser.new_context(**args, storage_state=state)
    try:
        page = context.new_page()
        page.goto("/applications")
        expect(page.get_by_test_id("signed-in")).to_contain_text("李销售")
        wait_for_service_worker(page)
        for path in ("/applications", "/account", BUILDER):
            page.goto(path)
            expect(page.get_by_test_id("signed-in")).to_be_visible()
        page.wait_for_load_state("networkidle")
        cached = page.evaluate(CACHED)
        paths = [path for path, _ in cached]
        assert "/offline" in paths and all(
            path.startswith("/static/") or path in ("/offline", "/manifest.webmanifest") for path in paths), paths
        for path, body in cached:
            assert "李销售" not in body and 'data-testid="signed-in"' not in body, path
    finally:
        context.close()


def test_installable(
    playwright: Playwright, browser_type_launch_args: dict[str, Any], base_url: str, tmp_path: Path
) -> None:
    """Chromium reports no installability error (only checked in a persistent, non-incognito profile)."""
    device = {k: v for k, v in playwright.devices["Pixel 7"].items() if k != "default_browser_type"}
    context = playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"),
        **browser_type_launch_args,
        **device,
        base_url=base_url,
    )
    try:
        page = context.pages[0] if context.pages else context.new_page()
        page.goto(BUILDER)
        wait_for_service_worker(page)
        cdp = context.new_cdp_session(page)
        manifest = cdp.send("Page.getAppManifest")
        assert manifest["url"].endswith("/manifest.webmanifest")
        assert manifest["errors"] == []
        assert cdp.send("Page.getInstallabilityErrors") == {"installabilityErrors": []}
    finally:
        context.close()
