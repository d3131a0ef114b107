"""A double tap on a code screen's send button (向我的手机发送验证码: includes/_resend.html, pwa/static/js/countdown.js)
on a Pixel 7 sends one request and texts one code (issue 17 §8). The first request is held (page.route) while the
second tap lands, so that tap comes while the first is surely on its way; every wait has its own short timeout and
the held request is let go or the context closed in any case: nothing here can hang."""

from __future__ import annotations

import time
from typing import Any

from playwright.sync_api import Browser
from playwright.sync_api import Page
from playwright.sync_api import Playwright
from playwright.sync_api import Route
from playwright.sync_api import expect

from tests.integration.test_auth import sign_in
from tests.integration.test_invitations import SALES_A
from tests.integration.test_invitations import invite


def _wait_for(page: Page, held: list[Route], timeout: float) -> None:
    """Let the page run until a request is held (the route handler runs while Playwright waits), at most
    ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not held and time.monotonic() < deadline:
        page.wait_for_timeout(50)


def test_a_double_tap_on_the_send_button_sends_one_request_and_texts_one_code(
        browser: Browser, playwright: Playwright, live_server: Any) -> None:
    base, mobile = live_server.url, "13600136011"
    with sign_in(base, SALES_A) as sales:
        _, link = invite(base, sales, mobile)
    outbox = live_server.app.extensions["leaseline"].outbox
    phone = browser.new_context(base_url=base, service_workers="block", **playwright.devices["Pixel 7"])
    phone.set_default_timeout(5_000)
    phone.set_default_navigation_timeout(10_000)
    held: list[Route] = []
    said: list[str] = []
    # each submit of the send form says, just after the page's own handlers ran, whether its button is disabled
    phone.add_init_script("""document.addEventListener("submit", function (event) {
        var button = event.target.querySelector("[data-resend]");
        if (button) setTimeout(function () { console.log("send-code disabled=" + button.disabled); }, 0);
    }, true);""")
    try:
        page = phone.new_page()
        page.on("console", lambda message: said.append(message.text) if message.text.startswith("send-code") else None)
        page.goto(link)
        button = page.get_by_test_id("send-code")
        expect(button).to_be_enabled()
        page.route(lambda url: url.endswith("/code"),
                   lambda route: held.append(route) if route.request.method == "POST" else route.continue_())
        box = button.bounding_box()
        assert box is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.touchscreen.tap(x, y)  # no auto-waiting: the second tap follows at once, as a finger's would
        page.touchscreen.tap(x, y)
        _wait_for(page, held, 5)
        page.wait_for_timeout(1_000)  # time for a second request, were one sent
        assert len(held) == 1, f"{len(held)} requests for one double tap"
        # the button was disabled once its form was on its way (told by the page itself: any look into the page,
        # a locator or an evaluation, would wait for the navigation held here)
        assert said == ["send-code disabled=true"], said
        held[0].continue_()
        expect(page.get_by_test_id("code-sent")).to_be_visible(timeout=10_000)
        expect(page.get_by_test_id("resend-countdown")).to_be_visible(timeout=2_000)
        assert len(held) == 1
        assert len(outbox.latest(10, to=mobile)) == 1  # one code texted
    finally:
        phone.close()
