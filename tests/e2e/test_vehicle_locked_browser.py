"""The salesperson's VIN on a phone (issue 17 §5): a save refused because the contract is being drafted from the car's
details meanwhile (409) shows the reason in place of the form, with the VIN as typed (htmx: pwa/static/js/app.js),
not the generic "request failed" bar."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests.common.vins import fresh_vin
from tests.e2e.test_kyc import sign_in
from tests.integration.test_applications import SALES_A
from tests.integration.test_vehicle_by_dealer import _set

PLAN = "20-36-0-ctpl+damage+tpl_1m-D-f-a"


@pytest.mark.console(r"status of 409")  # the refusal, shown in place
def test_a_vin_refused_while_the_contract_is_drafted_is_shown_in_place_as_typed(page: Page, live_server: Any) -> None:
    sign_in(page, SALES_A)
    page.goto(f"/applications/new?vehicle=byd-han-ev&plan={PLAN.replace('+', '%2B')}")
    page.get_by_test_id("start-application").click()
    expect(page).to_have_url(re.compile(r"/applications/[0-9a-f-]{36}/consent$"))
    app_id = page.url.rsplit("/", 2)[-2]
    page.get_by_test_id("consent-sensitive_pi").check()
    page.get_by_test_id("consent-credit_reporting").check()
    page.get_by_test_id("consent-continue").click()
    expect(page).to_have_url(re.compile(r"/id-card$"))
    # the contract waits for the VIN: the salesperson opens the car's details ...
    _set(live_server.app, app_id, status="contract_pending", contract_attempts=1,
         contract_result=json.dumps({"error": "vehicle_details", "detail": "-", "attempt": 1}))
    page.goto(f"/applications/{app_id}/steps/vehicle")
    expect(page.get_by_test_id("vehicle-locked")).to_have_count(0)
    # ... and while they type, another attempt begins drafting the contract
    _set(live_server.app, app_id, contract_attempts=2)
    vin = fresh_vin()  # a car of its own: one car, one lease
    page.locator("#f-vin").fill(vin)
    page.locator("#f-condition").select_option("new")
    page.get_by_test_id("save-step").click()
    expect(page.get_by_test_id("vehicle-locked")).to_be_visible()
    expect(page.get_by_test_id("vehicle-locked")).to_contain_text("车辆信息不能修改")
    expect(page.locator("#f-vin")).to_have_value(vin)
    expect(page.locator("#request-error")).to_be_hidden()
    assert page.url.endswith("/steps/vehicle")
