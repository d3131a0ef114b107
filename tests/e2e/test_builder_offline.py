"""The plan builder and the application's steps when the network comes and goes (Pixel 7, Chromium's offline
emulation): the figures always become those of the choice on screen, a plan whose figures are not the choice on
screen is never applied for, and a step saved offline moves on, and says so, once it is sent."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlencode

import pytest
from playwright.sync_api import BrowserContext
from playwright.sync_api import Page
from playwright.sync_api import Route
from playwright.sync_api import expect

from tests.e2e.test_desk import SALES
from tests.e2e.test_desk import start_application
from tests.e2e.test_review_browser import sign_in
from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.e2e
BUILDER = "/plans/toyota-camry"
OFFLINE = r"ERR_INTERNET_DISCONNECTED|ERR_CONNECTION_REFUSED|Failed to load resource|htmx:sendError|htmx:afterRequest"
QUOTE = re.compile(r".*/plans/toyota-camry\?.*")


def ready(page: Page, path: str = BUILDER) -> None:
    page.goto(path)
    expect(page.locator("html")).to_have_class(re.compile(r"\bjs\b"))
    wait_until(page, "window.htmx !== undefined")


def term_chip(page: Page, months: int) -> Any:
    return page.locator("label.chip", has=page.locator(f"input[name=term][value='{months}']"))


@pytest.mark.console(OFFLINE)
def test_a_term_chosen_offline_is_quoted_when_back_online_and_never_applied_stale(
        page: Page, context: BrowserContext) -> None:
    sign_in(page, SALES)
    ready(page)
    rent, apply = page.get_by_test_id("rent"), page.get_by_test_id("apply")
    before = rent.inner_text()
    expect(apply).to_be_enabled()

    context.set_offline(True)
    term_chip(page, 60).click()
    expect(page.locator("#request-error")).to_be_visible()
    expect(rent).to_have_text(before)
    # the figures are the 36-month plan's: nothing may apply for it, or send it, while 60 is chosen
    expect(apply).to_be_disabled()
    assert apply.get_attribute("value") is None
    send = page.get_by_test_id("send-plan")
    if send.count():
        assert send.get_attribute("href") is None

    with page.expect_response(lambda r: "term=60" in r.url and r.status == 200):
        context.set_offline(False)  # back online: the choice on screen is quoted without a tap
    expect(page.locator("#request-error")).to_be_hidden()
    expect(page.locator("#results")).not_to_have_class(re.compile(r"\bstale\b"))
    expect(rent).not_to_have_text(before)
    expect(page.locator("details.schedule summary")).to_contain_text("60")
    expect(apply).to_be_enabled()
    assert "-60-" in (apply.get_attribute("value") or "")


@pytest.mark.console(OFFLINE)
def test_tapping_the_chosen_term_again_retries(page: Page) -> None:
    ready(page)
    rent = page.get_by_test_id("rent")
    before = rent.inner_text()

    def fail(route: Route) -> None:
        route.abort("connectionrefused")

    page.route(QUOTE, fail)
    term_chip(page, 60).click()
    expect(page.locator("#request-error")).to_be_visible()
    page.unroute(QUOTE)
    with page.expect_response(lambda r: "term=60" in r.url and r.status == 200):
        term_chip(page, 60).click()  # the same chip again: it asks again
    expect(page.locator("#request-error")).to_be_hidden()
    expect(rent).not_to_have_text(before)
    expect(page.locator("details.schedule summary")).to_contain_text("60")


@pytest.mark.console(r"status of 422")
def test_the_server_refuses_to_apply_for_a_plan_that_is_not_the_one_chosen(page: Page) -> None:
    sign_in(page, SALES)
    shown = "20-36-0-ctpl+damage+tpl_1m-D-f-a"  # the figures the phone showed: 36 months
    chosen = {"down": "20", "term": "60", "residual": "0", "deposit": "deposit", "extras": "financed",
              "timing": "arrears"}  # and the standard insurance
    response = page.goto(f"{BUILDER}?{urlencode({**chosen, 'apply': shown})}")
    assert response is not None and response.status == 422
    expect(page).to_have_url(re.compile(r"/plans/toyota-camry"))
    expect(page.get_by_test_id("input-errors")).to_contain_text("方案")
    expect(page.locator("details.schedule summary")).to_contain_text("60")  # the figures of the choice, to check
    # the plan that is the choice on screen goes through to the application's confirmation
    page.get_by_test_id("apply").click()
    expect(page).to_have_url(re.compile(r"/applications/new\?.*plan=20-60-"))


@pytest.mark.console(OFFLINE)
def test_a_step_saved_offline_moves_on_and_says_it_was_sent(page: Page, context: BrowserContext,
                                                            live_server: Any) -> None:
    app_id = start_application(live_server, SALES)
    svc = live_server.app.extensions["leaseline"]
    from infra.applications import Scope

    application = svc.applications.repo.get(app_id, Scope())
    owner = svc.accounts.by_email(SALES)[0]
    from bff.applications.services import Actor

    actor = Actor("staff", owner.id, owner.email, Scope(dealer_id=owner.dealer_id), dealer_id=owner.dealer_id,
                  owner_id=owner.id)
    svc.applications.give_consent(actor, application, ["sensitive_pi", "credit_reporting"])
    sign_in(page, SALES)
    ready(page, f"/applications/{app_id}/steps/work")
    page.locator("#f-employment").select_option("employed")
    page.locator("#f-employer").fill("上海某某科技有限公司")
    page.locator("#f-employment_years").fill("6")
    page.locator("#f-monthly_income").fill("28000")
    page.locator("#f-housing").select_option("rent")
    page.locator("#f-dependants").fill("1")
    page.locator("#f-existing_loans").fill("0")
    page.locator("#f-monthly_repayments").fill("0")
    context.set_offline(True)
    page.get_by_test_id("save-step").click()
    expect(page.locator("[data-offline-note]")).to_be_visible()
    context.set_offline(False)
    expect(page).not_to_have_url(re.compile(r"/steps/work$"), timeout=15_000)  # sent: on to what follows
    expect(page.get_by_test_id("sent-note")).to_be_visible()
    expect(page.get_by_test_id("sent-note")).to_contain_text("已发送")
