"""Two browsers in one test: a salesperson's showroom tablet and the customer's phone (Pixel 7)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Playwright
from playwright.sync_api import expect

from bff.demo import DEMO_PASSWORD

TABLET = {"viewport": {"width": 1024, "height": 768}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


@pytest.mark.console(r"status of 410")  # the used link, opened on another phone, answers 410 Gone
def test_customer_configures_on_their_phone_and_the_tablet_follows(
    browser: Browser, playwright: Playwright, live_server: Any
) -> None:
    base = live_server.url
    tablet = browser.new_context(base_url=base, **TABLET)
    phone = browser.new_context(base_url=base, **playwright.devices["Pixel 7"])
    try:
        sales = tablet.new_page()
        sales.goto("/login")
        sales.locator("#email").fill("sales.pudong@demo.leaseline.cn")
        sales.locator("#password").fill(DEMO_PASSWORD)
        sales.locator("form button[type=submit]").last.click()
        expect(sales.get_by_test_id("signed-in")).to_be_visible()

        # Build a plan, then send it to the customer.
        sales.goto("/plans/byd-han-ev?down=20&term=36")
        sales.locator("a[href*='/invitations?']").click()
        sales.locator("#mobile").fill("139 0013 9000")
        sales.locator("form[action='/invitations'] button[type=submit]").click()
        expect(sales.locator("img.qr")).to_be_visible()
        link = sales.get_by_test_id("invitation-link").inner_text()
        expect(sales.get_by_test_id("invitation-status")).to_contain_text("等待客户验证手机号")

        # The customer "scans" the QR code: follows the link on the phone, asks for the code, types it.
        customer = phone.new_page()
        customer.goto(link)
        expect(customer.locator("h1")).to_have_text("验证您的手机号")
        customer.locator("form[action$='/code'] button").click()
        sms = live_server.app.extensions["leaseline"].outbox.latest(1, to="13900139000")[0]
        code = re.search(r"(\d{6})", sms.body).group(1)  # type: ignore[union-attr]
        customer.locator("#code").fill(code)
        customer.locator("form[action$='/verify'] button").click()
        expect(customer).to_have_url(re.compile(r"/plans/byd-han-ev\?.*term=36"))

        # The customer changes the term; the tablet shows it without a reload (htmx polling).
        sales.evaluate("window.__marker = 1")
        with customer.expect_response(re.compile(r".*term=48.*")):
            customer.locator("label.chip", has=customer.locator("input[name=term][value='48']")).click()
        expect(sales.get_by_test_id("customer-term")).to_contain_text("48", timeout=10_000)
        assert sales.evaluate("window.__marker") == 1

        # The link worked once: another phone is told it is no longer valid; the customer's own phone, opening it
        # again (from the chat's history), is taken back to what they were doing (issue 17 §4).
        other_phone = browser.new_context(base_url=base, **playwright.devices["Pixel 7"])
        again = other_phone.new_page()
        again.goto(link)
        expect(again.locator("h1")).to_have_text("此链接已失效")
        other_phone.close()
        back = phone.new_page()
        back.goto(link)
        expect(back).to_have_url(re.compile(r"/plans/byd-han-ev\?"))
    finally:
        tablet.close()
        phone.close()
