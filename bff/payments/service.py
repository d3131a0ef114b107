"""What a signed lease must pay before delivery, paid through Stripe, and kept in step with Stripe.

Lines (from the plan frozen at approval, in fen):
- ``upfront``: what is due at signing less the deposit: the down payment, fees and premiums paid upfront,
  and the first rent when rents are paid in advance — one charge, captured at once;
- ``deposit``: the refundable deposit (保证金), captured at once, refunded at the end of the term;
- ``hold``: for a deposit-free plan (免押), which the risk decision allowed (it approved the plan as it is), a
  pre-authorisation of the amount the deposit would have been (the product's deposit ratio × the price):
  a PaymentIntent with manual capture — captured on default, released at the end.

Dealer split (分账): the down payment belongs to the dealer, who sells the vehicle (the lessor pays it the
financed amount apart); fees, premiums and the first rent stay with the lessor. Once the upfront payment is
captured, the down payment is transferred to the dealer's Stripe Connect account (separate charges and
transfers, ``transfer_group`` = the application; key ``transfer:<payment>``). A dealer without a connected
account keeps its share "due" until lessor ops enter one on the Dealers page.

Authorisation window: a card hold lasts 7 days on Stripe (up to 30 with extended authorisation on some
cards), far shorter than a lease. ``held_until`` records when this one lapses; before that it must be
re-authorised (a new hold on the customer's saved card, off-session) or, when that fails, the customer is
asked for the deposit instead. Here a lapsed hold is marked ``expired`` and the application shows it; the
re-authorisation itself needs the saved card (Customer + SetupIntent), not built yet.

Every create/capture/cancel/refund carries an Idempotency-Key derived from our own record
(``pay:<payment>:<n>``, ``capture:<payment>``, ``refund:<refund>``), and our own state guards it too:
localstripe ignores the keys, and a double tap must not reach Stripe twice at all.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal
from typing import Any

from bff.applications.services import Actor
from bff.applications.services import NotAllowed
from bff.payments.machine import EVENT_STATUS
from bff.payments.machine import PAYABLE
from bff.payments.machine import SECURED
from bff.payments.machine import advance
from bff.payments.machine import from_intent
from infra.applications import Application
from infra.applications import Scope
from infra.applications import SqlApplications
from infra.payments import Intent
from infra.payments import PaymentDeclined
from infra.payments import PaymentRefused
from infra.payments import PaymentsUnavailable
from infra.payments import StripeGateway
from infra.payments_store import Payment
from infra.payments_store import SqlPayments
from infra.peers import is_local_endpoint

log = logging.getLogger(__name__)
_ALL = Scope()
HOLD_WINDOW = timedelta(days=7)
REFUND_RETRY_AFTER = timedelta(minutes=1)
#: application states in which payments exist and may be paid
PAYING = ("signed", "ready_for_delivery")  # after delivery only a lapsed hold's replacement is payable
DELIVERABLE = "ready_for_delivery"
#: the test cards offered in TEST MODE: Stripe's test PaymentMethods (localstripe knows pm_card_visa and
#: pm_card_chargeCustomerFail; for 3-D Secure it needs the test card's number, which real Stripe refuses)
TEST_METHODS = {"visa": "pm_card_visa", "declined": "pm_card_chargeCustomerFail",
                "3ds": "pm_card_threeDSecure2Required"}
LOCAL_3DS_CARD = "4000000000003220"


def fen(amount: str | Decimal) -> int:
    """Yuan (a string or Decimal with at most two decimals, as the frozen quote has) → fen."""
    value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return int(value * 100)


class PaymentService:
    def __init__(self, store: SqlPayments, gateway: StripeGateway, repo: SqlApplications, deposit_ratio: Decimal,
                 dealer_account: Callable[[str], str | None] = lambda dealer_id: None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store, self.gateway, self.repo = store, gateway, repo
        self.deposit_ratio, self.dealer_account, self.clock = deposit_ratio, dealer_account, clock

    # -- what is owed ---------------------------------------------------------------------------------------
    def lines(self, app: Application) -> list[tuple[str, int, int]]:
        """``(kind, amount, the dealer's share)`` in fen."""
        quote, choice = app.plan["quote"], app.plan.get("choice", {})
        deposit = fen(quote["deposit"])
        upfront = fen(quote["due_at_signing"]) - deposit
        lines = [("upfront", upfront, min(upfront, fen(quote["down_payment"])))] if upfront > 0 else []
        if deposit > 0:
            lines.append(("deposit", deposit, 0))
        elif choice.get("deposit_free"):
            lines.append(("hold", fen(self.deposit_ratio * Decimal(app.plan["vehicle"]["price"])), 0))
        return lines

    def payments(self, app: Application) -> list[Payment]:
        """The application's payments, created on first look once it is signed."""
        found = self.store.for_application(app.id)
        if not found and app.status in PAYING:
            found = self.store.ensure(app.id, app.dealer_id, self.lines(app))
        return found

    def _own(self, app: Application, payment_id: str) -> Payment:
        payment = self.store.get(payment_id)
        if payment is None or payment.application_id != app.id:
            raise NotAllowed("not_found", "没有这笔付款", "No such payment")
        return payment

    # -- paying ---------------------------------------------------------------------------------------------
    def test_method(self, key: str) -> str:
        """The PaymentMethod id of a TEST MODE card choice (on a local fake Stripe, 3-D Secure's card number)."""
        if key == "3ds" and is_local_endpoint(self.gateway.api_base):
            return self.gateway.card_payment_method(LOCAL_3DS_CARD)
        return TEST_METHODS[key]

    def pay(self, app: Application, payment_id: str, method: str, return_url: str | None = None) -> Payment:
        """One attempt to pay ``payment_id`` with ``method`` (a PaymentMethod id). A second tap while the first
        is in flight, or after it succeeded, sends nothing to Stripe and returns the payment as it is."""
        if app.status not in PAYING:
            raise NotAllowed("wrong_state", "当前无需付款", "Nothing is to be paid now")
        payment = self._own(app, payment_id)
        if payment.status not in PAYABLE:
            return payment
        claimed = self.store.claim_attempt(payment.id, f"pay:{payment.id}:{uuid.uuid4().hex[:12]}")
        if claimed is None:  # another tap or process started it a moment ago
            return self._own(app, payment_id)
        assert claimed.attempt_key is not None
        try:
            intent = self.gateway.create_intent(
                amount=claimed.amount, currency="cny", idempotency_key=claimed.attempt_key,
                metadata={"payment_id": claimed.id, "application_id": app.id, "kind": claimed.kind,
                          "attempt": str(claimed.attempts)},
                payment_method=method, confirm=True, manual_capture=claimed.kind == "hold",
                description=f"Leaseline {app.contract.get('number') or app.id[:8]} {claimed.kind}",
                return_url=return_url)
        except PaymentDeclined as exc:
            values: dict[str, object] = {"last_error": (exc.code or exc.message or "declined")[:255]}
            if exc.intent is not None:
                values["intent_id"] = exc.intent.id
            moved = self.store.move(claimed.id, "processing", "failed", **values)
            return moved or self._own(app, payment_id)
        except PaymentsUnavailable:
            # the answer may be lost with the charge made: back to pending with the same attempt key, so the
            # retry gets Stripe's first answer instead of a second charge
            self.store.move(claimed.id, "processing", "pending", last_error="unavailable")
            raise
        except PaymentRefused as exc:
            log.error("Stripe refused payment %s: %s", claimed.id, exc)
            moved = self.store.move(claimed.id, "processing", "failed", last_error="refused")
            return moved or self._own(app, payment_id)
        return self.apply_intent(claimed.id, intent)

    def apply_intent(self, payment_id: str, intent: Intent) -> Payment:
        """Bring the payment in line with Stripe's PaymentIntent (an answer, a refresh or a webhook)."""
        payment = self.store.get(payment_id)
        assert payment is not None
        attempt = intent.metadata.get("attempt")
        if attempt is not None and attempt != str(payment.attempts):
            return payment  # an earlier attempt's intent (e.g. its late "failed"): the current attempt decides
        if attempt is None and payment.intent_id and payment.intent_id != intent.id:
            return payment  # an intent we did not make for this attempt
        manual = intent.capture_method == "manual"
        target = from_intent(intent.status, manual)
        fields: dict[str, object] = {"intent_id": intent.id, "next_action_url": intent.next_action_url,
                                     "captured": intent.amount_received}
        if intent.last_error and target == "failed":
            fields["last_error"] = intent.last_error[:255]
        if target == "held" and payment.held_until is None:
            fields["held_until"] = datetime.fromtimestamp(intent.created, UTC) + HOLD_WINDOW
        self.store.set_fields(payment.id, **fields)
        if advance(payment.status, target) is not None and self.store.move(payment.id, payment.status, target):
            self._evidence(payment, target, intent)
            self.check_ready(payment.application_id)
        fresh = self.store.get(payment.id)
        assert fresh is not None
        return fresh

    def refresh(self, app: Application, payment_id: str) -> Payment:
        """Ask Stripe for the payment's intent again (back from 3-D Secure, or polling a processing payment)."""
        payment = self._own(app, payment_id)
        if not payment.intent_id:
            return payment
        return self.apply_intent(payment.id, self.gateway.retrieve_intent(payment.intent_id))

    # -- holds and refunds (lessor ops) ------------------------------------------------------------------------
    def capture(self, actor: Actor, app: Application, payment_id: str, amount: int | None = None) -> Payment:
        """Capture a hold (the customer defaulted): all of it, or ``amount`` fen of it."""
        payment = self._own(app, payment_id)
        if payment.kind != "hold" or payment.status != "held" or not payment.intent_id:
            raise NotAllowed("not_held", "只有有效的预授权可以扣款", "Only a live hold can be captured")
        if amount is not None and not 0 < amount <= payment.amount:
            raise NotAllowed("amount", "扣款金额须大于 0 且不超过预授权金额",
                             "Capture more than 0 and at most the hold")
        intent = self.gateway.capture(payment.intent_id, idempotency_key=f"capture:{payment.id}", amount=amount)
        return self.apply_intent(payment.id, intent)

    def release(self, actor: Actor, app: Application, payment_id: str) -> Payment:
        """Release a hold (the lease ended well, or it was re-authorised)."""
        payment = self._own(app, payment_id)
        if payment.kind != "hold" or payment.status != "held" or not payment.intent_id:
            raise NotAllowed("not_held", "只有有效的预授权可以释放", "Only a live hold can be released")
        intent = self.gateway.cancel(payment.intent_id, idempotency_key=f"release:{payment.id}")
        return self.apply_intent(payment.id, intent)

    def refund(self, actor: Actor, app: Application, payment_id: str, amount: int, reason: str) -> Payment:
        """Refund ``amount`` fen of a captured payment, with a reason; never more than is left to refund."""
        payment = self._own(app, payment_id)
        if not reason.strip():
            raise NotAllowed("reason", "请填写退款原因", "Give the reason for the refund")
        if amount <= 0:
            raise NotAllowed("amount", "退款金额须大于 0", "The refund must be more than 0")
        if payment.status not in ("succeeded", "captured") or not payment.intent_id:
            raise NotAllowed("not_captured", "这笔付款尚未到账，无法退款", "This payment has not been captured")
        refund = self.store.add_refund(payment.id, amount, reason.strip(), actor.id)
        if refund is None:
            raise NotAllowed("too_much", "退款金额超过可退金额", "The refund is more than what is left to refund")
        try:
            made = self.gateway.refund(payment.intent_id, amount=amount, idempotency_key=f"refund:{refund.id}",
                                       reason="requested_by_customer", metadata={"refund_id": refund.id,
                                                                                 "payment_id": payment.id})
        except PaymentsUnavailable:
            raise  # stays pending (its amount reserved); the same key is sent again by retry_refunds
        except (PaymentRefused, PaymentDeclined) as exc:
            log.error("Stripe refused refund %s: %s", refund.id, exc)
            self.store.finish_refund(refund.id, None, "failed")
            raise NotAllowed("refused", "支付机构拒绝了这笔退款", "The payment provider refused this refund") from None
        self.store.finish_refund(refund.id, made.id, "succeeded" if made.status != "failed" else "failed")
        self.repo.outbox_add(app.id, f"refund:{refund.id}", "refund", {
            "payment_id": payment.id, "kind": payment.kind, "amount": _yuan(amount), "currency": "CNY",
            "stripe_refund": made.id}, self.clock())
        fresh = self.store.get(payment.id)
        assert fresh is not None
        return fresh

    # -- webhooks ---------------------------------------------------------------------------------------------
    def handle_event(self, event: dict[str, Any]) -> str:
        """Apply one verified Stripe event, once; returns what it did (stored with the event id)."""
        event_id, kind = str(event.get("id") or ""), str(event.get("type") or "")
        obj = (event.get("data") or {}).get("object") or {}
        if not event_id or not isinstance(obj, dict):
            return "malformed"
        intent_id = str(obj.get("payment_intent") if kind.startswith("charge.") else obj.get("id") or "") or None
        if not self.store.record_event(event_id, kind, intent_id, int(event.get("created") or 0), "received"):
            return "replay"
        outcome = self._apply_event(kind, obj, intent_id)
        self.store.set_event_outcome(event_id, outcome)
        return outcome

    def _apply_event(self, kind: str, obj: dict[str, Any], intent_id: str | None) -> str:
        payment = self.store.by_intent(intent_id) if intent_id else None
        if payment is None:
            metadata = obj.get("metadata") or {}
            # our own answer may not be stored yet, or the event is about an earlier attempt's intent: the
            # metadata names the payment, and apply_intent compares the attempt
            payment = self.store.get(str(metadata.get("payment_id"))) if metadata.get("payment_id") else None
        if payment is None:
            return "ignored: not ours"
        if kind in EVENT_STATUS:
            intent = Intent(
                id=str(intent_id), status=EVENT_STATUS[kind], amount=int(obj.get("amount") or 0),
                amount_capturable=int(obj.get("amount_capturable") or 0),
                amount_received=int(obj.get("amount_received") or (obj.get("amount") or 0
                                                                   if EVENT_STATUS[kind] == "succeeded" else 0)),
                amount_refunded=0, currency=str(obj.get("currency") or "cny"),
                capture_method=str(obj.get("capture_method") or ("manual" if payment.kind == "hold" else "automatic")),
                metadata=dict(obj.get("metadata") or {}), client_secret=None, next_action_url=None,
                last_error=_event_error(obj), created=int(obj.get("created") or 0))
            before = payment.status
            after = self.apply_intent(payment.id, intent).status
            return "applied" if after != before else f"ignored: {before} stays"
        if kind == "charge.refunded":
            refunded = int(obj.get("amount_refunded") or 0)
            if refunded > payment.refunded:  # a refund made outside Leaseline (e.g. Stripe's dashboard)
                self.store.set_fields(payment.id, refunded=refunded)
                return "applied: refunded outside"
            return "ignored: refunds known"
        return "ignored: type"

    # -- delivery and maintenance ----------------------------------------------------------------------------
    def check_ready(self, application_id: str) -> None:
        """Signed and every payment secured → ready for delivery (a deposit that replaced a lapsed hold, or the
        renewed hold, secures the lease on its own)."""
        payments = self.store.for_application(application_id)
        kinds = {p.kind: p for p in payments}
        if "hold" in kinds and "deposit" in kinds:  # either one is enough
            either = kinds["hold"] if kinds["hold"].status in SECURED else kinds["deposit"]
            payments = [p for p in payments if p.kind not in ("hold", "deposit")] + [either]
        if payments and all(p.status in SECURED for p in payments):
            self.repo.transition(application_id, allowed_from=PAYING, to=DELIVERABLE, actor_kind="system",
                                 actor_id="payments", note="paid")

    def pay_out_dealers(self) -> int:
        """Transfer each captured down payment to its dealer's connected account (the resumer's job)."""
        done = 0
        for payment in self.store.transfers_due():
            account = self.dealer_account(payment.dealer_id)
            if not account or payment.refunded:  # no account yet, or money went back: ops decide
                continue
            if not self.store.claim_transfer(payment.id):  # another process is sending it
                continue
            try:
                transfer = self.gateway.transfer(
                    amount=payment.dealer_share, currency="cny", destination=account,
                    idempotency_key=f"transfer:{payment.id}", transfer_group=payment.application_id,
                    metadata={"payment_id": payment.id, "application_id": payment.application_id})
            except PaymentsUnavailable:
                self.store.claim_transfer(payment.id, "sending", "due")  # the same key next tick
                return done
            except (PaymentRefused, PaymentDeclined) as exc:
                log.error("transfer of %s to %s refused: %s", payment.id, account, exc)
                self.store.set_fields(payment.id, transfer_status="failed")
                continue
            self.store.set_fields(payment.id, transfer_status="sent", transfer_id=transfer.id)
            self.repo.outbox_add(payment.application_id, f"transfer:{payment.id}", "payment", {
                "payment_id": payment.id, "kind": "dealer_share", "amount": _yuan(transfer.amount),
                "currency": "CNY", "stripe_transfer": transfer.id}, self.clock())
            done += 1
        return done

    def retry_refunds(self) -> int:
        """Send again the refunds whose answer was lost (Stripe unreachable), with their first key."""
        done = 0
        for refund in self.store.pending_refunds():
            if self.clock() - refund.created_at < REFUND_RETRY_AFTER:  # its own request may still be waiting
                continue
            payment = self.store.get(refund.payment_id)
            if payment is None or not payment.intent_id:
                continue
            try:
                made = self.gateway.refund(payment.intent_id, amount=refund.amount,
                                           idempotency_key=f"refund:{refund.id}", reason="requested_by_customer",
                                           metadata={"refund_id": refund.id, "payment_id": payment.id})
            except PaymentsUnavailable:
                return done
            except (PaymentRefused, PaymentDeclined) as exc:
                log.error("Stripe refused refund %s: %s", refund.id, exc)
                self.store.finish_refund(refund.id, None, "failed")
                continue
            self.store.finish_refund(refund.id, made.id, "succeeded" if made.status != "failed" else "failed")
            done += 1
        return done

    def expire_holds(self) -> int:
        """Holds past their authorisation window (the resumer's job): marked ``expired``, and the lease is asked
        for security again — the customer places the hold once more (a new authorisation) or pays the deposit
        instead (a ``deposit`` line of the same amount appears); either one secures it."""
        done = 0
        for payment in self.store.lapsed_holds(self.clock()):
            if self.store.move(payment.id, "held", "expired", last_error="authorisation window ended"):
                self.store.ensure(payment.application_id, payment.dealer_id, [("deposit", payment.amount, 0)])
                done += 1
        return done

    def reconcile(self) -> list[dict[str, Any]]:
        """Every disagreement between Stripe's PaymentIntents and our payments (``leaseline payments reconcile``)."""
        ours = {p.id: p for p in self.store.all()}
        seen: set[str] = set()
        problems: list[dict[str, Any]] = []
        for intent in self.gateway.list_intents():
            payment_id = intent.metadata.get("payment_id")
            if not payment_id:
                continue
            payment = ours.get(payment_id)
            if payment is None:
                problems.append({"problem": "unknown_payment", "intent": intent.id, "payment": payment_id})
                continue
            if payment.intent_id != intent.id:
                if intent.status in ("succeeded", "requires_capture"):  # money taken on an intent we do not follow
                    problems.append({"problem": "untracked_intent", "intent": intent.id, "payment": payment_id,
                                     "stripe_status": intent.status})
                continue
            seen.add(payment.id)
            expected = from_intent(intent.status, intent.capture_method == "manual")
            if expected != payment.status and not (payment.status == "expired" and expected == "held"):
                problems.append({"problem": "status", "payment": payment.id, "intent": intent.id,
                                 "ours": payment.status, "stripe": intent.status})
            if intent.amount != payment.amount:
                problems.append({"problem": "amount", "payment": payment.id, "ours": payment.amount,
                                 "stripe": intent.amount})
            if intent.amount_received != payment.captured:
                problems.append({"problem": "captured", "payment": payment.id, "ours": payment.captured,
                                 "stripe": intent.amount_received})
            if intent.amount_refunded != payment.refunded:
                problems.append({"problem": "refunded", "payment": payment.id, "ours": payment.refunded,
                                 "stripe": intent.amount_refunded})
        for payment in ours.values():
            if payment.intent_id and payment.id not in seen:
                problems.append({"problem": "missing_at_stripe", "payment": payment.id, "intent": payment.intent_id})
        return problems

    # -- evidence ---------------------------------------------------------------------------------------------
    def _evidence(self, payment: Payment, status: str, intent: Intent) -> None:
        kind = {"succeeded": "payment", "held": "payment", "captured": "capture", "released": "capture"}.get(status)
        if kind is None:
            return
        amount = intent.amount_received if status in ("succeeded", "captured") else payment.amount
        self.repo.outbox_add(payment.application_id, f"{kind}:{payment.id}:{status}:{payment.attempts}", kind, {
            "payment_id": payment.id, "kind": payment.kind, "status": status, "amount": _yuan(amount),
            "currency": "CNY", "stripe_intent": intent.id}, self.clock())


def _yuan(amount_fen: int) -> str:
    return f"{Decimal(amount_fen) / 100:.2f}"


def _event_error(obj: dict[str, Any]) -> str | None:
    error = obj.get("last_payment_error")
    if isinstance(error, dict):
        return str(error.get("decline_code") or error.get("code") or error.get("message") or "") or None
    return None
