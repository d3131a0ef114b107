"""The payment step on a phone (Pixel 7) after signing: TEST MODE said plainly, a declined card explained, a
double tap on "pay" charging once, and the lease ready for delivery."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page
from playwright.sync_api import expect

from tests.e2e.test_kyc import sign_in
from tests.integration.test_applications import SALES_A
from tests.integration.test_payments import DEPOSIT
from tests.integration.test_payments import intents
from tests.integration.test_payments import payments
from tests.integration.test_payments import signed_application


@pytest.mark.console(r"status of 422")  # the declined card's page answers 422 with its explanation
def test_the_customer_pays_on_a_phone_and_a_double_tap_charges_once(page: Page, live_server: Any,
                                                                     stripe_server: Any) -> None:
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    app_id = signed_application(live_server.app, DEPOSIT)
    sign_in(page, SALES_A)
    page.goto(f"/applications/{app_id}")
    page.get_by_test_id("go-payment").click()
    expect(page.get_by_test_id("test-mode")).to_be_visible()
    expect(page.get_by_test_id("amount-upfront")).to_have_text(re.compile(r"^¥[\d,]+\.\d{2}$"))
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    page.get_by_test_id("method-upfront").select_option("declined")
    page.get_by_test_id("pay-upfront").click()
    expect(page.get_by_test_id("payment-error")).to_be_visible()
    expect(page.get_by_test_id("payment-upfront")).to_have_attribute("data-status", "failed")

    page.get_by_test_id("method-upfront").select_option("visa")
    page.get_by_test_id("pay-upfront").dblclick()  # an impatient double tap
    expect(page.get_by_test_id("payment-upfront")).to_have_attribute("data-status", "succeeded")
    page.get_by_test_id("pay-deposit").click()
    expect(page.get_by_test_id("payment-deposit")).to_have_attribute("data-status", "succeeded")
    expect(page.get_by_test_id("ready")).to_be_visible()
    assert not errors, errors

    upfront = payments(live_server.app, app_id)["upfront"]
    charged = [i for i in intents(stripe_server, upfront.id) if i.status == "succeeded"]
    assert len(charged) == 1 and charged[0].amount == upfront.amount
