"""A money event whose journal entry cannot be posted (issue 19, "Bad input and faults"): its whole transaction fails,
nothing is half-booked, and the failure is kept where ops look — here Stripe's webhook of a captured deposit whose
posting rule makes an entry on an account the chart does not have."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from bff.payments.payouts import PayoutService
from books import origination
from books.entries import credit
from books.entries import debit
from books.entries import entry
from infra.payments import StripeGateway
from tests.common.stripe import FakeStripe
from tests.common.stripe import fake_stripe
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import sign_in
from tests.integration.test_books_payments import UPFRONT_EXTRAS
from tests.integration.test_books_payments import event
from tests.integration.test_books_payments import keys_like
from tests.integration.test_books_payments import webhook
from tests.integration.test_payments import SALES_A
from tests.integration.test_payments import opened
from tests.integration.test_payments import pay
from tests.integration.test_payments import payments
from tests.integration.test_payments import signed_application
from tests.integration.test_stripe_gateway import TRANSFER_FIXTURE

pytestmark = pytest.mark.db


def test_a_captured_deposit_that_cannot_be_posted_changes_nothing_and_is_kept_for_ops(
        bff_server: Any, stripe_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    base, app = bff_server.url, bff_server.app
    components = app.extensions["leaseline"]
    app_id = signed_application(app, UPFRONT_EXTRAS)
    with sign_in(base, SALES_A) as sales:
        deposit = opened(sales, base, app, app_id)["deposit"]
    claimed = components.payments.store.claim_attempt(deposit.id, f"pay:{deposit.id}:unpostable")
    assert claimed is not None
    metadata = {"payment_id": deposit.id, "application_id": app_id, "kind": "deposit",
                "attempt": str(claimed.attempts)}
    intent = stripe_server.gateway().create_intent(
        amount=deposit.amount, currency="cny", idempotency_key=f"unpostable-{deposit.id}", confirm=True,
        payment_method="pm_card_visa", metadata=metadata)
    assert intent.status == "succeeded"
    recorded = components.payments.store.move(deposit.id, claimed.status, "pending", intent_id=intent.id)
    assert recorded is not None  # as the checkout records the intent it made for the Payment Element
    key = f"payment:{deposit.id}:captured"

    def unknown_account(payment_id: str, kind: str, amount: int, value_date: Any, **_: Any) -> Any:
        return entry(key, "deposit_captured", value_date, [debit("Assets:Clearing:Nowhere", amount),
                                                          credit(origination.DEPOSITS, amount)])

    monkeypatch.setattr(origination, "captured", unknown_account)
    body = {"id": intent.id, "object": "payment_intent", "amount": deposit.amount, "currency": "cny",
            "status": "succeeded", "amount_received": deposit.amount, "metadata": metadata,
            "capture_method": "automatic", "created": intent.created}
    event_id = f"evt_{uuid.uuid4().hex}"
    outcome = webhook(base, app, event("payment_intent.succeeded", body, event_id))  # answered 200: not retried
    assert outcome.startswith("refused: not booked: ") and key in outcome
    # nothing half-booked: neither the move nor its entry nor its evidence
    assert payments(app, app_id)["deposit"].status == "pending"
    assert keys_like(app, f"payment:{deposit.id}:%") == []
    # kept where ops look: the refused events on /payments and a failure in the audit log
    assert event_id in [e.id for e in components.payments.store.refused_events(limit=50)]
    (kept, *_) = components.audit.search(action="books.unpostable")
    assert kept.outcome == "failure" and kept.target == deposit.id
    assert "Assets:Clearing:Nowhere" in str(kept.details["why"]) and kept.details["event"] == event_id
    assert webhook(base, app, event("payment_intent.succeeded", body, event_id)) == "replay"

    # back from Stripe meanwhile: told the money was received (zh first), not an error page; audited again
    returned = f"{base}/applications/{app_id}/payments/{deposit.id}/return"
    with sign_in(base, SALES_A) as sales:
        r = sales.get(returned, timeout=TIMEOUT, allow_redirects=False)
        assert r.status_code == 202 and "您的付款已收到，正在处理中" in r.text, r.text[:300]
        assert len(components.audit.search(action="books.unpostable", limit=500)) >= 2
        assert keys_like(app, f"payment:{deposit.id}:%") == []
        # the rule fixed, the customer's return brings the payment in line and posts the capture once
        monkeypatch.undo()
        assert sales.get(returned, timeout=TIMEOUT, allow_redirects=False).status_code == 303
    assert payments(app, app_id)["deposit"].status == "succeeded"
    assert keys_like(app, f"payment:{deposit.id}:%") == [key]


@pytest.fixture(scope="module")
def transfers() -> Iterator[tuple[FakeStripe, str]]:
    """Stripe's Connect transfers at the HTTP boundary (localstripe has none)."""
    yield from fake_stripe()


