"""A returning customer on their Pixel 7 (a wrong code then a refresh; their invitation reopened from the chat's
history) and the salesperson's invitation page on a 1024×768 showroom tablet (share, copy, the customer's screen)."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import Browser
from playwright.sync_api import Playwright
from playwright.sync_api import expect

from bff.demo import DEMO_PASSWORD
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_invitations import PLAN
from tests.integration.test_invitations import SALES_A
from tests.integration.test_invitations import invite

TABLET = {"viewport": {"width": 1024, "height": 768}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def code_for(live_server: Any, mobile: str) -> str:
    sms = live_server.app.extensions["leaseline"].outbox.latest(1, to=mobile)[0]
    return re.search(r"(\d{6})", sms.body).group(1)  # type: ignore[union-attr]


# a stranger's visit to a used link answers 410
@pytest.mark.console(r"status of 410")
def test_a_wrong_code_then_a_refresh_then_the_link_again_from_the_chat(
        browser: Browser, playwright: Playwright, live_server: Any) -> None:
    base, mobile = live_server.url, "13600136001"
    with sign_in(base, SALES_A) as sales:
        invitation_page, link = invite(base, sales, mobile)
    invitation_id = invitation_page.rstrip("/").rsplit("/", 1)[1]
    phone = browser.new_context(base_url=base, **playwright.devices["Pixel 7"])
    stranger = browser.new_context(base_url=base, **playwright.devices["Pixel 7"])
    try:
        page = phone.new_page()
        page.goto(link)
        page.locator("form[action$='/code'] button").click()
        right = code_for(live_server, mobile)
        page.locator("#code").fill("000000" if right != "000000" else "111111")
        page.locator("form[action$='/verify'] button").click()
        expect(page.locator(".field-error")).to_be_visible()
        assert page.url == link  # Post/Redirect/Get: the form again at its own address, not the POST's
        page.reload()  # the refresh (before, Chromium posted the wrong code again: another attempt counted)
        expect(page.locator("#code")).to_be_visible()
        expect(page.locator(".field-error")).to_have_count(0)
        invitation = live_server.app.extensions["leaseline"].invitations_repo.get(invitation_id)
        assert invitation.failed_codes == 1
        page.goto(f"{link}/verify")  # the tab restored after the phone dropped it, from before: a GET
        expect(page.locator("#code")).to_be_visible()
        expect(page.locator("body")).not_to_contain_text("此处不支持该操作")
        page.locator("#code").fill(right)
        page.locator("form[action$='/verify'] button").click()
        expect(page).to_have_url(re.compile(r"/plans/byd-han-ev\?.*term=36"))

        page.goto(f"/applications/new?vehicle=byd-han-ev&plan={quote(PLAN)}")
        page.get_by_test_id("start-application").click()
        expect(page).to_have_url(re.compile(r"/applications/[0-9a-f-]{36}/consent$"))
        app_id = page.url.rsplit("/", 2)[-2]

        # later, from WeChat's chat history: the same phone opens the invitation again
        again = phone.new_page()
        again.goto(link)
        expect(again).to_have_url(re.compile(rf"/applications/{app_id}$"))
        expect(again.locator("h1")).not_to_have_text("此链接已失效")

        other = stranger.new_page()
        other.goto(link)
        expect(other.locator("h1")).to_have_text("此链接已失效")
        expect(other.locator("body")).not_to_contain_text("6001")
    finally:
        phone.close()
        stranger.close()


def test_the_invitation_on_the_tablet_shares_the_short_link_and_shows_the_customer(
        browser: Browser, live_server: Any) -> None:
    base, mobile = live_server.url, "13600136002"
    tablet = browser.new_context(base_url=base, **TABLET)
    # this Chromium has no share sheet: stand in for the device's, recording what the page hands it
    tablet.add_init_script("navigator.share = function (data) { window.__shared = data; return Promise.resolve(); };")
    try:
        sales = tablet.new_page()
        sales.goto("/login")
        sales.locator("#email").fill(SALES_A)
        sales.locator("#password").fill(DEMO_PASSWORD)
        sales.locator("form button[type=submit]").last.click()
        expect(sales.get_by_test_id("signed-in")).to_be_visible()
        sales.goto("/plans/byd-han-ev?down=20&term=36")
        sales.locator("a[href*='/invitations?']").click()
        sales.locator("#mobile").fill(mobile)
        sales.locator("form[action='/invitations'] button[type=submit]").click()
        expect(sales.locator("img.qr")).to_be_visible()
        link = sales.get_by_test_id("invitation-link").inner_text()
        assert re.fullmatch(rf"{re.escape(base)}/i/[a-z2-9]{{13}}", link), link

        # the customer's screen is in view on the tablet without scrolling, beside the QR code
        status = sales.get_by_test_id("invitation-status").bounding_box()
        assert status is not None and status["y"] >= 0 and status["y"] + status["height"] <= 768, status
        qr = sales.locator("img.qr").bounding_box()
        assert qr is not None and qr["y"] + qr["height"] <= 768 and qr["width"] >= 200, qr

        sales.get_by_test_id("share-link").click()
        assert sales.evaluate("window.__shared && window.__shared.url") == link
        sales.evaluate("delete navigator.share; Object.defineProperty(navigator, 'share', {value: undefined})")
        tablet.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
        sales.get_by_test_id("copy-link").click()
        expect(sales.locator("[data-copied]")).to_have_text("链接已复制")
        assert sales.evaluate("navigator.clipboard.readText()") == link

        with requests.Session() as customer:  # the customer joins on their phone
            customer.post(f"{link}/code", data={"csrf_token": csrf(customer, link)}, timeout=TIMEOUT)
            customer.post(f"{link}/verify", data={"code": code_for(live_server, mobile),
                                                   "csrf_token": csrf(customer, link)}, timeout=TIMEOUT)
            expect(sales.locator("#invitation-status[data-joined]")).to_be_visible(timeout=10_000)
            small = sales.locator("img.qr").bounding_box()
            assert small is not None and small["width"] <= 100, small
            token = csrf(customer, f"{base}/applications/new?vehicle=byd-han-ev&plan={quote(PLAN)}")
            customer.post(f"{base}/applications", data={"vehicle": "byd-han-ev", "plan": PLAN, "csrf_token": token},
                          timeout=TIMEOUT)
        sales.get_by_test_id("invitation-application").click(timeout=10_000)
        expect(sales).to_have_url(re.compile(r"/applications/[0-9a-f-]{36}$"))
    finally:
        tablet.close()


# the used link answers 410 until the phone is signed in to 我的租赁 with the invited number
@pytest.mark.console(r"status of 410")
def test_a_used_link_on_a_new_phone_leads_to_my_leases_then_back_to_the_application(
        browser: Browser, playwright: Playwright, live_server: Any) -> None:
    base, mobile = live_server.url, "13600136003"
    with sign_in(base, SALES_A) as sales:
        _, link = invite(base, sales, mobile)
    with requests.Session() as customer:  # the customer joined and started on their old phone
        customer.post(f"{link}/code", data={"csrf_token": csrf(customer, link)}, timeout=TIMEOUT)
        customer.post(f"{link}/verify", data={"code": code_for(live_server, mobile),
                                               "csrf_token": csrf(customer, link)}, timeout=TIMEOUT)
        token = csrf(customer, f"{base}/applications/new?vehicle=byd-han-ev&plan={quote(PLAN)}")
        started = customer.post(f"{base}/applications", data={"vehicle": "byd-han-ev", "plan": PLAN,
                                                              "csrf_token": token}, timeout=TIMEOUT)
        app_id = re.search(r"/applications/([0-9a-f-]{36})", started.url).group(1)  # type: ignore[union-attr]
    first_code = code_for(live_server, mobile)
    phone = browser.new_context(base_url=base, **playwright.devices["Pixel 7"])
    try:
        page = phone.new_page()
        page.goto(link)
        expect(page.locator("h1")).to_have_text("此链接已失效")
        page.get_by_test_id("to-my-leases").click()
        expect(page).to_have_url(re.compile(r"/mine/sign-in$"))
        page.locator("#mobile").fill(mobile)
        page.locator("form[action$='/mine/sign-in'] button").click()
        expect(page).to_have_url(re.compile(r"/mine/code$"))
        expect(page.get_by_test_id("resend-countdown")).to_be_visible()  # no new code before the minute is over
        expect(page.get_by_test_id("send-code")).to_be_disabled()
        code = first_code
        for _ in range(100):  # the text goes out from the worker (a job), a moment later
            code = code_for(live_server, mobile)
            if code != first_code:
                break
            page.wait_for_timeout(100)
        assert code != first_code, "no 我的租赁 code texted"
        page.locator("#code").fill(code)
        page.locator("form[action$='/mine/code'] button[type=submit]").click()
        expect(page).to_have_url(re.compile(r"/mine$"))
        page.goto(link)  # the invitation from the chat's history, on this phone now signed in with its number
        expect(page).to_have_url(re.compile(rf"/applications/{app_id}$"))
    finally:
        phone.close()
