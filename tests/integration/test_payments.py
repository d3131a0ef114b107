"""Payments after signing, over real HTTP with a real localstripe: pay, decline, 3-D Secure, a double tap,
the 免押 hold captured or released, refunds and the over-refund guard, webhooks (good, forged, stale, replayed,
out of order, unknown), reconciliation, and the evidence in the log.

The applications are priced for real and then put at ``signed`` directly: the journey up to the signature
is tested in test_contract_journey.py; here only what follows it."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
import requests
from sqlalchemy import event
from sqlalchemy import update

from bff.applications.services import Actor
from bff.bootstrap import payment_services
from bff.payments.common import fen
from infra.applications import Scope
from infra.db.models import ApplicationRow
from infra.payments import StripeGateway
from infra.payments import sign_webhook
from tests.common.stripe import FakeStripe
from tests.common.stripe import fake_stripe
from tests.integration.test_applications import SALES_A
from tests.integration.test_applications import VEHICLE
from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in
from tests.integration.test_stripe_gateway import TRANSFER_FIXTURE

pytestmark = pytest.mark.db
OPS = "ops@demo.leaseline.cn"
ADMIN_A = "admin.pudong@demo.leaseline.cn"
DEPOSIT = "20-36-0-ctpl+damage+tpl_1m-D-f-v"  # rents in advance: the first rent is due at signing
DEPOSIT_FREE = "20-36-0-ctpl+damage+tpl_1m-F-f-a"


def signed_application(app: Any, plan_code: str) -> str:
    components = app.extensions["leaseline"]
    user = components.accounts.by_email(SALES_A)[0]
    actor = Actor(kind="staff", id=user.id, label=user.email, scope=Scope(dealer_id=user.dealer_id),
                  dealer_id=user.dealer_id, owner_id=user.id)
    created = components.applications.start(actor, VEHICLE, plan_code)
    with components.db.session() as session:
        session.execute(update(ApplicationRow).where(ApplicationRow.id == created.id).values(status="signed"))
    return str(created.id)


def opened(s: requests.Session, base: str, app: Any, app_id: str) -> dict[str, Any]:
    """Open the payment page as the customer would (it creates the lease's payments); the payments by kind."""
    assert s.get(f"{base}/applications/{app_id}/payment", timeout=TIMEOUT).status_code == 200
    return payments(app, app_id)


def payments(app: Any, app_id: str) -> dict[str, Any]:
    return {p.kind: p for p in app.extensions["leaseline"].payments.store.for_application(app_id)}


def pay(s: requests.Session, base: str, app_id: str, payment_id: str, method: str = "visa") -> requests.Response:
    url = f"{base}/applications/{app_id}/payment"
    return s.post(f"{base}/applications/{app_id}/payments/{payment_id}/pay",
                  data={"method": method, "csrf_token": csrf(s, url)}, timeout=TIMEOUT)


def intents(stripe_server: Any, payment_id: str) -> list[Any]:
    return [i for i in stripe_server.gateway().list_intents() if i.metadata.get("payment_id") == payment_id]


def status(app: Any, app_id: str) -> str:
    return str(app.extensions["leaseline"].applications.repo.get(app_id, Scope()).status)


def test_paying_upfront_and_deposit_makes_the_lease_ready_for_delivery(bff_server: Any, stripe_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        page = sales.get(f"{base}/applications/{app_id}/payment", timeout=TIMEOUT).text
        assert 'data-testid="test-mode"' in page
        due = payments(app, app_id)
        assert set(due) == {"upfront", "deposit"}
        quote = app.extensions["leaseline"].applications.repo.get(app_id, Scope()).plan["quote"]
        # the lines add up to what the quote says is due at signing, to the fen
        assert sum(p.amount for p in due.values()) == fen(quote["due_at_signing"])
        assert due["deposit"].amount == fen(quote["deposit"])
        for kind in ("upfront", "deposit"):
            r = pay(sales, base, app_id, due[kind].id)
            assert r.status_code == 200 and f'data-testid="status-{kind}"' in r.text
    paid = payments(app, app_id)
    assert {p.status for p in paid.values()} == {"succeeded"}
    assert all(p.captured == p.amount for p in paid.values())
    assert status(app, app_id) == "ready_for_delivery"
    assert len(intents(stripe_server, paid["upfront"].id)) == 1
    # each payment goes to the evidence log
    kinds = [k for k, _ in app.extensions["leaseline"].applications.repo.outbox(app_id)]
    assert kinds.count("payment") == 2


def test_a_double_tap_charges_once(bff_server: Any, stripe_server: Any) -> None:
    import threading

    base, app = bff_server.url, bff_server.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        upfront = opened(sales, base, app, app_id)["upfront"]
        token = csrf(sales, f"{base}/applications/{app_id}/payment")
        answers: list[int] = []

        def tap() -> None:
            r = sales.post(f"{base}/applications/{app_id}/payments/{upfront.id}/pay",
                           data={"method": "visa", "csrf_token": token}, timeout=TIMEOUT)
            answers.append(r.status_code)

        taps = [threading.Thread(target=tap) for _ in range(4)]
        for t in taps:
            t.start()
        for t in taps:
            t.join()
        assert answers == [200] * 4
        assert pay(sales, base, app_id, upfront.id).status_code == 200  # and once more, later
    assert len(intents(stripe_server, upfront.id)) == 1
    assert payments(app, app_id)["upfront"].status == "succeeded"


def test_a_declined_card_is_explained_and_another_card_pays(bff_server: Any, stripe_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        upfront = opened(sales, base, app, app_id)["upfront"]
        r = pay(sales, base, app_id, upfront.id, "declined")
        assert r.history[0].status_code == 303 and 'data-testid="payment-error"' in r.text  # the page by GET
        assert payments(app, app_id)["upfront"].status == "failed"
        assert pay(sales, base, app_id, upfront.id, "visa").status_code == 200
    again = payments(app, app_id)["upfront"]
    assert again.status == "succeeded" and again.attempts == 2


def test_3d_secure_waits_for_the_bank(bff_server: Any, stripe_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        upfront = opened(sales, base, app, app_id)["upfront"]
        r = pay(sales, base, app_id, upfront.id, "3ds")
        assert r.status_code == 200 and 'data-testid="check-upfront"' in r.text
    assert payments(app, app_id)["upfront"].status == "requires_action"
    assert status(app, app_id) == "signed"  # not paid yet


def test_a_deposit_free_hold_is_placed_then_released_or_captured_by_ops(bff_server: Any, stripe_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    released_id, captured_id = signed_application(app, DEPOSIT_FREE), signed_application(app, DEPOSIT_FREE)
    with sign_in(base, SALES_A) as sales:
        for app_id in (released_id, captured_id):
            due = opened(sales, base, app, app_id)
            assert set(due) == {"upfront", "hold"}
            price = app.extensions["leaseline"].applications.repo.get(app_id, Scope()).plan["vehicle"]["price"]
            assert due["hold"].amount == fen(Decimal(price) * Decimal("0.05"))  # the product's deposit ratio
            for kind in ("upfront", "hold"):
                assert pay(sales, base, app_id, due[kind].id).status_code == 200
            held = payments(app, app_id)["hold"]
            assert held.status == "held" and held.captured == 0 and held.held_until is not None
            assert status(app, app_id) == "ready_for_delivery"
        # a salesperson may not release or capture
        url = f"{base}/applications/{released_id}/payment"
        r = sales.post(f"{base}/applications/{released_id}/payments/{payments(app, released_id)['hold'].id}/release",
                       data={"csrf_token": csrf(sales, url)}, timeout=TIMEOUT)
        assert r.status_code == 403
    with sign_in(base, OPS) as ops:
        for app_id, action in ((released_id, "release"), (captured_id, "capture")):
            url = f"{base}/applications/{app_id}/payment"
            hold = payments(app, app_id)["hold"]
            r = ops.post(f"{base}/applications/{app_id}/payments/{hold.id}/{action}",
                         data={"csrf_token": csrf(ops, url)}, timeout=TIMEOUT)
            assert r.status_code == 200, r.text[:300]
    assert payments(app, released_id)["hold"].status == "released"
    captured = payments(app, captured_id)["hold"]
    assert captured.status == "captured" and captured.captured == captured.amount
    assert {i.status for i in intents(stripe_server, captured.id)} == {"succeeded"}


def test_refunds_partial_and_never_more_than_captured(bff_server: Any, stripe_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        deposit = opened(sales, base, app, app_id)["deposit"]
        assert pay(sales, base, app_id, deposit.id).status_code == 200
    url = f"{base}/applications/{app_id}/payment"
    refund_url = f"{base}/applications/{app_id}/payments/{deposit.id}/refund"
    half = f"{deposit.amount // 2 / 100:.2f}"
    rest = f"{(deposit.amount - deposit.amount // 2) / 100:.2f}"
    with sign_in(base, OPS) as ops:
        r = ops.post(refund_url, data={"amount": half, "reason": "", "csrf_token": csrf(ops, url)}, timeout=TIMEOUT)
        assert r.status_code == 422  # a reason is required
        r = ops.post(refund_url, data={"amount": half, "reason": "客户提前结清，退还部分保证金",
                                       "csrf_token": csrf(ops, url)}, timeout=TIMEOUT)
        assert r.status_code == 200 and 'data-testid="refunded-deposit"' in r.text
        too_much = f"{(deposit.amount - deposit.amount // 2 + 1) / 100:.2f}"
        r = ops.post(refund_url, data={"amount": too_much, "reason": "再退一次", "csrf_token": csrf(ops, url)},
                     timeout=TIMEOUT)
        assert r.status_code == 422  # one fen more than is left: refused before Stripe is asked
        # what Decimal parses but is no amount is a 422 too, never a 500 (1e30 cannot be quantized to fen)
        for bad in ("-1", "abc", "1.234", "0", "1e30", "1E+999999999", "1e-30", "NaN", "-Infinity", "sNaN"):
            assert ops.post(refund_url, data={"amount": bad, "reason": "x", "csrf_token": csrf(ops, url)},
                            timeout=TIMEOUT).status_code == 422
        r = ops.post(refund_url, data={"amount": rest, "reason": "租期结束，退还保证金", "csrf_token": csrf(ops, url)},
                     timeout=TIMEOUT)
        assert r.status_code == 200
    done = payments(app, app_id)["deposit"]
    assert done.refunded == done.captured == done.amount
    refunds = stripe_server.gateway().list_refunds(payment_intent=done.intent_id)
    assert sorted(r.amount for r in refunds) == sorted([deposit.amount // 2, deposit.amount - deposit.amount // 2])
    with sign_in(base, SALES_A) as sales:  # sales staff do not refund
        assert sales.post(refund_url, data={"amount": "1.00", "reason": "x", "csrf_token": csrf(sales, url)},
                          timeout=TIMEOUT).status_code == 403


def _event(kind: str, intent: dict[str, Any], created: int | None = None) -> bytes:
    return json.dumps({"id": f"evt_{uuid.uuid4().hex}", "object": "event", "type": kind,
                       "created": created or int(time.time()), "data": {"object": intent}}).encode()


def _post(base: str, payload: bytes, secret: str, timestamp: int | None = None) -> requests.Response:
    return requests.post(f"{base}/webhooks/stripe", data=payload, timeout=TIMEOUT, headers={
        "Content-Type": "application/json", "Stripe-Signature": sign_webhook(payload, secret, timestamp)})


def test_webhooks_are_verified_applied_once_and_in_any_order(bff_server: Any, stripe_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    secret = app.config["SETTINGS"].stripe_webhook_secret
    app_id = signed_application(app, DEPOSIT_FREE)
    with sign_in(base, SALES_A) as sales:
        hold = opened(sales, base, app, app_id)["hold"]
    # Stripe holds the card before our own answer is stored (the intent is named only in its metadata): the attempt
    # is claimed, as pay() does before it asks Stripe, and its intent made with the attempt in its metadata; the
    # service asks Stripe about an intent it has not recorded, and believes the event only for one of this attempt
    claimed = app.extensions["leaseline"].payments.store.claim_attempt(hold.id, f"pay:{hold.id}:test")
    assert claimed is not None and claimed.status == "processing"
    metadata = {"payment_id": hold.id, "application_id": app_id, "kind": "hold", "attempt": str(claimed.attempts)}
    intent = stripe_server.gateway().create_intent(
        amount=hold.amount, currency="cny", idempotency_key=f"test-{hold.id}", manual_capture=True, confirm=True,
        payment_method="pm_card_visa", metadata=metadata)
    body = {"id": intent.id, "object": "payment_intent", "amount": hold.amount, "amount_capturable": hold.amount,
            "amount_received": 0, "capture_method": "manual", "currency": "cny", "status": "requires_capture",
            "metadata": metadata, "created": int(time.time())}
    held = _event("payment_intent.amount_capturable_updated", body)
    # forged, stale, not JSON, no signature: refused, nothing changes
    assert _post(base, held, "whsec_wrong").status_code == 400
    assert _post(base, held, secret, timestamp=int(time.time()) - 3600).status_code == 400
    assert _post(base, b"not json", secret).status_code == 400
    assert requests.post(f"{base}/webhooks/stripe", data=held, timeout=TIMEOUT).status_code == 400
    assert payments(app, app_id)["hold"].status == "processing"
    r = _post(base, held, secret)
    assert r.status_code == 200 and r.json()["outcome"] == "applied"
    assert payments(app, app_id)["hold"].status == "held"
    # the same event again: a no-op
    assert _post(base, held, secret).json()["outcome"] == "replay"
    # a late "processing" of the same intent, after the hold: ignored (the machine never goes back)
    late = _event("payment_intent.processing", {**body, "status": "processing"})
    assert _post(base, late, secret).json()["outcome"].startswith("ignored")
    assert payments(app, app_id)["hold"].status == "held"
    # an event type we do not handle, and one about someone else's intent: 200, ignored
    assert _post(base, _event("customer.created", {"id": "cus_x", "object": "customer"}), secret).status_code == 200
    other = _event("payment_intent.succeeded", {**body, "id": "pi_not_ours", "metadata": {}})
    assert _post(base, other, secret).json()["outcome"] == "ignored: not ours"


def test_reconciliation_reports_each_mismatch(bff_server: Any, stripe_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    service = app.extensions["leaseline"].payments.reconciliation
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        deposit = opened(sales, base, app, app_id)["deposit"]
        assert pay(sales, base, app_id, deposit.id).status_code == 200
    deposit = payments(app, app_id)["deposit"]
    mine = [p for p in service.reconcile() if p.get("payment") == deposit.id]
    assert mine == []
    # a refund made outside Leaseline (e.g. in Stripe's dashboard) is a mismatch until a webhook reports it
    stripe_server.gateway().refund(deposit.intent_id, amount=100, idempotency_key=f"outside-{deposit.id}")
    mine = [p for p in service.reconcile() if p.get("payment") == deposit.id]
    assert mine == [{"problem": "refunded", "payment": deposit.id, "ours": 0, "stripe": 100}]


@pytest.fixture(scope="module")
def connect_server() -> Iterator[tuple[FakeStripe, str]]:
    yield from fake_stripe()


def test_the_dealer_s_share_of_the_down_payment_is_transferred_once(
        bff_server: Any, stripe_server: Any, connect_server: tuple[FakeStripe, str]) -> None:
    """Stripe Connect is absent from localstripe: the transfer is checked at the HTTP boundary, against a fake
    answering with the Transfer object of Stripe's API reference (tests/integration/test_stripe_gateway.py)."""
    base, app = bff_server.url, bff_server.app
    components = app.extensions["leaseline"]
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        upfront = opened(sales, base, app, app_id)["upfront"]
        quote = components.applications.repo.get(app_id, Scope()).plan["quote"]
        assert upfront.dealer_share == fen(quote["down_payment"]) and upfront.transfer_status == "due"
        components.payments.payouts.pay_out_dealers()  # the demo dealer has no connected account yet: it stays due
        assert payments(app, app_id)["upfront"].transfer_status == "due"
        assert pay(sales, base, app_id, upfront.id).status_code == 200
    fake, url = connect_server
    fake.answers[("POST", "/v1/transfers")] = (200, {**TRANSFER_FIXTURE, "amount": upfront.dealer_share})
    account = "acct_1MTfjCQ9PRzxEwkZ"
    connect = payment_services(components.payments.store, StripeGateway("sk_test_fake_0123456789", api_base=url,
                                                                        timeout=2, max_network_retries=0),
                               components.applications.repo, components.payments.checkout.deposit_ratio,
                               dealer_account=lambda dealer_id: account).payouts
    try:
        connect.pay_out_dealers()
        connect.pay_out_dealers()  # again: nothing more for this payment
        mine = [r for r in fake.requests if r.form.get("metadata[payment_id]") == upfront.id]
        assert len(mine) == 1
        assert mine[0].form["amount"] == str(upfront.dealer_share) and mine[0].form["destination"] == account
        assert mine[0].form["transfer_group"] == app_id
        assert mine[0].headers["Idempotency-Key"] == f"transfer:{upfront.id}"
    finally:
        fake.answers.clear()
        fake.requests.clear()
    done = payments(app, app_id)["upfront"]
    assert done.transfer_status == "sent" and done.transfer_id == TRANSFER_FIXTURE["id"]
    assert "payment" in [k for k, _ in components.applications.repo.outbox(app_id)]


def test_a_transfer_whose_sender_died_is_sent_again_once_with_its_evidence(
        bff_server: Any, stripe_server: Any, connect_server: tuple[FakeStripe, str]) -> None:
    """The findings: a dealer share claimed ``due → sending`` stayed ``sending`` forever when its sender died, and
    ``sent`` and its evidence entry were two transactions (a crash between them lost the entry). Now a share left
    ``sending`` past the stale limit is sent again with the same Idempotency-Key (one transfer at Stripe), and
    ``sent`` commits with its entry or not at all."""
    from datetime import timedelta

    from bff.payments.payouts import TRANSFER_STALE_AFTER
    from infra.applications import SqlApplications
    from infra.db.models import PaymentRow
    from infra.db.models import utcnow

    base, app = bff_server.url, bff_server.app
    components = app.extensions["leaseline"]
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        upfront = opened(sales, base, app, app_id)["upfront"]
        assert pay(sales, base, app_id, upfront.id).status_code == 200
    db = components.db

    def left_sending(ago: timedelta) -> None:  # as a sender that claimed it and died leaves it
        with db.session() as session:
            session.execute(update(PaymentRow).where(PaymentRow.id == upfront.id).values(
                transfer_status="sending", updated_at=utcnow() - ago))

    def transfer_entries() -> int:
        from sqlalchemy import text

        with db.session() as session:
            return int(session.execute(text("SELECT count(*) FROM evidence_outbox WHERE key = :k"),
                                       {"k": f"transfer:{upfront.id}"}).scalar_one())

    fake, url = connect_server
    fake.answers[("POST", "/v1/transfers")] = (200, {**TRANSFER_FIXTURE, "amount": upfront.dealer_share})
    repo = SqlApplications(db)  # its own, so that breaking it below touches nothing else
    connect = payment_services(components.payments.store, StripeGateway("sk_test_fake_0123456789", api_base=url,
                                                                        timeout=2, max_network_retries=0),
                               repo, components.payments.checkout.deposit_ratio,
                               dealer_account=lambda _: "acct_1MTfjCQ9PRzxEwkZ").payouts
    try:
        left_sending(timedelta(seconds=30))  # being sent right now by someone: left alone
        connect.pay_out_dealers()
        assert payments(app, app_id)["upfront"].transfer_status == "sending"
        assert [r for r in fake.requests if r.form.get("metadata[payment_id]") == upfront.id] == []

        left_sending(TRANSFER_STALE_AFTER + timedelta(minutes=1))  # its sender died
        entry = repo.outbox_add

        def crash(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("the process died between the transfer and its evidence entry")

        repo.outbox_add = crash  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            connect.pay_out_dealers()
        assert payments(app, app_id)["upfront"].transfer_status == "sending"  # not "sent" without its entry
        assert transfer_entries() == 0
        repo.outbox_add = entry  # type: ignore[method-assign]

        left_sending(TRANSFER_STALE_AFTER + timedelta(minutes=1))
        connect.pay_out_dealers()
        sent = [r for r in fake.requests if r.form.get("metadata[payment_id]") == upfront.id]
        assert len(sent) == 2 and {r.headers["Idempotency-Key"] for r in sent} == {f"transfer:{upfront.id}"}
    finally:
        fake.answers.clear()
        fake.requests.clear()
    done = payments(app, app_id)["upfront"]
    assert done.transfer_status == "sent" and done.transfer_id == TRANSFER_FIXTURE["id"]
    assert transfer_entries() == 1


def test_a_late_event_of_an_earlier_attempt_changes_nothing(bff_server: Any, stripe_server: Any) -> None:
    base, app = bff_server.url, bff_server.app
    secret = app.config["SETTINGS"].stripe_webhook_secret
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        upfront = opened(sales, base, app, app_id)["upfront"]
        assert pay(sales, base, app_id, upfront.id, "declined").history[0].status_code == 303  # attempt 1
        # real Stripe returns the declined PaymentIntent with the card error (localstripe names only the charge),
        # so the payment then follows that intent: as if it had
        declined = f"pi_attempt1_{uuid.uuid4().hex[:8]}"
        app.extensions["leaseline"].payments.store.set_fields(upfront.id, intent_id=declined)
        assert pay(sales, base, app_id, upfront.id, "visa").status_code == 200  # attempt 2: its intent is followed
    paid = payments(app, app_id)["upfront"]
    assert paid.status == "succeeded" and paid.attempts == 2
    # Stripe's "payment failed" of attempt 1's intent arrives last (real Stripe returns the declined intent)
    assert paid.intent_id != declined
    late = _event("payment_intent.payment_failed", {
        "id": declined, "object": "payment_intent", "amount": paid.amount,
        "currency": "cny", "status": "requires_payment_method", "capture_method": "automatic",
        "metadata": {"payment_id": paid.id, "attempt": "1"}, "last_payment_error": {"code": "card_declined"}})
    assert _post(base, late, secret).json()["outcome"] == "ignored: succeeded stays"
    assert payments(app, app_id)["upfront"].status == "succeeded"


def test_a_lapsed_hold_is_placed_again_or_replaced_by_the_deposit(bff_server: Any, stripe_server: Any) -> None:
    from datetime import UTC
    from datetime import datetime
    from datetime import timedelta

    base, app = bff_server.url, bff_server.app
    service = app.extensions["leaseline"].payments
    renewed_id, replaced_id = signed_application(app, DEPOSIT_FREE), signed_application(app, DEPOSIT_FREE)
    with sign_in(base, SALES_A) as sales:
        for app_id in (renewed_id, replaced_id):
            due = opened(sales, base, app, app_id)
            for kind in ("upfront", "hold"):
                assert pay(sales, base, app_id, due[kind].id).status_code == 200
            assert status(app, app_id) == "ready_for_delivery"
            # the card authorisation window has ended
            service.store.set_fields(payments(app, app_id)["hold"].id,
                                     held_until=datetime.now(UTC) - timedelta(minutes=1))
        # this server's resumer may already have expired one: the states below say it all
        service.checkout.expire_holds()
        for app_id in (renewed_id, replaced_id):
            lapsed = opened(sales, base, app, app_id)
            assert lapsed["hold"].status == "expired" and lapsed["deposit"].status == "pending"
            assert lapsed["deposit"].amount == lapsed["hold"].amount
        # one customer authorises the hold again, the other pays the deposit instead
        first = payments(app, renewed_id)["hold"]
        assert pay(sales, base, renewed_id, first.id).status_code == 200
        assert pay(sales, base, replaced_id, payments(app, replaced_id)["deposit"].id).status_code == 200
    renewed = payments(app, renewed_id)["hold"]
    assert renewed.status == "held" and renewed.attempts == 2 and renewed.intent_id != first.intent_id
    assert renewed.held_until is not None and renewed.held_until > datetime.now(UTC) + timedelta(days=6)
    assert payments(app, replaced_id)["deposit"].status == "succeeded"
    assert status(app, renewed_id) == status(app, replaced_id) == "ready_for_delivery"


def test_requests_that_may_call_stripe_share_one_budget_per_application(bff_server: Any, stripe_server: Any) -> None:
    """Opening a line (``?pay=``), the return from Stripe and paying count against one budget per application
    (20 per 10 minutes); the page itself, and its polling, does not."""
    base, app = bff_server.url, bff_server.app
    app_id, other_id = signed_application(app, DEPOSIT), signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        upfront = opened(sales, base, app, app_id)["upfront"]
        url = f"{base}/applications/{app_id}/payment"
        for _ in range(19):
            assert sales.get(url, params={"pay": upfront.id}, timeout=TIMEOUT).status_code == 200
        back = sales.get(f"{base}/applications/{app_id}/payments/{upfront.id}/return", timeout=TIMEOUT,
                         allow_redirects=False)
        assert back.status_code == 303  # the 20th
        assert sales.get(url, params={"pay": upfront.id}, timeout=TIMEOUT).status_code == 429
        assert sales.get(f"{base}/applications/{app_id}/payments/{upfront.id}/return",
                         timeout=TIMEOUT).status_code == 429
        assert pay(sales, base, app_id, upfront.id).status_code == 429
        for _ in range(3):  # the page and its polling stay open
            assert sales.get(url, timeout=TIMEOUT).status_code == 200
        # another application has its own budget
        other = opened(sales, base, app, other_id)["upfront"]
        assert sales.get(f"{base}/applications/{other_id}/payment", params={"pay": other.id},
                         timeout=TIMEOUT).status_code == 200
    assert payments(app, app_id)["upfront"].status == "pending"  # the refused tap sent nothing


# -- issue 14, money integrity: what a signed webhook may change ------------------------------------------------
def test_a_late_event_after_the_success_changes_no_amount(bff_server: Any, stripe_server: Any) -> None:
    """A ``processing``, ``payment_failed`` or ``canceled`` event of the paid intent arriving after its success (Stripe
    does not promise an order) is ignored as a whole: the captured amount stays, ops can refund all of it, and the
    reconciliation agrees with Stripe (before the fix it set ``captured`` to 0: a refund of the deposit was refused as
    "more than what is left" and reconciliation reported the difference)."""
    base, app = bff_server.url, bff_server.app
    secret = app.config["SETTINGS"].stripe_webhook_secret
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        deposit = opened(sales, base, app, app_id)["deposit"]
        assert pay(sales, base, app_id, deposit.id).status_code == 200
    paid = payments(app, app_id)["deposit"]
    assert paid.status == "succeeded" and paid.captured == paid.amount
    body = {"id": paid.intent_id, "object": "payment_intent", "amount": paid.amount, "amount_received": 0,
            "amount_capturable": 0, "currency": "cny", "capture_method": "automatic", "created": int(time.time()),
            "metadata": {"payment_id": paid.id, "application_id": app_id, "kind": "deposit",
                         "attempt": str(paid.attempts)}}
    late = [("payment_intent.processing", {"status": "processing"}),
            ("payment_intent.payment_failed", {"status": "requires_payment_method",
                                               "last_payment_error": {"code": "card_declined"}}),
            ("payment_intent.canceled", {"status": "canceled"})]
    for kind, fields in late:
        r = _post(base, _event(kind, {**body, **fields}), secret)
        assert r.status_code == 200 and r.json()["outcome"] == "ignored: succeeded stays", (kind, r.text)
        after = payments(app, app_id)["deposit"]
        assert (after.status, after.captured, after.refunded, after.intent_id) == (
            "succeeded", paid.amount, 0, paid.intent_id), kind
    assert [p for p in app.extensions["leaseline"].payments.reconciliation.reconcile()
            if p.get("payment") == paid.id] == []
    url = f"{base}/applications/{app_id}/payment"
    with sign_in(base, OPS) as ops:  # the whole deposit can still be refunded
        whole = {"amount": f"{paid.amount / 100:.2f}", "reason": "全额退还保证金", "csrf_token": csrf(ops, url)}
        r = ops.post(f"{base}/applications/{app_id}/payments/{paid.id}/refund", data=whole, timeout=TIMEOUT)
        assert r.status_code == 200, r.text[:300]
    assert payments(app, app_id)["deposit"].refunded == paid.amount


def test_a_signed_event_not_about_our_intent_is_refused_and_shown_to_ops(bff_server: Any, stripe_server: Any) -> None:
    """A signed ``payment_intent.succeeded`` for an intent we never created (1 fen, its metadata naming a pending
    deposit), or for the intent we did create but with another amount or currency, moves nothing: the deposit stays
    unpaid and the lease not ready for delivery (before the fix the deposit became paid with 1 fen captured and the
    lease ready for delivery). Each refusal is kept where ops look: the audit log and the payments view."""
    base, app = bff_server.url, bff_server.app
    components = app.extensions["leaseline"]
    secret = app.config["SETTINGS"].stripe_webhook_secret
    app_id = signed_application(app, DEPOSIT)
    with sign_in(base, SALES_A) as sales:
        due = opened(sales, base, app, app_id)
        assert pay(sales, base, app_id, due["upfront"].id).status_code == 200  # the deposit is all that is left
    deposit = due["deposit"]
    forged_id = f"pi_forged_{uuid.uuid4().hex[:12]}"
    forged = {"id": forged_id, "object": "payment_intent", "amount": 1, "amount_received": 1, "currency": "cny",
              "status": "succeeded", "capture_method": "automatic", "created": int(time.time()),
              "metadata": {"payment_id": deposit.id, "application_id": app_id, "kind": "deposit"}}
    for metadata in ({}, {"attempt": "0"}, {"attempt": "1"}):  # whatever attempt it claims
        for amount in (1, deposit.amount):  # nor does the right amount make it ours
            event = {**forged, "amount": amount, "amount_received": amount,
                     "metadata": {**forged["metadata"], **metadata}}
            r = _post(base, _event("payment_intent.succeeded", event), secret)
            assert r.status_code == 200 and r.json()["outcome"].startswith("refused"), r.text
    # the intent we made for the deposit (as the Payment Element's checkout does), then events about it that do not
    # match it: another amount, another currency
    store = components.payments.store
    claimed = store.claim_attempt(deposit.id, f"pay:{deposit.id}:test")
    assert claimed is not None
    ours = stripe_server.gateway().create_intent(
        amount=deposit.amount, currency="cny", idempotency_key=f"test-{deposit.id}",
        metadata={"payment_id": deposit.id, "application_id": app_id, "kind": "deposit",
                  "attempt": str(claimed.attempts)})
    assert store.move(deposit.id, "processing", "pending", intent_id=ours.id) is not None
    recorded = {**forged, "id": ours.id, "metadata": {**forged["metadata"], "attempt": str(claimed.attempts)}}
    for changes in ({"amount": 1, "amount_received": 1}, {"currency": "usd", "amount": deposit.amount,
                                                          "amount_received": deposit.amount}):
        r = _post(base, _event("payment_intent.succeeded", {**recorded, **changes}), secret)
        assert r.status_code == 200 and r.json()["outcome"].startswith("refused"), r.text
    after = payments(app, app_id)["deposit"]
    assert (after.status, after.captured, after.refunded, after.intent_id) == ("pending", 0, 0, ours.id)
    assert status(app, app_id) == "signed"
    refusals = [e for e in components.audit.search(action="payment.stripe_refused") if e.target == deposit.id]
    assert len(refusals) == 8 and {e.outcome for e in refusals} == {"failure"}
    assert {e.details["intent"] for e in refusals} == {forged_id, ours.id}
    with sign_in(base, OPS) as ops:
        page = ops.get(f"{base}/payments", timeout=TIMEOUT).text
    assert 'data-testid="refused-events"' in page and forged_id in page and ours.id in page
    with sign_in(base, ADMIN_A) as admin:  # a dealer's admin sees the dealer's payments, not the lessor's Stripe log
        page = admin.get(f"{base}/payments", timeout=TIMEOUT).text
    assert 'data-testid="ops-payments"' in page and 'data-testid="refused-events"' not in page


def test_the_refused_events_are_read_through_an_index_of_their_own(app: Any) -> None:
    """/payments lists the newest refused webhook events on each load of a lessor's: read in order through a partial
    index of the refusals (migration 0011), not by scanning and sorting every event Stripe ever sent, a table that
    only grows (before: a Seq Scan and a Sort). The query checked is the one the store runs, as it runs it."""
    components = app.extensions["leaseline"]
    store, engine = components.payments.store, components.db.engine
    tag = uuid.uuid4().hex[:8]
    for n in range(12):
        store.record_event(f"evt_plan_{tag}_{n}", "payment_intent.succeeded", None, int(time.time()),
                           "refused: test" if n % 3 == 0 else "applied")
    ran: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, _context: Any, _many: bool) -> None:
        if "stripe_events" in statement:
            ran.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        refused = store.refused_events(limit=3)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert [e.id for e in refused] == [f"evt_plan_{tag}_{n}" for n in (9, 6, 3)]  # the newest first
    assert {e.outcome for e in refused} == {"refused: test"}
    statement, parameters = ran[-1]
    # the test table is small: ask whether the index can serve the query, not whether it is cheapest
    with engine.connect() as conn:
        conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
        plan = " | ".join(str(row[0]) for row in conn.exec_driver_sql(f"EXPLAIN {statement}", parameters))
        assert "ix_stripe_events_refused" in plan and "Sort" not in plan, plan
        conn.rollback()
