"""The production payment UI on a phone (Pixel 7): our page, payment.js and the CSP with Stripe.js's Payment Element.

js.stripe.com cannot be reached from here, so https://js.stripe.com/v3/ is served from a clearly named test double,
tests/peers/stripe_js_sandbox.js, and the https://api.stripe.com call it makes (confirm a PaymentIntent with the
publishable key and the client secret) is answered from localstripe (tests/common/stripe_element.py). The walk: the
element appears, a declined card is explained on the page with nothing booked, a good card tapped twice confirms
once and Stripe's redirect lands on our return URL with the payment applied from localstripe's state, then the
deposit, and the lease is ready for delivery."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser
from playwright.sync_api import Playwright
from playwright.sync_api import expect

from bff.payments.declines import GENERIC
from tests.common.stripe_element import DECLINED
from tests.common.stripe_element import StripeApiEdge
from tests.common.stripe_element import publishable_key
from tests.common.stripe_element import recording_proxy
from tests.conftest import LiveServer
from tests.conftest import build_app
from tests.conftest import stripe_config
from tests.e2e.test_kyc import sign_in
from tests.integration.test_applications import SALES_A
from tests.integration.test_payments import DEPOSIT
from tests.integration.test_payments import intents
from tests.integration.test_payments import payments
from tests.integration.test_payments import signed_application
from tests.integration.test_payments import status


@pytest.fixture(scope="module")
def stripe_api(stripe_server: Any) -> Iterator[str]:
    """localstripe behind the pass-through that leaves out what it predates (tests/common/stripe_element.py)."""
    for _, url in recording_proxy(stripe_server):
        yield url


@pytest.fixture(scope="module")
def element_server(live_server: Any, stripe_server: Any, stripe_api: str) -> Iterator[tuple[LiveServer, str]]:
    """A second live BFF on the browser tests' database, with a publishable key: the Payment Element."""
    settings = live_server.app.config["SETTINGS"]
    key = publishable_key()
    app = build_app(settings.database_url, s3_endpoint_url=settings.s3_endpoint_url,
                    s3_access_key=settings.s3_access_key, s3_secret_key=settings.s3_secret_key,
                    risk_url=settings.risk_url, contract_url=settings.contract_url,
                    **{**stripe_config(stripe_server), "stripe_api_base": stripe_api}, stripe_publishable_key=key)
    try:
        with LiveServer(app) as server:
            yield server, key
    finally:
        app.extensions["leaseline"].db.dispose()


@pytest.mark.console(r"status of 402")  # the declined card's answer from api.stripe.com (the edge)
def test_the_customer_pays_through_the_payment_element_on_a_phone(
        browser: Browser, playwright: Playwright, element_server: tuple[LiveServer, str], stripe_server: Any) -> None:
    server, key = element_server
    context = browser.new_context(base_url=server.url, **playwright.devices["Pixel 7"])
    page = context.new_page()
    edge = StripeApiEdge(stripe_server, key)
    edge.install(page)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    # a CSP refusal or a script error shows here; a 402 answer's own "Failed to load resource" line is expected
    page.on("console", lambda m: errors.append(m.text)
            if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
    app_id = signed_application(server.app, DEPOSIT)
    try:
        sign_in(page, SALES_A)
        page.goto(f"/applications/{app_id}")
        page.get_by_test_id("go-payment").click()
        expect(page.get_by_test_id("test-mode")).to_be_visible()
        page.get_by_test_id("pay-upfront").click()
        expect(page.get_by_test_id("stripe-sandbox")).to_be_visible()
        confirm = page.get_by_test_id("confirm-upfront")
        expect(confirm).to_be_enabled()  # once the element is ready
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        upfront = payments(server.app, app_id)["upfront"]
        assert upfront.intent_id

        # a declined card: worded on the page with the next step (issue 17 §6), nothing booked, and the customer can
        # try again
        page.get_by_test_id("stripe-sandbox-card").select_option(DECLINED)
        confirm.click()
        expect(page.get_by_test_id("checkout-error")).to_have_text(re.compile("|".join(map(re.escape, GENERIC))))
        expect(page.get_by_test_id("checkout-error")).to_have_attribute("role", "alert")
        expect(confirm).to_be_enabled()
        assert payments(server.app, app_id)["upfront"].status == "pending"
        declined = stripe_server.gateway().retrieve_intent(upfront.intent_id)
        assert declined.status == "requires_payment_method" and declined.amount_received == 0

        # a good card, tapped twice: one confirmation, then Stripe's redirect to our return URL
        page.get_by_test_id("stripe-sandbox-card").select_option("pm_card_visa")
        expect(page.get_by_test_id("checkout-error")).to_be_hidden()
        confirm.dblclick()
        # Stripe's redirect to our return URL, which sends the browser on without the client secret
        page.wait_for_url(re.compile(rf".*/applications/{app_id}/payment\?returned={upfront.id}$"))
        expect(page.get_by_test_id("payment-outcome")).to_have_attribute("data-outcome", "succeeded")
        expect(page.get_by_test_id("payment-upfront")).to_have_attribute("data-status", "succeeded")
        assert [f["payment_method"] for f in edge.confirms()] == [DECLINED, "pm_card_visa"]

        # the deposit the same way: the lease is then ready for delivery
        page.get_by_test_id("pay-deposit").click()
        page.get_by_test_id("confirm-deposit").click()
        expect(page.get_by_test_id("ready")).to_be_visible()
        assert not errors, errors
        assert [path for path, _ in edge.calls if not path.endswith("/confirm")] == []
    finally:
        context.close()

    paid = payments(server.app, app_id)
    assert {p.status for p in paid.values()} == {"succeeded"} and all(p.captured == p.amount for p in paid.values())
    assert status(server.app, app_id) == "ready_for_delivery"
    charged = intents(stripe_server, paid["upfront"].id)
    assert [(i.status, i.amount_received) for i in charged] == [("succeeded", paid["upfront"].amount)]
