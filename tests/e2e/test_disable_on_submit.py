"""A button marked ``data-disable-on-submit`` (pay, confirm with the bank, a privacy request, ops' retries) cannot be
pressed twice while its form is on its way (pwa/static/js/app.js), on a phone (Pixel 7): its form's marked buttons
are disabled and the pressed one says it is busy — yet the pressed button's own value still goes with the form
(the bank's check: result=complete) — and a page restored from the back-forward cache can be used again."""

from __future__ import annotations

from typing import Any

from playwright.sync_api import Page
from playwright.sync_api import expect

from tests.e2e.test_kyc import sign_in
from tests.integration.test_applications import SALES_A
from tests.integration.test_payments import DEPOSIT
from tests.integration.test_payments import payments
from tests.integration.test_payments import signed_application


def test_the_bank_s_check_cannot_be_sent_twice_and_still_sends_the_pressed_answer(
        page: Page, live_server: Any, stripe_server: Any) -> None:
    app_id = signed_application(live_server.app, DEPOSIT)
    sign_in(page, SALES_A)
    page.goto(f"/applications/{app_id}/payment")
    page.get_by_test_id("method-upfront").select_option("3ds")
    page.get_by_test_id("pay-upfront").click()
    expect(page.get_by_test_id("payment-upfront")).to_have_attribute("data-status", "requires_action")

    sent: list[str] = []
    # the first answer's request gets "204 No Content": the browser stays on the page as it was while the form was
    # on its way (its post data kept to look at)
    page.route("**/authenticate", lambda route: (sent.append(route.request.post_data or ""), route.fulfill(status=204)))
    confirm, fail = page.get_by_test_id("authenticate-upfront"), page.get_by_test_id("fail-authentication-upfront")
    confirm.click()
    expect(confirm).to_be_disabled()
    expect(confirm).to_have_attribute("aria-busy", "true")
    expect(fail).to_be_disabled()  # the form's other answer cannot follow it either
    expect(fail).not_to_have_attribute("aria-busy", "true")
    assert len(sent) == 1 and "result=complete" in sent[0]  # the pressed button's answer went with the form

    # the page shown again from the back-forward cache: the buttons work again, and the answer goes through
    page.evaluate("window.dispatchEvent(new PageTransitionEvent('pageshow', {persisted: true}))")
    expect(confirm).to_be_enabled()
    expect(confirm).not_to_have_attribute("aria-busy", "true")
    expect(fail).to_be_enabled()
    page.unroute("**/authenticate")
    confirm.click()
    expect(page.get_by_test_id("payment-upfront")).to_have_attribute("data-status", "succeeded")
    assert payments(live_server.app, app_id)["upfront"].status == "succeeded"
