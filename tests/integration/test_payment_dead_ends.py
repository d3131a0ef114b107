"""Issue 17 §6, no dead end at the payment step, over real HTTP with a real localstripe: a payment waiting for the
customer's bank (3-D Secure) is confirmed with the bank, or paid with another card — its waiting intent canceled
first, so nothing is charged twice; a check the bank failed offers another card; every decline localstripe makes
(``card_declined``, after 3-D Secure too, and ``payment_intent_authentication_failure``) is worded for the customer
with the next step, never as the raw code (staff see it beside the words).

localstripe declines a charge (code ``card_declined``, no ``decline_code``) for 4000000000000341
(``pm_card_chargeCustomerFail``), and after a completed 3-D Secure check for 4000008260003178 and 4000008400001629;
it asks for 3-D Secure for 4000002500003155, 4000002760003184, 4000000000003220, 4000000000003063 and those two
(localstripe 1.15 resources.py ``PaymentMethod._requires_authentication`` / ``_charging_is_declined``)."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import requests
from sqlalchemy import update

from bff.payments.declines import GENERIC
from bff.payments.declines import decline_text
from infra.applications import Scope
from infra.db.models import ApplicationRow
from tests.integration.test_applications import SALES_A
from tests.integration.test_applications import invited_customer
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_payments import DEPOSIT
from tests.integration.test_payments import intents
from tests.integration.test_payments import opened
from tests.integration.test_payments import pay
from tests.integration.test_payments import payments
from tests.integration.test_payments import signed_application

pytestmark = pytest.mark.db
THREE_DS_THEN_DECLINED = "4000008260003178"


def authenticate(s: requests.Session, base: str, app_id: str, payment_id: str, result: str) -> requests.Response:
    """The customer's answer to TEST MODE's simulated 3-D Secure check."""
    return s.post(f"{base}/applications/{app_id}/payments/{payment_id}/authenticate",
                  data={"result": result, "csrf_token": csrf(s, f"{base}/applications/{app_id}/payment")},
                  timeout=TIMEOUT)


def pay_instead(s: requests.Session, base: str, app_id: str, payment_id: str, method: str) -> requests.Response:
    """The "pay with another card instead" button of a payment waiting for the bank: its form says replace=1."""
    url = f"{base}/applications/{app_id}/payment"
    return s.post(f"{base}/applications/{app_id}/payments/{payment_id}/pay",
                  data={"method": method, "replace": "1", "csrf_token": csrf(s, url)}, timeout=TIMEOUT)


def waiting_for_the_bank(s: requests.Session, base: str, app: Any, app_id: str) -> Any:
    """The upfront payment after paying with the 3-D Secure test card: it waits for the bank, and the page says how
    to go on (confirm with the bank, or another card)."""
    upfront = opened(s, base, app, app_id)["upfront"]
    r = pay(s, base, app_id, upfront.id, "3ds")
    assert r.status_code == 200
    assert 'data-testid="test-bank-upfront"' in r.text and 'data-testid="authenticate-upfront"' in r.text
    assert 'data-testid="pay-form-upfront"' in r.text  # another card
    assert payments(app, app_id)["upfront"].status == "requires_action"
    return upfront


def test_a_payment_waiting_for_3d_secure_is_confirmed_with_the_bank_and_charged_once(
        bff_server: Any, stripe_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        upfront = waiting_for_the_bank(sales, base, app, app_id)
        answers: list[int] = []

        def tap() -> None:  # an impatient double tap on "confirm"
            answers.append(authenticate(sales, base, app_id, upfront.id, "complete").status_code)

        taps = [threading.Thread(target=tap) for _ in range(2)]
        for t in taps:
            t.start()
        for t in taps:
            t.join()
        assert answers == [200, 200]
        page = sales.get(f"{base}/applications/{app_id}/payment", timeout=TIMEOUT).text
        assert 'data-testid="test-bank-upfront"' not in page
    paid = payments(app, app_id)["upfront"]
    assert paid.status == "succeeded" and paid.captured == paid.amount and paid.attempts == 1
    assert [(i.status, i.amount_received) for i in intents(stripe_server, upfront.id)] == [("succeeded", paid.amount)]


def test_a_failed_3d_secure_check_is_explained_and_another_card_pays(bff_server: Any, stripe_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        upfront = waiting_for_the_bank(sales, base, app, app_id)
        r = authenticate(sales, base, app_id, upfront.id, "fail")
        assert r.history[0].status_code == 303 and r.status_code == 200  # the payment page by GET
        assert decline_text("payment_intent_authentication_failure")[0] in r.text
        error = r.text.split('data-testid="payment-error"', 1)[1].split("</div>", 1)[0]
        assert "payment_intent_authentication_failure" not in error  # staff see the code beside, not in the words
        assert 'data-testid="decline-code-upfront">payment_intent_authentication_failure<' in r.text
        assert 'data-testid="pay-form-upfront"' in r.text  # another card
        failed = payments(app, app_id)["upfront"]
        assert failed.status == "failed" and failed.last_error == "payment_intent_authentication_failure"
        assert pay(sales, base, app_id, upfront.id, "visa").status_code == 200
    paid = payments(app, app_id)["upfront"]
    assert paid.status == "succeeded" and paid.attempts == 2
    charged = [(i.status, i.amount_received) for i in intents(stripe_server, upfront.id)]
    assert sorted(charged) == [("requires_payment_method", 0), ("succeeded", paid.amount)]


def test_another_card_while_the_bank_waits_cancels_the_waiting_payment_first(
        bff_server: Any, stripe_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        upfront = waiting_for_the_bank(sales, base, app, app_id)
        waiting = payments(app, app_id)["upfront"].intent_id
        assert 'name="replace" value="1"' in sales.get(f"{base}/applications/{app_id}/payment", timeout=TIMEOUT).text
        assert pay_instead(sales, base, app_id, upfront.id, "visa").status_code == 200
        # the old intent's check can no longer be completed: it is canceled, the bank's answer changes nothing
        assert stripe_server.gateway().retrieve_intent(waiting).status == "canceled"
        assert authenticate(sales, base, app_id, upfront.id, "complete").status_code == 200
    paid = payments(app, app_id)["upfront"]
    assert paid.status == "succeeded" and paid.attempts == 2 and paid.intent_id != waiting
    charged = sorted((i.status, i.amount_received) for i in intents(stripe_server, upfront.id))
    assert charged == [("canceled", 0), ("succeeded", paid.amount)]


def test_localstripe_s_declines_are_worded_with_the_next_step_never_as_the_code(
        bff_server: Any, stripe_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        due = opened(sales, base, app, app_id)
        r = pay(sales, base, app_id, due["upfront"].id, "declined")  # 4000000000000341: card_declined
        assert r.history[0].status_code == 303 and GENERIC[0] in r.text
        assert "付款未成功（card_declined）" not in r.text
        assert payments(app, app_id)["upfront"].last_error == "card_declined"

        # 3-D Secure completed, then the charge declined: worded the same way, and the page offers another card
        checkout = app.extensions["leaseline"].payments.checkout
        application = app.extensions["leaseline"].applications.repo.get(app_id, Scope())
        card = stripe_server.gateway().card_payment_method(THREE_DS_THEN_DECLINED)
        assert checkout.pay(application, due["deposit"].id, card).status == "requires_action"
        r = authenticate(sales, base, app_id, due["deposit"].id, "complete")
        assert r.history[0].status_code == 303 and GENERIC[0] in r.text and 'data-testid="pay-form-deposit"' in r.text
        assert payments(app, app_id)["deposit"].last_error == "card_declined"


def test_the_bank_s_answer_is_refused_for_a_payment_not_waiting_and_for_a_nonsense_result(
        bff_server: Any, stripe_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        upfront = opened(sales, base, app, app_id)["upfront"]
        assert authenticate(sales, base, app_id, upfront.id, "maybe").status_code == 422
        assert authenticate(sales, base, app_id, upfront.id, "complete").status_code == 200  # nothing sent
        assert authenticate(sales, base, app_id, "no-such-payment", "complete").status_code == 404
    assert payments(app, app_id)["upfront"].status == "pending"
    assert intents(stripe_server, upfront.id) == []


def test_the_customer_sees_the_words_and_never_the_code(bff_server: Any, stripe_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    mobile = "13700137066"
    app_id = signed_application(app, DEPOSIT)
    components = app.extensions["leaseline"]
    with components.db.session() as session:  # the invited customer's own application (by their verified mobile)
        session.execute(update(ApplicationRow).where(ApplicationRow.id == app_id).values(
            mobile_hash=components.vault.lookup_hash(mobile, "mobile")))
    with invited_customer(base, app, mobile) as customer:
        upfront = opened(customer, base, app, app_id)["upfront"]
        r = pay(customer, base, app_id, upfront.id, "declined")
        assert r.history[0].status_code == 303 and GENERIC[0] in r.text
        assert "card_declined" not in r.text and 'data-testid="decline-code-upfront"' not in r.text
        assert pay(customer, base, app_id, upfront.id, "3ds").status_code == 200
        r = authenticate(customer, base, app_id, upfront.id, "fail")
        assert r.history[0].status_code == 303 and decline_text("payment_intent_authentication_failure")[0] in r.text
        assert "payment_intent_authentication_failure" not in r.text
        assert pay(customer, base, app_id, upfront.id, "3ds").status_code == 200
        assert authenticate(customer, base, app_id, upfront.id, "complete").status_code == 200
    paid = payments(app, app_id)["upfront"]
    assert paid.status == "succeeded" and paid.attempts == 3
    assert [i.status for i in intents(stripe_server, upfront.id)].count("succeeded") == 1


def test_the_pay_form_sent_again_lands_on_the_waiting_payment_and_cancels_nothing(
        bff_server: Any, stripe_server: Any) -> None:
    """The back button's resubmission of the original pay form (JS off) while the bank's check is under way: the
    customer may be confirming that very intent in their bank's app, so it is not canceled; only the "another card
    instead" button (replace=1) replaces it."""
    base, app = bff_server.url, bff_server.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        upfront = waiting_for_the_bank(sales, base, app, app_id)
        waiting = payments(app, app_id)["upfront"].intent_id
        r = pay(sales, base, app_id, upfront.id, "3ds")  # the original form, as first sent
        assert r.status_code == 200 and 'data-testid="waits-for-bank-upfront"' in r.text
        assert pay(sales, base, app_id, upfront.id, "visa").status_code == 200
        still = payments(app, app_id)["upfront"]
        assert still.status == "requires_action" and still.intent_id == waiting and still.attempts == 1
        assert stripe_server.gateway().retrieve_intent(waiting).status == "requires_action"
        assert authenticate(sales, base, app_id, upfront.id, "complete").status_code == 200
    paid = payments(app, app_id)["upfront"]
    assert paid.status == "succeeded" and paid.intent_id == waiting and paid.attempts == 1
    assert [(i.status, i.amount_received) for i in intents(stripe_server, upfront.id)] == [("succeeded", paid.amount)]


def test_without_a_test_key_the_bank_s_answer_has_no_effect(
        bff_server: Any, stripe_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The simulated 3-D Secure check is TEST MODE's only: with a gateway not in test mode the route is not there
    (404), Stripe is not asked, and the payment still waits for the customer's real bank."""
    base, app = bff_server.url, bff_server.app
    app_id = signed_application(app, DEPOSIT)
    checkout = app.extensions["leaseline"].payments.checkout
    with sign_in(base, SALES_A) as sales:
        upfront = waiting_for_the_bank(sales, base, app, app_id)
        waiting = payments(app, app_id)["upfront"].intent_id
        monkeypatch.setattr(checkout.gateway, "test_mode", False)
        r = authenticate(sales, base, app_id, upfront.id, "complete")
        assert r.status_code == 404
        assert 'data-testid="test-bank-upfront"' not in sales.get(f"{base}/applications/{app_id}/payment",
                                                                   timeout=TIMEOUT).text
    assert payments(app, app_id)["upfront"].status == "requires_action"
    assert stripe_server.gateway().retrieve_intent(waiting).status == "requires_action"
