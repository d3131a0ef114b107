"""The vehicle picker, plan builder, comparison and budget search in a real browser (Pixel 7 emulation).

Every htmx interaction is checked to happen without a page load: a marker set on ``window`` before the
interaction must still be there afterwards. The same journeys also run with JavaScript disabled, where the
forms fall back to plain GET submissions and redirects.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import BrowserContext
from playwright.sync_api import ConsoleMessage
from playwright.sync_api import Error
from playwright.sync_api import Page
from playwright.sync_api import Response
from playwright.sync_api import expect

from tests.e2e.waiting import wait_until

pytestmark = pytest.mark.e2e

VEHICLE = "toyota-camry"  # new, personal, ICE: the policy's minimum down payment is 20%
BUILDER = f"/plans/{VEHICLE}"


class BrowserErrors:
    """Console errors (CSP violations among them) and uncaught exceptions of one page."""

    def __init__(self, page: Page) -> None:
        self.console: list[str] = []
        self.page: list[str] = []
        page.on("console", self._on_console)
        page.on("pageerror", self._on_pageerror)

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.console.append(f"{message.text} @ {message.location}")

    def _on_pageerror(self, error: Error) -> None:
        self.page.append(f"{error.name}: {error.message}")

    def assert_none(self) -> None:
        assert self.console == [], f"console errors: {self.console}"
        assert self.page == [], f"page errors: {self.page}"


@pytest.fixture
def errors(page: Page) -> Iterator[BrowserErrors]:
    """Collects the page's console errors and page errors; a test fails if any occurred."""
    collected = BrowserErrors(page)
    yield collected
    collected.assert_none()


def mark_document(page: Page) -> None:
    """Set a marker on ``window`` that only a full page load would remove."""
    page.evaluate("window.__marker = 1")


def assert_same_document(page: Page) -> None:
    assert page.evaluate("window.__marker") == 1, "the page was reloaded (marker gone)"


def query(url: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(url).query)


def is_builder_response(response: Response, **params: str) -> bool:
    """An htmx response of the builder whose query has ``params``."""
    if urlsplit(response.url).path != BUILDER or response.request.headers.get("hx-request") != "true":
        return False
    q = query(response.url)
    return all(q.get(k) == [v] for k, v in params.items())


def open_page(page: Page, path: str = BUILDER) -> None:
    page.goto(path)
    # app.js (deferred) swaps the class once it ran; htmx is loaded (deferred) before it.
    expect(page.locator("html")).to_have_class(re.compile(r"\bjs\b"))
    wait_until(page, "window.htmx !== undefined")


# -- with JavaScript -----------------------------------------------------------------------------------


def test_vehicle_search_filters_without_reload_and_opens_builder(page: Page, errors: BrowserErrors) -> None:
    page.goto("/vehicles")
    expect(page.locator("html")).to_have_class(re.compile(r"\bjs\b"))
    wait_until(page, "window.htmx !== undefined")
    vehicles = page.locator("#vehicle-list a.vehicle")
    total = vehicles.count()
    assert total > 10
    mark_document(page)

    with page.expect_response(lambda r: urlsplit(r.url).path == "/vehicles" and query(r.url).get("q") == ["Tesla"]):
        page.locator("#q").fill("Tesla")
    expect(vehicles).to_have_count(2)
    for href in vehicles.evaluate_all("els => els.map(e => e.getAttribute('href'))"):
        assert href.startswith("/plans/tesla-")
    assert_same_document(page)
    expect(page).to_have_url(re.compile(r"/vehicles\?q=Tesla$"))

    # A query that matches nothing says so.
    with page.expect_response(lambda r: query(r.url).get("q") == ["zzzz"]):
        page.locator("#q").fill("zzzz")
    expect(page.locator("#vehicle-list li.empty")).to_be_visible()
    expect(vehicles).to_have_count(0)
    assert_same_document(page)

    with page.expect_response(lambda r: query(r.url).get("q") == ["Model Y"]):
        page.locator("#q").fill("Model Y")
    expect(vehicles).to_have_count(1)
    vehicles.first.tap()
    expect(page).to_have_url(re.compile(r"/plans/tesla-model-y$"))
    expect(page.locator("h1")).to_contain_text("Model Y")
    expect(page.get_by_test_id("rent")).to_contain_text("¥")


