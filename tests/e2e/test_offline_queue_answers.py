"""What the offline queue (pwa/static/js/app.js) does with the answer a step saved offline gets once the phone is
back online (Pixel 7, Chromium's offline emulation). A refusal (409, and any 4xx but 408/429) is final: the step
leaves the queue, is never sent again, and the refusal is shown in place as for a live post. The server's trouble
(5xx) keeps it, tried again after growing pauses (not every second), and it goes once the server takes it."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
from playwright.sync_api import BrowserContext
from playwright.sync_api import Page
from playwright.sync_api import Request
from playwright.sync_api import Route
from playwright.sync_api import expect

from infra.applications import Scope
from tests.common.vins import fresh_vin
from tests.e2e.test_desk import SALES
from tests.e2e.test_desk import start_application
from tests.e2e.test_review_browser import sign_in
from tests.e2e.waiting import wait_until
from tests.integration.test_vehicle_by_dealer import _set

pytestmark = pytest.mark.e2e
OFFLINE = r"ERR_INTERNET_DISCONNECTED|ERR_CONNECTION_REFUSED|Failed to load resource|htmx:sendError|htmx:afterRequest"
QUEUED = "JSON.parse(localStorage.getItem('leaseline-outbox') || '[]').length"


def _vehicle_step(page: Page, live_server: Any) -> str:
    """A draft with consent, its car's details typed on the salesperson's phone (not yet saved); its id."""
    app_id = start_application(live_server, SALES)
    svc = live_server.app.extensions["leaseline"]
    from bff.applications.services import Actor

    owner = svc.accounts.by_email(SALES)[0]
    actor = Actor("staff", owner.id, owner.email, Scope(dealer_id=owner.dealer_id), dealer_id=owner.dealer_id,
                  owner_id=owner.id)
    svc.applications.give_consent(actor, svc.applications.repo.get(app_id, Scope()),
                                  ["sensitive_pi", "credit_reporting"])
    return app_id


def _open(page: Page, app_id: str, condition: str = "new", mileage: str = "") -> str:
    """The car's details typed on the step's page (a car of its own: one car, one lease); the VIN typed."""
    vin = fresh_vin()
    page.goto(f"/applications/{app_id}/steps/vehicle")
    expect(page.locator("html")).to_have_class(re.compile(r"\bjs\b"))
    wait_until(page, "window.htmx !== undefined", timeout=15)
    expect(page.get_by_test_id("vehicle-locked")).to_have_count(0)
    page.locator("#f-vin").fill(vin)
    page.locator("#f-condition").select_option(condition)
    if mileage:
        page.locator("#f-mileage").fill(mileage)
    return vin


def _save_offline(page: Page, context: BrowserContext) -> None:
    context.set_offline(True)
    page.get_by_test_id("save-step").click()
    expect(page.locator("[data-offline-note]")).to_be_visible()
    assert page.evaluate(QUEUED) == 1


@pytest.mark.console(OFFLINE, r"status of 409")  # the refusal, shown in place
def test_a_step_refused_when_it_is_sent_from_the_queue_is_shown_and_never_sent_again(
        page: Page, context: BrowserContext, live_server: Any) -> None:
    app_id = _vehicle_step(page, live_server)
    # the contract waits for the car's details: the salesperson may give them
    _set(live_server.app, app_id, status="contract_pending", contract_attempts=1,
         contract_result=json.dumps({"error": "vehicle_details", "detail": "-", "attempt": 1}))
    sign_in(page, SALES)
    vin = _open(page, app_id)
    posts: list[Request] = []
    page.on("request", lambda r: posts.append(r) if r.method == "POST" and "/steps/vehicle" in r.url else None)
    _save_offline(page, context)
    # while the phone is offline, another attempt begins drafting the contract: the details are refused (409)
    _set(live_server.app, app_id, contract_attempts=2)
    context.set_offline(False)

    wait_until(page, "document.querySelector('[data-testid=vehicle-locked]') !== null", timeout=15)
    expect(page.get_by_test_id("vehicle-locked")).to_contain_text("车辆信息不能修改")
    expect(page.locator("#f-vin")).to_have_value(vin)  # as typed
    expect(page.locator("[data-offline-note]")).to_be_hidden()
    expect(page.locator("#request-error")).to_be_hidden()
    expect(page.get_by_test_id("sent-note")).to_be_hidden()  # it did not go through
    assert page.url.endswith("/steps/vehicle")
    assert page.evaluate(QUEUED) == 0
    page.wait_for_timeout(3000)  # a step still queued is sent again within a second or two
    assert len(posts) == 1, [p.url for p in posts]
    assert posts[0].headers.get("idempotency-key")
    assert page.evaluate(QUEUED) == 0


@pytest.mark.console(OFFLINE, r"status of 503", r"HTTP 503 POST")  # the server away, on purpose (page.route)
def test_a_step_the_server_cannot_take_yet_stays_queued_and_is_tried_after_growing_pauses(
        page: Page, context: BrowserContext, live_server: Any) -> None:
    app_id = _vehicle_step(page, live_server)
    sign_in(page, SALES)
    _open(page, app_id)
    tries: list[float] = []

    def away(route: Route) -> None:
        if route.request.method != "POST":
            route.continue_()
            return
        tries.append(time.monotonic())
        route.fulfill(status=503, body="unavailable", headers={"Content-Type": "text/plain"})

    step = re.compile(rf".*/applications/{app_id}/steps/vehicle$")
    page.route(step, away)
    _save_offline(page, context)
    context.set_offline(False)

    deadline = time.monotonic() + 20
    while len(tries) < 3 and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert len(tries) >= 3, tries
    first, second = tries[1] - tries[0], tries[2] - tries[1]
    # not every second: the pause grows (1 s, then 2 s). The pauses are lower bounds (a busy machine only lengthens
    # what is measured, so the first may come out longer than the second): each is checked against its own
    assert first >= 0.8 and second >= 1.8, (first, second)
    assert page.evaluate(QUEUED) == 1  # kept: nothing typed is lost
    expect(page.locator("[data-offline-note]")).to_be_visible()

    page.unroute(step)
    context.set_offline(True)
    context.set_offline(False)  # back online again: sent at once, not after the pause
    expect(page).not_to_have_url(re.compile(r"/steps/vehicle$"), timeout=15_000)
    expect(page.get_by_test_id("sent-note")).to_be_visible()
    assert page.evaluate(QUEUED) == 0


REFUSED = "JSON.parse(localStorage.getItem('leaseline-refused') || '[]')"


@pytest.mark.console(OFFLINE, r"status of 503", r"HTTP 503 POST", r"status of 409")
def test_a_step_refused_away_from_its_page_is_filled_back_when_its_page_is_opened(
        page: Page, context: BrowserContext, live_server: Any) -> None:
    """Refused while the phone shows another page, what was typed is not lost: kept on the phone, the bar under the
    header says why and links to the step, whose form is filled back as typed until it is saved."""
    app_id = _vehicle_step(page, live_server)
    waiting = json.dumps({"error": "vehicle_details", "detail": "-", "attempt": 1})
    _set(live_server.app, app_id, status="contract_pending", contract_attempts=1, contract_result=waiting)
    sign_in(page, SALES)
    vin = _open(page, app_id, condition="used", mileage="12000")
    tries: list[str] = []

    def away(route: Route) -> None:  # the server cannot take it yet: kept, while the salesperson goes on
        if route.request.method != "POST":
            route.continue_()
            return
        tries.append(route.request.url)
        route.fulfill(status=503, body="unavailable", headers={"Content-Type": "text/plain"})

    step = re.compile(rf".*/applications/{app_id}/steps/vehicle$")
    page.route(step, away)
    _save_offline(page, context)
    context.set_offline(False)
    deadline = time.monotonic() + 10
    while not tries and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert tries and page.evaluate(QUEUED) == 1
    page.goto(f"/applications/{app_id}")  # on to the application's page: the step is still queued there
    # another attempt begins drafting the contract; the server answers again: refused (409) away from its page
    _set(live_server.app, app_id, contract_attempts=2)
    page.unroute(step)
    context.set_offline(True)
    context.set_offline(False)
    expect(page.get_by_test_id("sent-refused")).to_contain_text("车辆信息不能修改")
    assert page.evaluate(QUEUED) == 0
    assert page.evaluate(REFUSED + ".length") == 1  # what was typed is kept on the phone

    # the bar leads to the step, whose form is filled back as typed, with why
    page.get_by_test_id("sent-refused-open").click()
    expect(page).to_have_url(step)
    expect(page.get_by_test_id("refused-filled")).to_contain_text("车辆信息不能修改")
    expect(page.get_by_test_id("refused-filled")).to_contain_text("已重新填回")
    expect(page.locator("#f-vin")).to_have_value(vin)
    expect(page.locator("#f-condition")).to_have_value("used")
    expect(page.locator("#f-mileage")).to_have_value("12000")

    # kept until saved: once the details may be given again, the form opened anew is filled back and saved
    _set(live_server.app, app_id, status="draft", contract_attempts=0, contract_result="{}")
    page.reload()
    expect(page.locator("#f-vin")).to_have_value(vin)
    expect(page.locator("#f-mileage")).to_have_value("12000")
    page.get_by_test_id("save-step").click()
    expect(page).not_to_have_url(step, timeout=15_000)
    assert page.evaluate(REFUSED + ".length") == 0
    svc = live_server.app.extensions["leaseline"].applications
    draft = svc.draft(svc.repo.get(app_id, Scope()))
    assert (draft["vin"], draft["condition"], draft["mileage"]) == (vin, "used", "12000")
