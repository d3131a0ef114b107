"""A tier-2 case in three browsers: the salesperson's tablet shows the application waiting for a risk
officer; two different tier-2 officers claim and approve it on their phones (four eyes); the tablet shows
the approval without a reload."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import Browser
from playwright.sync_api import Page
from playwright.sync_api import Playwright
from playwright.sync_api import expect

from bff.demo import DEMO_PASSWORD
from infra.applications import Scope
from tests.common.totp import fresh_code
from tests.integration.test_applications import make_card_images
from tests.integration.test_reviews import persona_id
from tests.integration.test_reviews import to_risk

TABLET = {"viewport": {"width": 1024, "height": 768}, "device_scale_factor": 2, "is_mobile": True, "has_touch": True}


def sign_in(page: Page, email: str) -> None:
    page.goto("/login")
    page.locator("#email").fill(email)
    page.locator("#password").fill(DEMO_PASSWORD)
    page.locator("form button[type=submit]").last.click()
    if "/second-factor" in page.url:
        page.locator("#code").fill(fresh_code(email))  # each code signs in once
        page.locator("form button[type=submit]").last.click()
    expect(page.get_by_test_id("signed-in")).to_be_visible()


def approve_as(page: Page, case_id: str, comment: str) -> None:
    page.goto(f"/reviews/{case_id}")
    expect(page.get_by_test_id("sandbox")).to_be_visible()
    page.get_by_test_id("claim").click()
    page.locator("label.chip", has=page.get_by_test_id("decision-approve")).click()
    page.get_by_test_id("comment").fill(comment)
    page.get_by_test_id("decide").click()
    expect(page).to_have_url(re.compile(r"/reviews$"))


def test_two_senior_officers_approve_a_tier_2_case_and_the_dealer_sees_it(
        browser: Browser, playwright: Playwright, live_server: Any) -> None:
    app_id = to_risk(live_server.url, make_card_images(), persona_id("96", "3"))
    repo = live_server.app.extensions["leaseline"].applications.repo
    tablet = browser.new_context(base_url=live_server.url, **TABLET)
    first = browser.new_context(base_url=live_server.url, **playwright.devices["Pixel 7"])
    second = browser.new_context(base_url=live_server.url, **playwright.devices["Pixel 7"])
    try:
        sales = tablet.new_page()
        sign_in(sales, "sales.pudong@demo.leaseline.cn")
        sales.goto(f"/applications/{app_id}")
        expect(sales.locator("[data-status=referred]").first).to_be_visible(timeout=15_000)
        sales.evaluate("window.__marker = 1")
        case_id = repo.get(app_id, Scope()).risk_result["review"]["id"]

        officer1 = first.new_page()
        sign_in(officer1, "risk2@demo.leaseline.cn")
        officer1.goto("/reviews")
        expect(officer1.locator(f"[data-case='{case_id}'][data-tier='2']")).to_be_visible()
        approve_as(officer1, case_id, "多头借贷但收入覆盖充足，同意")
        # one approval is not enough for tier 2: still with a risk officer on the tablet
        expect(sales.locator("#app-status [data-status=referred]")).to_be_visible()

        officer2 = second.new_page()
        sign_in(officer2, "risk3@demo.leaseline.cn")
        approve_as(officer2, case_id, "复核无异常，同意")

        # the tablet follows without a reload (the status block is polled)
        expect(sales.locator("#app-status").locator(
            "[data-status=approved], [data-status=contract_pending], [data-status=contract_ready]").first
        ).to_be_visible(timeout=15_000)
        assert sales.evaluate("window.__marker") == 1
    finally:
        for context in (tablet, first, second):
            context.close()


def test_the_counter_offer_fields_show_only_for_a_counter_offer_and_the_decision_is_confirmed(
        browser: Browser, playwright: Playwright, live_server: Any) -> None:
    """On the officer's phone the down payment and term appear only while 调整方案 is chosen (static JS, no
    inline script); after the decision the queue confirms it and lists it under the officer's recent decisions."""
    app_id = to_risk(live_server.url, make_card_images(), persona_id("91", "9"))
    repo = live_server.app.extensions["leaseline"].applications.repo
    context = browser.new_context(base_url=live_server.url, **playwright.devices["Pixel 7"])
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        sign_in(page, "risk1@demo.leaseline.cn")
        for _ in range(80):  # the risk service's answer (a referral) reaches the BFF
            if repo.get(app_id, Scope()).status == "referred":
                break
            page.wait_for_timeout(250)
        case_id = repo.get(app_id, Scope()).risk_result["review"]["id"]
        page.goto(f"/reviews/{case_id}")
        page.get_by_test_id("claim").click()
        fields = page.get_by_test_id("counter-offer-fields")
        expect(fields).to_be_hidden()
        page.locator("label.chip", has=page.get_by_test_id("decision-counter")).click()
        expect(fields).to_be_visible()
        page.locator("#down_payment").fill("60000")
        page.locator("label.chip", has=page.get_by_test_id("decision-approve")).click()
        expect(fields).to_be_hidden()
        page.get_by_test_id("comment").fill("收入证明充分，同意")
        page.get_by_test_id("decide").click()
        expect(page).to_have_url(re.compile(r"/reviews$"))
        expect(page.get_by_test_id("review-flash")).to_contain_text(app_id[:8])
        expect(page.get_by_test_id("recent-decisions").locator(f"[data-decided='{case_id}']")).to_be_visible()
        expect(page.locator(f"[data-case='{case_id}']")).to_have_count(0)
        assert errors == [], errors  # e.g. a Content-Security-Policy refusal
    finally:
        context.close()