def test_slider_and_term_chip_requote_without_reload(page: Page, errors: BrowserErrors) -> None:
    open_page(page)
    rent, apr, verdict = page.get_by_test_id("rent"), page.get_by_test_id("apr"), page.get_by_test_id("verdict")
    expect(page.locator("#down")).to_have_value("20")
    expect(page.locator("#builder input[name=term][value='36']")).to_be_checked()
    expect(verdict).to_have_class(re.compile(r"\bok\b"))
    rent0, apr0 = rent.inner_text(), apr.inner_text()
    mark_document(page)

    # Down payment 20% -> 30%: the readout follows at once (app.js), the quote via htmx.
    with page.expect_response(lambda r: is_builder_response(r, down="30")) as info:
        page.locator("#down").fill("30")
    assert info.value.status == 200
    expect(page.locator("#down-out")).to_contain_text("30%")
    expect(rent).not_to_have_text(rent0)
    expect(page).to_have_url(re.compile(r"[?&]down=30(&|$)"))
    expect(verdict).to_have_class(re.compile(r"\bok\b"))
    assert_same_document(page)
    rent30, apr30 = rent.inner_text(), apr.inner_text()
    assert _yuan(rent30) < _yuan(rent0), "a larger down payment must lower the rent"

    # Term 36 -> 48 months (the radio is visually hidden: tap its chip label).
    with page.expect_response(lambda r: is_builder_response(r, down="30", term="48")):
        page.locator("label.chip", has=page.locator("input[name=term][value='48']")).tap()
    expect(page.locator("#builder input[name=term][value='48']")).to_be_checked()
    expect(rent).not_to_have_text(rent30)
    expect(apr).not_to_have_text(apr30)  # 48 months has its own rate
    assert _yuan(rent.inner_text()) < _yuan(rent30), "a longer term must lower the rent"
    expect(page).to_have_url(re.compile(r"[?&]down=30&term=48(&|$)"))
    assert_same_document(page)
    assert apr0 != apr.inner_text()

    # Keyboard: one arrow step down (5%) from 30% to 25%.
    with page.expect_response(lambda r: is_builder_response(r, down="25", term="48")):
        page.locator("#down").focus()
        page.keyboard.press("ArrowLeft")
    expect(page).to_have_url(re.compile(r"[?&]down=25&term=48(&|$)"))
    expect(page.get_by_test_id("down")).to_contain_text(_money(_price(page) * 25 // 100))
    assert_same_document(page)


@pytest.mark.parametrize("down", ["0", "10"])
def test_down_payment_below_policy_shows_reason(page: Page, errors: BrowserErrors, down: str) -> None:
    open_page(page)
    mark_document(page)
    verdict = page.get_by_test_id("verdict")
    with page.expect_response(lambda r: is_builder_response(r, down=down)):
        page.locator("#down").fill(down)
    expect(verdict).to_have_class(re.compile(r"\bbad\b"))
    expect(verdict).to_have_attribute("role", "alert")
    reason = verdict.locator("li[data-code]")
    expect(reason).to_have_count(1)
    expect(reason).to_contain_text("20%")  # the policy's floor for a new personal ICE car
    assert reason.get_attribute("data-code")
    assert_same_document(page)

    # Back to a compliant down payment: the reason goes away.
    with page.expect_response(lambda r: is_builder_response(r, down="20")):
        page.locator("#down").fill("20")
    expect(verdict).to_have_class(re.compile(r"\bok\b"))
    expect(verdict.locator("li")).to_have_count(0)
    assert_same_document(page)


def test_schedule_expands_with_a_row_per_rent(page: Page, errors: BrowserErrors) -> None:
    open_page(page, f"{BUILDER}?down=30&term=24&residual=20")
    schedule = page.locator("details.schedule")
    rows = schedule.locator("tbody tr:not(.balloon)")
    expect(schedule).not_to_have_attribute("open", re.compile(".*"))
    expect(rows.first).to_be_hidden()
    schedule.locator("summary").click()
    expect(schedule).to_have_attribute("open", "")
    expect(rows).to_have_count(24)
    expect(rows.first).to_be_visible()
    expect(rows.first.locator("td").first).to_have_text("1")
    expect(rows.last.locator("td").first).to_have_text("24")
    expect(schedule.locator("tr.balloon")).to_be_visible()  # the 20% residual is due at the end
    # at the end of the term, month 24 — the month the APR prices it in and the contract states (issue 16)
    expect(schedule.locator("tr.balloon")).to_contain_text("第 24 个月末")
    expect(schedule.locator("summary")).to_contain_text("24")


def test_compare_two_terms_without_reload(page: Page, errors: BrowserErrors) -> None:
    open_page(page)
    mark_document(page)
    compare = page.get_by_test_id("compare")
    expect(compare).to_have_count(0)
    add = page.locator("#results button[name=add]")

    with page.expect_response(lambda r: is_builder_response(r, add="1", term="36")) as info:
        add.click()
    pushed = info.value.header_value("hx-push-url")
    assert pushed and pushed.startswith(f"{BUILDER}?down=20&term=36&") and "cmp=" in pushed and "add=" not in pushed
    expect(compare.locator("thead th[scope=col]")).to_have_count(2)  # the row-header column + 1 plan
    expect(add).to_be_disabled()  # the current plan is already in the comparison
    expect(page).to_have_url(re.compile(r"[?&]cmp=20-36-"))

    with page.expect_response(lambda r: is_builder_response(r, term="60")):
        page.locator("label.chip", has=page.locator("input[name=term][value='60']")).click()
    expect(add).to_be_enabled()
    with page.expect_response(lambda r: is_builder_response(r, add="1", term="60")):
        add.click()

    plan_columns = compare.locator("thead th[scope=col]:not(:empty)")
    expect(plan_columns).to_have_count(2)
    term_row = compare.locator("tbody tr").nth(1).locator("td")
    expect(term_row).to_have_count(2)
    expect(term_row.nth(0)).to_contain_text("36")
    expect(term_row.nth(1)).to_contain_text("60")
    cmp = query(page.url)["cmp"]
    assert len(cmp) == 2 and cmp[0].split("-")[1] == "36" and cmp[1].split("-")[1] == "60"
    assert_same_document(page)

    # Remove the first plan again.
    with page.expect_response(lambda r: is_builder_response(r, remove=cmp[0])):
        compare.locator("button[name=remove]").first.click()
    expect(plan_columns).to_have_count(1)
    expect(page).not_to_have_url(re.compile(re.escape(cmp[0])))
    assert_same_document(page)


def test_budget_search_lists_plans_without_reload(page: Page, errors: BrowserErrors) -> None:
    open_page(page)
    mark_document(page)
    results = page.get_by_test_id("budget-results")
    page.locator("#budget-amount").fill("3000")
    with page.expect_response(lambda r: urlsplit(r.url).path == f"{BUILDER}/budget") as info:
        page.locator("#budget button[type=submit]").click()
    assert info.value.status == 200
    assert query(info.value.url)["budget"] == ["3000"]
    plans = results.locator("ol.plan-list li a")
    expect(plans.first).to_be_visible()
    assert 1 <= plans.count() <= 8
    expect(results.locator("table.reverse tbody tr")).to_have_count(6)  # one row per term
    for href in plans.evaluate_all("els => els.map(e => e.getAttribute('href'))")[:3]:
        assert href.startswith(f"{BUILDER}?down=")
    assert_same_document(page)

    # A plan of the list opens in the builder, with a rent within the budget.
    plans.first.click()
    expect(page).to_have_url(re.compile(re.escape(BUILDER) + r"\?down="))
    assert _yuan(page.get_by_test_id("rent").inner_text()) <= 3000


def test_builder_journey_has_no_console_errors(page: Page) -> None:
    """CSP violations and script errors surface as console errors: a whole journey must cause none."""
    errors = BrowserErrors(page)
    page.goto("/vehicles")
    wait_until(page, "window.htmx !== undefined")
    with page.expect_response(lambda r: query(r.url).get("q") == ["Camry"]):
        page.locator("#q").fill("Camry")
    page.locator("#vehicle-list a.vehicle").first.click()
    expect(page).to_have_url(re.compile(re.escape(BUILDER) + "$"))
    wait_until(page, "window.htmx !== undefined")
    rent = page.get_by_test_id("rent")
    with page.expect_response(lambda r: is_builder_response(r, down="40")):
        page.locator("#down").fill("40")
    with page.expect_response(lambda r: is_builder_response(r, term="24")):
        page.locator("label.chip", has=page.locator("input[name=term][value='24']")).click()
    with page.expect_response(lambda r: is_builder_response(r, residual="30")):
        page.locator("label.chip", has=page.locator("input[name=residual][value='30']")).click()
    with page.expect_response(lambda r: is_builder_response(r, deposit="free")):
        page.locator("label.chip", has=page.locator("input[name=deposit][value='free']")).click()
    with page.expect_response(lambda r: is_builder_response(r, tpl="tpl_2m")):
        page.locator("#tpl").select_option("tpl_2m")
    with page.expect_response(lambda r: is_builder_response(r, add="1")):
        page.locator("#results button[name=add]").click()
    expect(page.get_by_test_id("compare")).to_be_visible()
    page.locator("details.schedule summary").click()
    page.locator("#budget-amount").fill("5000")
    with page.expect_response(lambda r: urlsplit(r.url).path == f"{BUILDER}/budget"):
        page.locator("#budget button[type=submit]").click()
    expect(page.get_by_test_id("budget-results").locator("ol.plan-list li").first).to_be_visible()
    expect(rent).to_contain_text("¥")
    errors.assert_none()


@pytest.mark.parametrize(
    ("start", "change", "kept"),
    [
        (BUILDER, "down", "#builder"),
        ("/vehicles", "q", "#q"),
    ],
)
def test_back_button_restores_the_whole_page(page: Page, start: str, change: str, kept: str) -> None:
    open_page(page, start)
    with page.expect_response(lambda r: change in query(r.url)):
        if change == "down":
            page.locator("#down").fill("40")
        else:
            page.locator("#q").fill("BYD")
    expect(page).to_have_url(re.compile(f"[?&]{change}="))
    page.evaluate("""() => { window.__restored = new Promise(resolve => document.body.addEventListener(
        "htmx:historyRestore", () => resolve(true), {once: true})); }""")
    page.go_back()
    assert page.evaluate("window.__restored") is True  # htmx refetched and swapped the previous page
    expect(page).not_to_have_url(re.compile(f"[?&]{change}="))
    # The page keeps its heading and its form (not only the swapped fragment).
    assert page.locator("main h1").count() == 1, page.evaluate("document.body.innerHTML.trim().slice(0, 80)")
    expect(page.locator(kept)).to_be_visible()


# -- without JavaScript --------------------------------------------------------------------------------


@pytest.fixture
def nojs_page(new_context: Any) -> Page:
    """A page of a Pixel 7 context with JavaScript disabled."""
    context: BrowserContext = new_context(java_script_enabled=False)
    return context.new_page()


def test_builder_without_javascript(nojs_page: Page) -> None:
    page = nojs_page
    page.goto(BUILDER)
    expect(page.locator("html")).to_have_class("no-js")
    submit = page.locator("#builder button.nojs-only")
    expect(submit).to_be_visible()
    rent = page.get_by_test_id("rent")
    rent0, apr0 = rent.inner_text(), page.get_by_test_id("apr").inner_text()

    # Without JavaScript the slider's value is set directly; the submit button posts (GET) the form.
    page.locator("#down").fill("30")
    page.locator("label.chip", has=page.locator("input[name=term][value='48']")).click()
    with page.expect_navigation():
        submit.click()
    q = query(page.url)
    assert q["down"] == ["30"] and q["term"] == ["48"] and q["submitted"] == ["1"]
    expect(rent).not_to_have_text(rent0)
    expect(page.get_by_test_id("apr")).not_to_have_text(apr0)
    expect(page.locator("#down")).to_have_value("30")
    expect(page.locator("#builder input[name=term][value='48']")).to_be_checked()
    expect(page.get_by_test_id("verdict")).to_have_class(re.compile(r"\bok\b"))

    # A non-compliant down payment shows the reason after the full page load.
    page.locator("#down").fill("10")
    with page.expect_navigation():
        submit.click()
    expect(page.get_by_test_id("verdict").locator("li[data-code]")).to_have_count(1)
    page.locator("#down").fill("30")
    with page.expect_navigation():
        submit.click()

    # Compare: "add" redirects (303) to the canonical URL that carries the comparison.
    add = page.locator("#results button[name=add]")
    with page.expect_navigation():
        add.click()
    expect(page).to_have_url(re.compile(r"[?&]cmp=30-48-"))
    expect(page).not_to_have_url(re.compile(r"[?&]add="))
    page.locator("label.chip", has=page.locator("input[name=term][value='24']")).click()
    with page.expect_navigation():
        submit.click()
    with page.expect_navigation():
        add.click()
    compare = page.get_by_test_id("compare")
    expect(compare.locator("thead th[scope=col]:not(:empty)")).to_have_count(2)
    expect(compare.locator("tbody tr").nth(1).locator("td").nth(0)).to_contain_text("48")
    expect(compare.locator("tbody tr").nth(1).locator("td").nth(1)).to_contain_text("24")

    # Budget: a full page with the results.
    page.locator("#budget-amount").fill("3000")
    with page.expect_navigation():
        page.locator("#budget button[type=submit]").click()
    expect(page).to_have_url(re.compile(re.escape(f"{BUILDER}/budget") + r"\?.*budget=3000"))
    results = page.get_by_test_id("budget-results")
    expect(results.locator("ol.plan-list li a").first).to_be_visible()
    expect(results.locator("table.reverse tbody tr")).to_have_count(6)
    expect(page.locator("h1")).to_be_visible()


# -- helpers -------------------------------------------------------------------------------------------


def _yuan(text: str) -> float:
    """``¥3,123.45`` (or with a thin space / other grouping) as a number."""
    digits = re.sub(r"[^\d.]", "", text)
    assert digits, f"no amount in {text!r}"
    return float(digits)


def _price(page: Page) -> int:
    return int(Decimal(page.locator("#down").get_attribute("data-price") or "0"))


def _money(amount: int) -> str:
    return f"{amount:,}"
