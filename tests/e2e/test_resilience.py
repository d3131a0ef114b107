"""What the user sees when a change cannot be calculated, and that switching language keeps the plan."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page
from playwright.sync_api import Route
from playwright.sync_api import expect

BUILDER = "/plans/toyota-camry"


@pytest.mark.console(r"htmx:(afterRequest|sendError)", r"net::ERR_CONNECTION_REFUSED")
def test_a_failed_requote_marks_the_figures_stale_and_recovers(page: Page) -> None:
    page.goto(BUILDER)
    rent = page.get_by_test_id("rent")
    before = rent.inner_text()
    banner = page.locator("#request-error")
    expect(banner).to_be_hidden()

    def fail(route: Route) -> None:
        route.abort("connectionrefused")

    page.route(re.compile(r".*/plans/toyota-camry\?.*"), fail)
    page.locator("label.chip", has=page.locator("input[name=term][value='48']")).click()
    expect(banner).to_be_visible()
    expect(page.locator("#results")).to_have_class(re.compile(r"\bstale\b"))
    expect(rent).to_have_text(before)  # nothing pretends to be the new quote

    page.unroute(re.compile(r".*/plans/toyota-camry\?.*"))
    with page.expect_response(re.compile(r".*/plans/toyota-camry\?.*term=24.*")):
        page.locator("label.chip", has=page.locator("input[name=term][value='24']")).click()
    expect(banner).to_be_hidden()
    expect(page.locator("#results")).not_to_have_class(re.compile(r"\bstale\b"))
    expect(rent).not_to_have_text(before)


def test_switching_language_keeps_the_plan_chosen_with_htmx(page: Page) -> None:
    page.goto(BUILDER)
    with page.expect_response(re.compile(r".*term=60.*")):
        page.locator("label.chip", has=page.locator("input[name=term][value='60']")).click()
    expect(page).to_have_url(re.compile(r"term=60"))
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page).to_have_url(re.compile(r"term=60"))
    expect(page.locator("#builder input[name=term][value='60']")).to_be_checked()
