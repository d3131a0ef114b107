"""Issue 17 §6 on a phone (Pixel 7): after the 3-D Secure test card the payment is never stuck on "您的银行要求确认这笔
付款" — the customer confirms with the bank, or the check fails and another card pays, in words for the customer
(never the raw code) — in TEST MODE (localstripe, whose 3-D Secure check the page simulates) and through Stripe.js's
Payment Element (the sandbox of tests/peers/stripe_js_sandbox.js runs the check, as Stripe.js does, and
``handleNextAction`` confirms a payment left waiting for the bank)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Page
from playwright.sync_api import Playwright
from playwright.sync_api import expect

from bff.payments.declines import decline_text
from tests.common.stripe_element import THREE_D_SECURE
from tests.common.stripe_element import StripeApiEdge
from tests.conftest import LiveServer
from tests.e2e.test_kyc import sign_in
from tests.e2e.test_payment_element_browser import element_server as element_server  # noqa: F401 (a fixture)
from tests.e2e.test_payment_element_browser import stripe_api as stripe_api  # noqa: F401 (a fixture)
from tests.integration.test_applications import SALES_A
from tests.integration.test_payments import DEPOSIT
from tests.integration.test_payments import intents
from tests.integration.test_payments import payments
from tests.integration.test_payments import signed_application
from tests.integration.test_payments import status

AUTH_FAILED = "payment_intent_authentication_failure"
WORDED = re.compile("|".join(re.escape(text) for text in decline_text(AUTH_FAILED)))


@pytest.mark.console(r"status of 422")  # the failed check's page answers 422 with its explanation
def test_after_3d_secure_the_customer_confirms_with_the_bank_or_pays_with_another_card(
        page: Page, live_server: Any, stripe_server: Any) -> None:
    app_id = signed_application(live_server.app, DEPOSIT)
    sign_in(page, SALES_A)
    page.goto(f"/applications/{app_id}/payment")
    expect(page.get_by_test_id("test-mode")).to_be_visible()

    # the 3-D Secure card: the bank's check fails, the words say so and another card pays
    page.get_by_test_id("method-upfront").select_option("3ds")
    page.get_by_test_id("pay-upfront").click()
    expect(page.get_by_test_id("payment-upfront")).to_have_attribute("data-status", "requires_action")
    expect(page.get_by_test_id("waits-for-bank-upfront")).to_be_visible()
    expect(page.get_by_test_id("authenticate-upfront")).to_be_visible()
    expect(page.get_by_test_id("pay-form-upfront")).to_be_visible()  # another card, right there
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_test_id("fail-authentication-upfront").click()
    expect(page.get_by_test_id("payment-error")).to_have_text(WORDED)
    expect(page.get_by_test_id("payment-error")).not_to_contain_text(AUTH_FAILED)
    expect(page.get_by_test_id("payment-upfront")).to_have_attribute("data-status", "failed")
    page.get_by_test_id("method-upfront").select_option("visa")
    page.get_by_test_id("pay-upfront").click()
    expect(page.get_by_test_id("payment-upfront")).to_have_attribute("data-status", "succeeded")

    # the deposit with the 3-D Secure card: confirmed with the bank
    page.get_by_test_id("method-deposit").select_option("3ds")
    page.get_by_test_id("pay-deposit").click()
    expect(page.get_by_test_id("payment-deposit")).to_have_attribute("data-status", "requires_action")
    page.get_by_test_id("authenticate-deposit").click()
    expect(page.get_by_test_id("payment-deposit")).to_have_attribute("data-status", "succeeded")
    expect(page.get_by_test_id("ready")).to_be_visible()

    paid = payments(live_server.app, app_id)
    assert status(live_server.app, app_id) == "ready_for_delivery"
    for p in paid.values():  # each line charged once, whatever the attempts
        charged = [i for i in intents(stripe_server, p.id) if i.status == "succeeded"]
        assert [i.amount_received for i in charged] == [p.amount]


@pytest.fixture()
def element_page(browser: Browser, playwright: Playwright, element_server: tuple[LiveServer, str],  # noqa: F811
                 stripe_server: Any) -> Iterator[tuple[Page, LiveServer, str]]:
    """A Pixel 7 signed in as the salesperson on the Payment Element's BFF, at a signed lease's payment page."""
    server, key = element_server
    context = browser.new_context(base_url=server.url, **playwright.devices["Pixel 7"])
    page = context.new_page()
    StripeApiEdge(stripe_server, key).install(page)
    app_id = signed_application(server.app, DEPOSIT)
    try:
        sign_in(page, SALES_A)
        page.goto(f"/applications/{app_id}/payment")
        yield page, server, app_id
    finally:
        context.close()


def charged_once(server: LiveServer, stripe_server: Any, app_id: str) -> None:
    """Every line of the lease paid, each charged once whatever the attempts."""
    paid = payments(server.app, app_id)
    assert {p.status for p in paid.values()} == {"succeeded"}
    for p in paid.values():
        charged = [i for i in intents(stripe_server, p.id) if i.status == "succeeded"]
        assert [i.amount_received for i in charged] == [p.amount]


def test_the_payment_element_words_a_failed_3d_secure_check_and_another_card_pays(
        element_page: tuple[Page, LiveServer, str], stripe_server: Any) -> None:
    page, server, app_id = element_page
    page.get_by_test_id("pay-upfront").click()
    confirm = page.get_by_test_id("confirm-upfront")
    expect(confirm).to_be_enabled()
    page.get_by_test_id("stripe-sandbox-card").select_option(THREE_D_SECURE)
    confirm.click()  # Stripe.js runs the bank's check, which fails
    page.get_by_test_id("stripe-sandbox-3ds-fail").click()
    expect(page.get_by_test_id("checkout-error")).to_have_text(WORDED)
    expect(confirm).to_be_enabled()
    page.get_by_test_id("stripe-sandbox-card").select_option("pm_card_visa")
    confirm.click()
    upfront = payments(server.app, app_id)["upfront"]
    page.wait_for_url(re.compile(rf".*/applications/{app_id}/payment\?returned={upfront.id}$"))
    expect(page.get_by_test_id("payment-upfront")).to_have_attribute("data-status", "succeeded")
    page.get_by_test_id("pay-deposit").click()
    page.get_by_test_id("confirm-deposit").click()
    expect(page.get_by_test_id("ready")).to_be_visible()
    charged_once(server, stripe_server, app_id)


def test_the_payment_element_confirms_a_payment_left_waiting_for_the_bank(
        element_page: tuple[Page, LiveServer, str], stripe_server: Any) -> None:
    page, server, app_id = element_page
    page.get_by_test_id("pay-upfront").click()
    page.get_by_test_id("confirm-upfront").click()
    expect(page.get_by_test_id("payment-upfront")).to_have_attribute("data-status", "succeeded")
    page.get_by_test_id("pay-deposit").click()
    page.get_by_test_id("stripe-sandbox-card").select_option(THREE_D_SECURE)
    page.get_by_test_id("confirm-deposit").click()
    expect(page.get_by_test_id("stripe-sandbox-3ds")).to_be_visible()
    page.reload()  # the customer left during the bank's check and comes back: the payment waits for the bank
    expect(page.get_by_test_id("checkout-waiting")).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.get_by_test_id("next-action-deposit").click()
    page.get_by_test_id("stripe-sandbox-3ds-complete").click()
    expect(page.get_by_test_id("payment-deposit")).to_have_attribute("data-status", "succeeded")
    expect(page.get_by_test_id("ready")).to_be_visible()
    charged_once(server, stripe_server, app_id)