def test_a_transfer_that_cannot_be_posted_is_kept_and_the_sweep_goes_on(
        bff_server: Any, stripe_server: Any, transfers: tuple[FakeStripe, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The dealer's share of one payment is sent but its entry cannot be posted: it stays ``sending`` with Stripe's
    transfer and the reason kept (never ``failed``: its retry would send the money again), audited once; the next
    payment is paid out all the same; once the cause is fixed, the stale claim books it without sending it again."""
    base, app = bff_server.url, bff_server.app
    components = app.extensions["leaseline"]
    store = components.payments.store
    paid = []
    for _ in range(2):
        app_id = signed_application(app, UPFRONT_EXTRAS)
        with sign_in(base, SALES_A) as sales:
            upfront = opened(sales, base, app, app_id)["upfront"]
            assert pay(sales, base, app_id, upfront.id).status_code == 200
        paid.append(payments(app, app_id)["upfront"])
    broken, fine = paid
    rule = origination.dealer_share_paid

    def refuses_one(payment_id: str, amount: int, value_date: Any, **kw: Any) -> Any:
        if payment_id == broken.id:
            return entry(f"transfer:{payment_id}", "dealer_share_paid", value_date,
                         [debit(origination.DEALERS, amount), credit("Assets:Clearing:Nowhere", amount)])
        return rule(payment_id, amount, value_date, **kw)

    monkeypatch.setattr(origination, "dealer_share_paid", refuses_one)
    fake, url = transfers
    payouts = PayoutService(store, StripeGateway("sk_test_fake_0123456789", api_base=url, timeout=2,
                                                 max_network_retries=0),
                            components.applications.repo, dealer_account=lambda dealer_id: "acct_1MTfjCQ9PRzxEwkZ",
                            audit=components.audit, stale_after=timedelta(0))
    fake.answers[("POST", "/v1/transfers")] = (200, {**TRANSFER_FIXTURE, "amount": broken.dealer_share})
    try:
        payouts.pay_out_dealers()
        kept = store.get(broken.id)
        assert kept is not None and kept.transfer_status == "sending" and kept.transfer_id == TRANSFER_FIXTURE["id"]
        assert (kept.transfer_error or "").startswith("not booked: transfer:")
        assert keys_like(app, f"transfer:{broken.id}%") == []
        assert store.get(fine.id).transfer_status == "sent"  # type: ignore[union-attr]
        assert [a.target for a in components.audit.search(action="books.unpostable", limit=500)].count(broken.id) == 1
        payouts.pay_out_dealers()  # stale at once here: booked again, refused again, not audited twice
        assert [a.target for a in components.audit.search(action="books.unpostable", limit=500)].count(broken.id) == 1
        monkeypatch.undo()
        sent = len([r for r in fake.requests if r.path == "/v1/transfers"])
        payouts.pay_out_dealers()
        assert len([r for r in fake.requests if r.path == "/v1/transfers"]) == sent  # not sent again
    finally:
        fake.answers.clear()
        fake.requests.clear()
    assert store.get(broken.id).transfer_status == "sent"  # type: ignore[union-attr]
    assert keys_like(app, f"transfer:{broken.id}%") == [f"transfer:{broken.id}"]

