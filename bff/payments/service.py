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
cards), far shorter than a lease. ``held_until`` records when this one lapses; then it is marked ``expired``.
Before the handover the lease asks for security again: the customer places the hold once more, or pays a deposit
line of the same amount that appears instead. After the handover nothing is payable here (``PAYING``), so a lapsed
hold is only marked expired — the lease then holds no security, and its page and /payments say so. Keeping a hold
alive for a whole term would need re-authorisations on the customer's saved card (Customer + SetupIntent,
off-session), not built.

How the customer pays: with ``LEASELINE_STRIPE_PUBLISHABLE_KEY`` set (production), through Stripe.js's Payment
Element — :meth:`PaymentService.checkout` creates the line's PaymentIntent unconfirmed (card, Alipay and WeChat Pay
for a charge; card only for the hold, which needs manual capture), the browser confirms it with the intent's client
secret, and back on our return URL :meth:`PaymentService.refresh` asks Stripe how it went (never the query string).
Without it (the embedded default, with localstripe), TEST MODE: :meth:`PaymentService.pay` creates and confirms the
intent server-side with one of Stripe's test PaymentMethods.

Every create/capture/cancel/refund carries an Idempotency-Key derived from our own record
(``pay:<payment>:<n>``, ``capture:<payment>``, ``refund:<refund>``; the settle job's own steps
``settle-capture:<lease>:<n>`` and ``settle-release:<lease>:<n>``, ``n`` being ops' retry), and our own state guards
it too:
localstripe ignores the keys, and a double tap must not reach Stripe twice at all. A dealer-share transfer that
Stripe refused is retried by ops as a new attempt (``transfer:<payment>:<n>``): Stripe answers a key it has seen
with the same answer, its refusal included.

End of the term (结清): nothing here knows whether rents were paid — they are collected outside this system — so
the end of a lease is a decision of the lessor's ops, not of a clock:
- the term starts when the dealer confirms the handover (交车) of a ``ready_for_delivery`` lease whose security is
  in place (who and when recorded; the contract counts the term from the vehicle's delivery) and ends on the same
  calendar day ``term`` months later (Asia/Shanghai; the 31st becomes the month's last day);
- from that day on the lease is listed as due for closing; ops close it in good standing, with a deduction
  (fen, a reason required) of at most what is left of the deposit, or none. A 免押 lease holds no security by
  then (its hold lapsed within 7 days of being placed, before the handover), so its limit is 0 and a default is
  collected outside Leaseline;
- the settle job (``leaseline payments settle``, and the worker's payments.settle job) then refunds the deposit less the
  deduction — one refund per lease (per ops' retry after Stripe refused one), its id derived from the lease,
  through the refund path: amount reserved first, ``refund:<refund>`` key, evidence entry; the deduction is fixed
  when ops close the lease, and nothing moved ever exceeds what is left at settlement time. Running it again, or
  twice at once, moves nothing more; Stripe unreachable leaves the settlement due, Stripe refusing a step marks
  it for ops' attention (they retry from the lease's page); a lease that fails unexpectedly is logged and left
  due, and the run goes on with the others.
The handover, the closing and each money movement go to the audit log and to the evidence log.
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from decimal import ROUND_HALF_UP
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from bff.applications.services import Actor
from bff.applications.services import NotAllowed
from bff.payments.machine import CAPTURED
from bff.payments.machine import CLOSED
from bff.payments.machine import DELIVERED
from bff.payments.machine import EVENT_STATUS
from bff.payments.machine import PAYABLE
from bff.payments.machine import SECURED
from bff.payments.machine import advance
from bff.payments.machine import deduction_limit
from bff.payments.machine import due_for_closing
from bff.payments.machine import from_intent
from bff.payments.machine import hold_lapsed_unsecured
from bff.payments.machine import mismatch
from bff.payments.machine import plan_settlement
from bff.payments.machine import receipt_problem
from bff.payments.machine import secured
from bff.payments.machine import term_end
from infra.applications import Application
from infra.applications import Scope
from infra.applications import SqlApplications
from infra.audit import SqlAuditLog
from infra.payments import Intent
from infra.payments import PaymentDeclined
from infra.payments import PaymentRefused
from infra.payments import PaymentsError
from infra.payments import PaymentsUnavailable
from infra.payments import StripeGateway
from infra.payments import charge_refunded
from infra.payments import intent_from_object
from infra.payments import received_known
from infra.payments_store import LeaseLine
from infra.payments_store import LeaseTerm
from infra.payments_store import Payment
from infra.payments_store import SqlPayments
from infra.peers import is_local_endpoint

log = logging.getLogger(__name__)
_ALL = Scope()
HOLD_WINDOW = timedelta(days=7)
REFUND_RETRY_AFTER = timedelta(minutes=1)
#: a dealer share left ``sending`` this long was being sent by a process that died: it is sent again (same key)
TRANSFER_STALE_AFTER = timedelta(minutes=5)
#: application states in which payments exist and may be paid
PAYING = ("signed", "ready_for_delivery")  # after the handover nothing is payable: a lapsed hold is not replaced
DELIVERABLE = "ready_for_delivery"
#: the test cards offered in TEST MODE: Stripe's test PaymentMethods (localstripe knows pm_card_visa and
#: pm_card_chargeCustomerFail; for 3-D Secure it needs the test card's number, which real Stripe refuses)
TEST_METHODS = {"visa": "pm_card_visa", "declined": "pm_card_chargeCustomerFail",
                "3ds": "pm_card_threeDSecure2Required"}
LOCAL_3DS_CARD = "4000000000003220"
SHANGHAI = ZoneInfo("Asia/Shanghai")
#: a settle run that stopped (a crash) without letting go of a lease lets another take it after this long
SETTLE_STALE = timedelta(minutes=5)
#: the namespace of the settlement refunds' ids, derived from the lease: one refund per lease, whatever the runs
SETTLEMENT_REFUNDS = uuid.UUID("6f1d9a52-3c55-4d8e-9a57-6a0c1f3b2e10")
#: what the Payment Element offers per line: Alipay and WeChat Pay take CNY but cannot hold an amount (no manual
#: capture), so the 免押 hold is card only
ELEMENT_METHODS = {"upfront": ("card", "alipay", "wechat_pay"), "deposit": ("card", "alipay", "wechat_pay"),
                   "hold": ("card",)}
ELEMENT_UI = "payment_element"  # metadata ``ui`` of the intents made for the Payment Element
#: our statuses in which the Payment Element is offered, and the intent statuses Stripe can still confirm
ELEMENT_PAYABLE = PAYABLE | {"requires_action"}
CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
CHECKOUT_WAIT = 3.0  # seconds a request waits for the intent another request is creating for the same line
#: what a PaymentIntent id looks like (``pi_`` and Stripe's characters; our columns hold 64): anything else in an
#: event is no intent of ours
INTENT_ID = re.compile(r"pi_[A-Za-z0-9_]{1,61}")


def fen(amount: str | Decimal) -> int:
    """Yuan (a string or Decimal with at most two decimals, as the frozen quote has) → fen."""
    value = Decimal(str(amount)).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    return int(value * 100)


class PaymentService:
    def __init__(self, store: SqlPayments, gateway: StripeGateway, repo: SqlApplications, deposit_ratio: Decimal,
                 dealer_account: Callable[[str], str | None] = lambda dealer_id: None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), audit: SqlAuditLog | None = None) -> None:
        self.store, self.gateway, self.repo = store, gateway, repo
        self.deposit_ratio, self.dealer_account, self.clock = deposit_ratio, dealer_account, clock
        self.audit = audit

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

    def checkout(self, app: Application, payment_id: str, *, waited: bool = False) -> Intent | None:
        """The PaymentIntent that Stripe.js's Payment Element confirms in the browser for ``payment_id`` (the page
        needs its ``client_secret``): the current attempt's while Stripe can still confirm it (after a decline too,
        so the customer simply tries again), else a new attempt's, created unconfirmed with the line's payment
        method types. None when nothing is to be paid on it now (paid, held, being processed).

        A reload, a second tab or a double tap makes no second intent: the attempt is claimed in our own state first
        and its key (``pay:<payment>:<n>``) is the Idempotency-Key; a request that finds the intent being created
        waits a moment for it."""
        if app.status not in PAYING:
            raise NotAllowed("wrong_state", "当前无需付款", "Nothing is to be paid now")
        payment = self._own(app, payment_id)
        if payment.status == "processing" and not waited and self._being_prepared(payment):
            deadline = time.monotonic() + CHECKOUT_WAIT
            while time.monotonic() < deadline and self._own(app, payment_id).status == "processing":
                time.sleep(0.1)
            return self.checkout(app, payment_id, waited=True)
        if payment.status not in ELEMENT_PAYABLE:
            return None
        if payment.intent_id and payment.status != "expired":  # a lapsed hold needs a new authorisation
            intent = self.gateway.retrieve_intent(payment.intent_id)
            current = (intent.metadata.get("ui") == ELEMENT_UI
                       and intent.metadata.get("attempt") == str(payment.attempts))
            if current and intent.status in CONFIRMABLE and intent.client_secret:
                return intent
            payment = self.apply_intent(payment.id, intent)  # paid meanwhile (before its webhook), or canceled
            if payment.status == "pending":  # an intent that cannot be confirmed: that attempt is over
                payment = self.store.move(payment.id, "pending", "failed", last_error=intent.status) or payment
            if payment.status not in PAYABLE:
                return None
        claimed = self.store.claim_attempt(payment.id, f"pay:{payment.id}:{uuid.uuid4().hex[:12]}")
        if claimed is None:  # another request claimed it a moment ago: its intent is on the way
            return None if waited else self.checkout(app, payment_id)
        assert claimed.attempt_key is not None
        try:
            intent = self.gateway.create_intent(
                amount=claimed.amount, currency="cny", idempotency_key=claimed.attempt_key,
                metadata={"payment_id": claimed.id, "application_id": app.id, "kind": claimed.kind,
                          "attempt": str(claimed.attempts), "ui": ELEMENT_UI},
                manual_capture=claimed.kind == "hold", methods=ELEMENT_METHODS.get(claimed.kind, ("card",)),
                description=f"Leaseline {app.contract.get('number') or app.id[:8]} {claimed.kind}")
        except PaymentsUnavailable:
            self.store.move(claimed.id, "processing", "pending", last_error="unavailable")  # the same key next time
            raise
        except (PaymentRefused, PaymentDeclined) as exc:
            log.error("Stripe refused the PaymentIntent of %s: %s", claimed.id, exc)
            self.store.move(claimed.id, "processing", "failed", last_error="refused")
            return None
        self.store.move(claimed.id, "processing", "pending", intent_id=intent.id, next_action_url=None)
        return intent

    def _being_prepared(self, payment: Payment) -> bool:
        """``processing`` because a request is creating the attempt's intent (Stripe has none of this attempt yet),
        not because Stripe is processing the payment (e.g. Alipay's, asynchronously)."""
        if payment.intent_id is None:
            return True
        return self.gateway.retrieve_intent(payment.intent_id).metadata.get("attempt") != str(payment.attempts)

    def apply_intent(self, payment_id: str, intent: Intent) -> Payment:
        """Bring the payment in line with Stripe's PaymentIntent (our answer from Stripe, or a refresh), by the rules
        of :meth:`_apply`; an intent that does not fit the payment changes nothing and is logged and audited."""
        payment, outcome = self._apply(payment_id, intent)
        if outcome.startswith("refused"):
            self._refused(payment, outcome, {"source": "answer", **_facts(intent)})
        return payment

    def _apply(self, payment_id: str, intent: Intent) -> tuple[Payment, str]:
        """Apply ``intent`` to the payment: ``(the payment now, the outcome)``, one of

        - ``applied``: the machine accepted the move; the intent, its 3-D Secure address and — on moving into
          ``succeeded`` or ``captured`` — what Stripe received are written with it, in one conditional UPDATE;
        - ``updated``: the same status, the current attempt's intent (first heard of) or its address recorded — never
          while the money is on the recorded intent (secured);
        - ``ignored: <status> stays``: an earlier attempt's intent, or a move the machine does not allow (a late event);
        - ``refused: <why>``: not the intent we asked Stripe for (another attempt's number, no attempt and not the
          recorded intent, another amount, currency or capture method), or a received amount that cannot be right.

        Nothing but ``applied`` changes the status or any amount (issue 14: a late ``processing`` had set ``captured``
        to 0 while the payment stayed ``succeeded``)."""
        manual = intent.capture_method == "manual"
        for _ in range(3):  # decided on what is stored; a concurrent change is decided again
            payment = self.store.get(payment_id)
            assert payment is not None
            stays = f"ignored: {payment.status} stays"
            attempt = intent.metadata.get("attempt")
            if attempt is None:
                if payment.intent_id != intent.id:  # ours all carry their attempt
                    return payment, "refused: not the intent of this attempt"
            elif not attempt.isdigit() or int(attempt) > payment.attempts:
                return payment, f"refused: attempt {attempt[:12]!r} not started"
            elif int(attempt) < payment.attempts:
                return payment, stays  # an earlier attempt's intent (e.g. its late "failed"): the current one decides
            why = mismatch(payment.kind, payment.amount, intent_amount=intent.amount, currency=intent.currency,
                           manual=manual)
            if why is not None:
                return payment, f"refused: {why}"
            target = payment.status if _untried(intent) else from_intent(intent.status, manual)
            fields: dict[str, object] = {"intent_id": intent.id, "next_action_url": intent.next_action_url}
            if advance(payment.status, target) is not None:
                if target in CAPTURED:
                    why = receipt_problem(target, payment.amount, intent.amount_received)
                    if why is not None:
                        return payment, f"refused: {why}"
                    fields["captured"] = intent.amount_received
                if intent.last_error and target == "failed":
                    fields["last_error"] = intent.last_error[:255]
                if target == "held" and payment.held_until is None:
                    fields["held_until"] = datetime.fromtimestamp(intent.created, UTC) + HOLD_WINDOW
                with self.repo.db.transaction():  # the move, its evidence entry and what it unlocks, together
                    moved = self.store.move(payment.id, payment.status, target, **fields)
                    if moved is not None:
                        self._evidence(payment, target, intent)
                        self.check_ready(payment.application_id)
                if moved is None:
                    continue
                return moved, "applied"
            if target != payment.status:
                return payment, stays
            if payment.status in CAPTURED and intent.amount_received != payment.captured:
                # Stripe's amount_received is final once an intent succeeded: another figure is not about this money
                return payment, f"refused: received {intent.amount_received}, recorded {payment.captured}"
            if intent.id != payment.intent_id and payment.status in SECURED:
                return payment, stays  # the money (or the hold) is on the recorded intent: it stays followed
            changes = {k: v for k, v in fields.items() if getattr(payment, k) != v}
            if not changes:
                return payment, stays
            updated = self.store.move(payment.id, payment.status, payment.status, **changes)
            if updated is not None:
                return updated, "updated"
        fresh = self.store.get(payment_id)  # still changing under us: leave it to whoever is changing it
        assert fresh is not None
        return fresh, f"ignored: {fresh.status} stays"

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
        with self.repo.db.transaction():  # the refund recorded and its evidence entry, together
            self.store.finish_refund(refund.id, made.id, "succeeded" if made.status != "failed" else "failed")
            self.repo.outbox_add(app.id, f"refund:{refund.id}", "refund", {
                "payment_id": payment.id, "kind": payment.kind, "amount": _yuan(amount), "currency": "CNY",
                "stripe_refund": made.id}, self.clock())
        fresh = self.store.get(payment.id)
        assert fresh is not None
        return fresh

    # -- webhooks ---------------------------------------------------------------------------------------------
    def handle_event(self, event: dict[str, Any]) -> str:
        """Apply one verified Stripe event, once; returns what it did (stored with the event id): ``applied``,
        ``updated``, ``ignored: …`` (a late or foreign event: nothing changed), ``refused: …`` (it names one of our
        payments but is not about it as we made it: nothing changed, logged, audited and listed for ops on
        /payments), ``replay`` or ``malformed``. :class:`PaymentsUnavailable` when Stripe could not be asked about
        the event's intent: the event is forgotten, so that Stripe's retry of it is applied."""
        event_id, kind = str(event.get("id") or ""), str(event.get("type") or "")
        obj = (event.get("data") or {}).get("object") or {}
        if not event_id or not isinstance(obj, dict):
            return "malformed"
        raw = obj.get("payment_intent") if kind.startswith("charge.") else obj.get("id")
        intent_id = raw if isinstance(raw, str) and INTENT_ID.fullmatch(raw) else None
        created = event.get("created")
        if not self.store.record_event(event_id, kind, intent_id,
                                       created if isinstance(created, int) and not isinstance(created, bool) else 0,
                                       "received"):
            return "replay"
        try:
            outcome = self._apply_event(event_id, kind, obj, intent_id)
        except Exception:
            self.store.forget_event(event_id)  # not applied: Stripe's retry (or a later one) gets its turn
            raise
        self.store.set_event_outcome(event_id, outcome)
        return outcome

    def _apply_event(self, event_id: str, kind: str, obj: dict[str, Any], intent_id: str | None) -> str:
        if kind in EVENT_STATUS:
            return self._intent_event(event_id, kind, obj, intent_id)
        if kind == "charge.refunded":
            return self._refund_event(event_id, kind, obj, intent_id)
        return "ignored: type"

    def _named(self, obj: dict[str, Any]) -> Payment | None:
        """The payment an object's metadata names (ours carry ``payment_id``), if it exists."""
        metadata = obj.get("metadata")
        named = metadata.get("payment_id") if isinstance(metadata, dict) else None
        return self.store.get(named) if isinstance(named, str) and 0 < len(named) <= 64 else None

    def _intent_event(self, event_id: str, kind: str, obj: dict[str, Any], intent_id: str | None) -> str:
        """A ``payment_intent.*`` event. About the intent recorded on a payment, the event's object is believed (if it
        fits the payment: :meth:`_apply`). About an intent not recorded — our answer not stored yet, or the intent
        confirmed in the browser — that names a payment of ours, the object is not believed at all: Stripe is asked,
        and only an intent Stripe knows, made for that payment's current attempt, is applied, as Stripe describes it."""
        body = replace(intent_from_object(obj), id=intent_id or "", status=EVENT_STATUS[kind])
        payment = self.store.by_intent(intent_id) if intent_id else None
        if payment is not None:
            # localstripe's objects may not say what was received (an older shape): then Stripe says it
            intent = body if received_known(obj) else self.gateway.retrieve_intent(payment.intent_id or "")
        else:
            payment = self._named(obj)
            if payment is None:
                return "ignored: not ours"
            details = {"event": event_id, "type": kind, **_facts(body)}
            attempt = body.metadata.get("attempt")
            if attempt is not None and attempt.isdigit() and int(attempt) < payment.attempts:
                return f"ignored: {payment.status} stays"  # a late word about an attempt that is over: changes nothing
            if intent_id is None:
                return self._refused(payment, "refused: no PaymentIntent id", details)
            try:
                intent = self.gateway.retrieve_intent(intent_id)
            except PaymentRefused:  # e.g. 404: Stripe has no such intent in our account
                return self._refused(payment, "refused: unknown to Stripe", details)
            if intent.metadata.get("payment_id") != payment.id:
                return self._refused(payment, "refused: Stripe's intent is not for this payment", details)
        payment, outcome = self._apply(payment.id, intent)
        if outcome.startswith("refused"):
            self._refused(payment, outcome, {"event": event_id, "type": kind, **_facts(body)})
        return outcome

    def _refund_event(self, event_id: str, kind: str, obj: dict[str, Any], intent_id: str | None) -> str:
        """``charge.refunded``: a refund, ours or made outside Leaseline (e.g. in Stripe's dashboard). Raises what
        was refunded of the payment to the charge's total, if the charge is of the intent recorded on a payment that
        was captured, in its currency, and the total is no more than was captured."""
        payment = self.store.by_intent(intent_id) if intent_id else None
        refunded = charge_refunded(obj)
        currency = str(obj.get("currency") or "")
        if payment is None:
            named = self._named(obj)
            if named is None:
                return "ignored: not ours"
            payment, why = named, "refused: a refund of an intent we do not follow"
        elif currency.lower() != payment.currency.lower():
            why = f"refused: currency {currency[:8]!r} is not cny"
        elif payment.status not in CAPTURED:
            why = "refused: a refund of a payment not captured"
        elif refunded > payment.captured:
            why = f"refused: refunded {refunded} of {payment.captured} captured"
        elif refunded <= payment.refunded:
            return "ignored: refunds known"
        elif self.store.raise_refunded(payment.id, refunded):
            return "applied: refunded outside"
        else:
            return "ignored: refunds changed meanwhile"
        return self._refused(payment, why, {"event": event_id, "type": kind, "intent": intent_id,
                                            "refunded": refunded, "currency": currency[:8]})

    def _refused(self, payment: Payment, outcome: str, details: dict[str, object]) -> str:
        """Keep a refusal where people look: the log, the audit log (``payment.stripe_refused``); a webhook's also in
        its stored outcome, which /payments lists for ops. Returns ``outcome``."""
        log.warning("payment %s: Stripe's %s %s", payment.id, details.get("type") or "answer", outcome)
        self._audit("payment.stripe_refused", None, payment.dealer_id, payment.id,
                    {"why": outcome.removeprefix("refused: "), **details}, outcome="failure",
                    system="system:stripe")
        return outcome

    # -- delivery and maintenance ----------------------------------------------------------------------------
    def check_ready(self, application_id: str) -> None:
        """Signed and every payment secured → ready for delivery (a deposit that replaced a lapsed hold, or the
        renewed hold, secures the lease on its own)."""
        if secured((p.kind, p.status) for p in self.store.for_application(application_id)):
            self.repo.transition(application_id, allowed_from=PAYING, to=DELIVERABLE, actor_kind="system",
                                 actor_id="payments", note="paid")

    def pay_out_dealers(self) -> int:
        """Transfer each captured down payment to its dealer's connected account (the worker's
        ``payments.pay_out_dealers`` job)."""
        done = 0
        # a transfer left ``sending`` longer than a call takes: its sender died (a worker killed mid-call); sent again
        # with the same Idempotency-Key, Stripe answers with the transfer it made, if it made one
        stale = self.clock() - TRANSFER_STALE_AFTER
        for payment in self.store.transfers_due(stale_before=stale):
            account = self.dealer_account(payment.dealer_id)
            if not account or payment.refunded:  # no account yet, or money went back: ops decide
                continue
            if not self.store.claim_transfer(payment.id, stale_before=stale):  # another process is sending it
                continue
            try:
                transfer = self.gateway.transfer(
                    amount=payment.dealer_share, currency="cny", destination=account,
                    idempotency_key=transfer_key(payment), transfer_group=payment.application_id,
                    metadata={"payment_id": payment.id, "application_id": payment.application_id})
            except PaymentsUnavailable:
                self.store.claim_transfer(payment.id, "sending", "due")  # the same key next tick
                return done
            except (PaymentRefused, PaymentDeclined) as exc:
                log.error("transfer of %s to %s refused: %s", payment.id, account, exc)
                self.store.set_fields(payment.id, transfer_status="failed", transfer_error=str(exc)[:255])
                continue
            with self.repo.db.transaction():  # sent and its evidence entry together (a crash between lost it)
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
            with self.repo.db.transaction():  # the answer and its evidence entry together
                self.store.finish_refund(refund.id, made.id, "succeeded" if made.status != "failed" else "failed")
                if made.status != "failed":  # sent late, logged like one sent at once
                    self.repo.outbox_add(payment.application_id, f"refund:{refund.id}", "refund", {
                        "payment_id": payment.id, "kind": payment.kind, "amount": _yuan(refund.amount),
                        "currency": "CNY", "stripe_refund": made.id}, self.clock())
            done += 1
        return done

    def expire_holds(self) -> int:
        """Holds past their authorisation window (the worker's ``payments.expire_holds`` job): marked ``expired``.
        Before the handover the lease is asked for security again — the customer places the hold once more (a new
        authorisation) or pays the deposit instead (a ``deposit`` line of the same amount appears); either one secures
        it. After the handover nothing can be paid any more (``PAYING``): the hold is only expired, and the lease holds
        no security (:meth:`unsecured`), rather than showing a deposit "to pay" that nobody can pay."""
        done = 0
        for payment in self.store.lapsed_holds(self.clock()):
            if self.store.move(payment.id, "held", "expired", last_error="authorisation window ended"):
                app = self.repo.get(payment.application_id, _ALL)
                if app is not None and app.status in PAYING:
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
            if _untried(intent) and payment.status in PAYABLE:  # the Payment Element's, not confirmed yet
                expected = payment.status
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


    # -- the end of the term: handover (交车), closing (结清), settlement; the ops view -------------------------
    def today(self) -> date:
        """Today in Asia/Shanghai: terms start and end on calendar days there."""
        return self.clock().astimezone(SHANGHAI).date()

    def term(self, app: Application) -> LeaseTerm | None:
        """The lease's term, once the vehicle has been handed over."""
        return self.store.term(app.id)

    def security(self, application_id: str) -> tuple[int, int]:
        """``(what is left of the captured deposit, the amount of a hold still live on the card)`` in fen. A hold
        past its window counts for nothing even before the resumer marks it expired: Stripe has let it go."""
        deposit_left = hold_live = 0
        for p in self.store.for_application(application_id):
            if p.kind == "deposit" and p.status == "succeeded":
                deposit_left = p.refundable
            elif p.kind == "hold" and self._live(p):
                hold_live = p.amount
        return deposit_left, hold_live

    def unsecured(self, application_id: str) -> bool:
        """A 免押 lease whose card hold lapsed with no deposit in its place: nothing secures it (after the handover
        nothing replaces it)."""
        return hold_lapsed_unsecured((p.kind, p.status) for p in self.store.for_application(application_id))

    def _live(self, hold: Payment) -> bool:
        """A hold still authorised on the card: ``held`` and within its window."""
        return hold.status == "held" and (hold.held_until is None or hold.held_until > self.clock())

    def hand_over(self, actor: Actor, app: Application, note: str = "") -> LeaseTerm:
        """The dealer hands the vehicle over (交车): ``ready_for_delivery`` → ``delivered``; the term starts today
        and ends ``term`` months later. The security must still be in place (a hold lapses after 7 days: it is
        placed again, or the deposit paid, first). A second tap returns the term the first one started."""
        if app.status in (DELIVERED, CLOSED) and (found := self.store.term(app.id)) is not None:
            return found
        if app.status != DELIVERABLE:
            raise NotAllowed("wrong_state", "只有已付清、待交车的租赁可以确认交车",
                             "Only a paid lease that is ready for delivery can be handed over")
        if not secured((p.kind, p.status) for p in self.store.for_application(app.id)):
            raise NotAllowed("not_secured", "担保已失效（预授权已过期）：请客户重新预授权或支付保证金后再交车",
                             "The security has lapsed (the card hold expired): the customer places the hold again "
                             "or pays the deposit before the handover")
        months = int(app.plan["quote"]["term"])
        starts = self.today()
        ends = term_end(starts, months)
        now = self.clock()
        note = note.strip()[:500]
        with self.repo.db.transaction():  # the handover and its evidence entry together
            term = self.store.start_term(
                app.id, dealer_id=app.dealer_id, from_status=DELIVERABLE, to_status=DELIVERED, term_months=months,
                starts_on=starts, ends_on=ends, actor_id=actor.id, actor_label=actor.label, now=now,
                note=f"交车 handover; term {starts.isoformat()} – {ends.isoformat()}" + (f"; {note}" if note else ""))
            if term is not None:
                self.repo.outbox_add(app.id, f"delivery:{app.id}", "delivery", {
                    "starts_on": starts.isoformat(), "ends_on": ends.isoformat(), "term_months": months,
                    "by": actor.kind}, now)
        if term is None:  # another tap or device handed it over a moment ago
            found = self.store.term(app.id)
            if found is None:
                raise NotAllowed("wrong_state", "只有已付清、待交车的租赁可以确认交车",
                                 "Only a paid lease that is ready for delivery can be handed over")
            return found
        self._audit("lease.handover", actor, app.dealer_id, app.id, {
            "starts_on": starts.isoformat(), "ends_on": ends.isoformat(), "term_months": months})
        return term

    def close(self, actor: Actor, app: Application, deduction: int, reason: str) -> LeaseTerm:
        """Ops close a lease in good standing on or after its term's end (结清): ``delivered`` → ``closed``, with
        ``deduction`` fen kept from the security (at most what is left of the deposit, plus a hold still live — none
        in practice: a hold lapses before the handover; a reason required) or none. The settle job then moves the
        money (:meth:`settle`)."""
        reason = " ".join(reason.split())[:255]
        term = self.store.term(app.id)
        if app.status != DELIVERED or term is None:
            raise NotAllowed("wrong_state", "只有租期中的租赁可以结清", "Only a lease on hire can be closed")
        if not due_for_closing(term.ends_on, self.today()):
            raise NotAllowed("not_due", f"租期尚未结束（{term.ends_on.isoformat()} 到期），不能结清",
                             f"The term has not ended yet (it ends on {term.ends_on.isoformat()})")
        if deduction < 0:
            raise NotAllowed("deduction", "扣款金额不能为负数", "The deduction cannot be negative")
        if deduction > 0 and not reason:
            raise NotAllowed("reason", "扣款须填写原因", "Give the reason for the deduction")
        deposit_left, hold_live = self.security(app.id)
        limit = deduction_limit(deposit_left, hold_live)
        if deduction > limit:
            raise NotAllowed("deduction", f"扣款不能超过保证金（最多 ¥{_yuan(limit)}）",
                             f"The deduction cannot be more than the deposit (at most ¥{_yuan(limit)})")
        plan = plan_settlement(deduction, deposit_left, hold_live)
        now = self.clock()
        with self.repo.db.transaction():  # the closing and its evidence entry together
            closed = self.store.close_term(
                app.id, from_status=DELIVERED, to_status=CLOSED, deduction=deduction, reason=reason,
                actor_id=actor.id, actor_label=actor.label, now=now,
                note=f"结清 closed in good standing; deduction ¥{_yuan(deduction)}" + (f": {reason}" if reason else ""))
            if closed is not None:
                self.repo.outbox_add(app.id, f"lease_closed:{app.id}", "lease_closed", {
                    "ends_on": closed.ends_on.isoformat(), "deduction": _yuan(deduction), "currency": "CNY",
                    "reason_sha256": hashlib.sha256(reason.encode()).hexdigest() if reason else None,
                    "refund_due": _yuan(plan.refund), "capture_due": _yuan(plan.capture), "by": actor.kind}, now)
        if closed is None:
            raise NotAllowed("wrong_state", "这笔租赁已经结清", "This lease has been closed already")
        self._audit("lease.close", actor, app.dealer_id, app.id, {
            "deduction_fen": deduction, "reason": reason, "deposit_refund_fen": plan.refund,
            "hold_capture_fen": plan.capture, "release_hold": plan.release})
        return closed

    def leases_to_close(self, dealer_id: str | None = None) -> list[LeaseLine]:
        """Leases on hire whose term has ended and that ops have not closed yet (``dealer_id`` None: every dealer)."""
        return [line for line in self.store.leases(dealer_id=dealer_id, ending_by=self.today(), settlements=(None,))
                if line.application_status == DELIVERED]

    def open_settlements(self, dealer_id: str | None = None) -> list[LeaseLine]:
        """Closed leases whose money has not all moved yet: due, or waiting for ops' attention."""
        return self.store.leases(dealer_id=dealer_id, settlements=("due", "attention"))

    def settle(self, only: str | None = None) -> dict[str, list[str]]:
        """Move the money of every closed lease whose settlement is due (the job behind ``leaseline payments settle``
        and the worker's ``payments.settle`` job), or of the lease ``only``: application ids by outcome — ``settled``,
        ``waiting`` (Stripe unreachable, a refund still being sent, or an unexpected error, logged: due again next run),
        ``attention`` (Stripe refused a step)."""
        outcome: dict[str, list[str]] = {"settled": [], "waiting": [], "attention": []}
        now = self.clock()
        for term in self.store.settlements_due(now - SETTLE_STALE, only=only):
            if not self.store.claim_settlement(term.application_id, now, now - SETTLE_STALE):
                continue  # another run has it
            try:
                result = self._settle_one(term, now)
            except Exception:  # one lease's bug or bad data must not stop the others' settlements
                log.exception("settling lease %s failed; it stays due", term.application_id)
                result = "waiting"
            if result == "waiting":  # let go: the next run tries again (unless a newer run took it meanwhile)
                self.store.finish_settlement(term.application_id, "due", claim=now)
            outcome[result].append(term.application_id)
        return outcome

    def _settle_one(self, term: LeaseTerm, claim: datetime) -> str:
        app_id = term.application_id
        lines = {p.kind: p for p in self.store.for_application(app_id)}
        deposit, hold = lines.get("deposit"), lines.get("hold")
        refund_id = settlement_refund_id(app_id, term.settle_attempts)
        made = self.store.refund(refund_id)
        # what the deposit held before this settlement's own refund (so that a second run plans the same)
        deposit_left = deposit.refundable if deposit is not None and deposit.status == "succeeded" else 0
        if made is not None and made.status != "failed":
            deposit_left += made.amount
        # A hold is not live at settlement in practice (it lapses 7 days after it is placed, before the handover,
        # and a term lasts a month at least); one recorded live is still released, or the rest of the deduction
        # captured from it, under keys of this attempt (a retry must not replay Stripe's earlier refusal).
        hold_live = hold.amount if hold is not None and self._live(hold) else 0
        if hold is not None and hold.status == "captured":  # captured by an earlier run that stopped short
            hold_live = hold.captured
        plan = plan_settlement(term.deduction, deposit_left, hold_live)
        notes: list[str] = []
        # 1. the deposit, less the deduction, back to the customer: one refund per lease
        if made is None and plan.refund > 0 and deposit is not None and deposit.intent_id:
            made = self.store.add_refund_once(refund_id, deposit.id, plan.refund,
                                              "租期结束退还保证金 deposit refund at the end of the term",
                                              term.closed_by)
            if made is None:  # the deposit was refunded by hand meanwhile: nothing is left to send
                notes.append("deposit refunded elsewhere")
            else:
                try:
                    sent = self.gateway.refund(deposit.intent_id, amount=made.amount,
                                               idempotency_key=f"refund:{made.id}", reason="requested_by_customer",
                                               metadata={"refund_id": made.id, "payment_id": deposit.id,
                                                         "settlement": app_id})
                except PaymentsUnavailable:
                    return "waiting"  # reserved and pending: retry_refunds sends it again with the same key
                except (PaymentRefused, PaymentDeclined) as exc:
                    log.error("Stripe refused the settlement refund %s: %s", made.id, exc)
                    self.store.finish_refund(made.id, None, "failed")
                    return self._attention(term, claim, f"refund refused: {exc}"[:255])
                self.store.finish_refund(made.id, sent.id, "succeeded" if sent.status != "failed" else "failed")
                made = self.store.refund(refund_id)
        if made is not None:
            if made.status == "pending":
                return "waiting"
            if made.status == "failed":
                return self._attention(term, claim, "the deposit refund failed")
            self.repo.outbox_add(app_id, f"refund:{made.id}", "refund", {
                "payment_id": made.payment_id, "kind": "deposit", "amount": _yuan(made.amount), "currency": "CNY",
                "stripe_refund": made.stripe_refund_id, "settlement": True}, self.clock())
        # 2. a hold still live: the rest of the deduction captured from it, or the hold released
        if hold is not None and hold_live and hold.status == "held" and hold.intent_id:
            attempt = term.settle_attempts
            try:
                if plan.capture > 0:
                    intent = self.gateway.capture(hold.intent_id, amount=plan.capture,
                                                  idempotency_key=f"settle-capture:{app_id}:{attempt}")
                else:
                    intent = self.gateway.cancel(hold.intent_id, idempotency_key=f"settle-release:{app_id}:{attempt}")
            except PaymentsUnavailable:
                return "waiting"
            except (PaymentRefused, PaymentDeclined) as exc:
                log.error("Stripe refused to settle the hold %s: %s", hold.id, exc)
                try:  # perhaps it lapsed or was settled at Stripe already: follow what Stripe says
                    intent = self.gateway.retrieve_intent(hold.intent_id)
                except PaymentsError:
                    return self._attention(term, claim, f"hold refused: {exc}"[:255])
            hold = self.apply_intent(hold.id, intent)
            if hold.status == "held":
                return self._attention(term, claim, "the hold could not be released or captured")
        if plan.uncovered:
            notes.append(f"¥{_yuan(plan.uncovered)} of the deduction not covered")
        refunded = self.settlement_refunded(app_id, term.settle_attempts)
        captured = hold.captured if hold is not None and hold.status == "captured" and plan.capture else 0
        if not self.store.finish_settlement(app_id, "settled", claim=claim, settled_at=self.clock(), refunded=refunded,
                                            captured=captured, settle_note="; ".join(notes)[:255] or None):
            return "waiting"  # a newer run took the lease over (this one was taken for stale): it records the outcome
        self._audit("lease.settle", None, term.dealer_id, app_id, {
            "deposit_refund_fen": refunded, "hold": hold.status if hold is not None else None,
            "uncovered_fen": plan.uncovered})
        return "settled"

    def _attention(self, term: LeaseTerm, claim: datetime, why: str) -> str:
        if not self.store.finish_settlement(term.application_id, "attention", claim=claim, settle_note=why[:255]):
            return "waiting"  # a newer run has the lease
        self._audit("lease.settle", None, term.dealer_id, term.application_id, {"attention": why}, outcome="failure")
        return "attention"

    def settlement_refunded(self, application_id: str, attempts: int) -> int:
        """What the settlement refunded of the deposit (fen): the succeeded refunds of every attempt up to
        ``attempts`` (an earlier attempt may have refunded it before a later step needed ops' retry)."""
        total = 0
        for attempt in range(attempts + 1):
            made = self.store.refund(settlement_refund_id(application_id, attempt))
            if made is not None and made.status == "succeeded":
                total += made.amount
        return total

    def retry_settlement(self, actor: Actor, app: Application) -> dict[str, list[str]]:
        """Ops dealt with what Stripe refused: the settlement is due again, and tried now."""
        if not self.store.reopen_settlement(app.id):
            raise NotAllowed("wrong_state", "这笔结清无需重试", "This settlement needs no retry")
        self._audit("lease.settle_retry", actor, app.dealer_id, app.id, {})
        return self.settle(only=app.id)

    def retry_transfer(self, actor: Actor, payment_id: str, dealer_id: str | None = None) -> Payment:
        """Send again a dealer's share (分账) that Stripe refused, as a new attempt (ops fixed the cause, e.g. the
        dealer's connected account on the Dealers page). ``dealer_id``: the caller's tenant (None: every dealer)."""
        payment = self.store.get(payment_id)
        if payment is None or (dealer_id is not None and payment.dealer_id != dealer_id):
            raise NotAllowed("not_found", "没有这笔付款", "No such payment")
        if not self.store.retry_transfer(payment.id):
            raise NotAllowed("not_failed", "这笔分账没有失败，无需重试", "This transfer has not failed")
        self._audit("payment.transfer_retry", actor, payment.dealer_id, payment.id,
                    {"attempt": payment.transfer_attempts + 1})
        self.pay_out_dealers()
        fresh = self.store.get(payment.id)
        assert fresh is not None
        return fresh

    def _audit(self, action: str, actor: Actor | None, dealer_id: str | None, target: str,
               details: dict[str, object], outcome: str = "success", system: str = "system:settle") -> None:
        if self.audit is None:
            return
        self.audit.append(action, outcome, actor_id=actor.id if actor else None,
                          actor_label=actor.label if actor else system, dealer_id=dealer_id, target=target,
                          ip=actor.ip if actor else "", user_agent=actor.user_agent if actor else "", details=details)

def _yuan(amount_fen: int) -> str:
    return f"{Decimal(amount_fen) / 100:.2f}"


def _untried(intent: Intent) -> bool:
    """An intent waiting for its customer (made for the Payment Element, not confirmed yet): Stripe says
    ``requires_payment_method`` with no error, which says nothing about our payment (after a decline, an error)."""
    return intent.status == "requires_payment_method" and not intent.last_error


def _facts(intent: Intent) -> dict[str, object]:
    """What an intent says, for the audit log of a refusal."""
    return {"intent": intent.id, "status": intent.status, "amount": intent.amount, "currency": intent.currency[:8],
            "received": intent.amount_received, "capture_method": intent.capture_method,
            "attempt": intent.metadata.get("attempt", "")[:12]}


def transfer_key(payment: Payment) -> str:
    """The Idempotency-Key of a dealer-share transfer: ``transfer:<payment>``, and ``:<n>`` for ops' n-th retry
    after a refusal (a lost answer keeps its key: the same transfer, never a second one)."""
    return f"transfer:{payment.id}" + (f":{payment.transfer_attempts}" if payment.transfer_attempts else "")


def settlement_refund_id(application_id: str, attempt: int = 0) -> str:
    """The id of a lease's settlement refund: derived from the lease (and ops' retry after a refusal), so each
    attempt makes at most one."""
    return str(uuid.uuid5(SETTLEMENT_REFUNDS, f"{application_id}:deposit:{attempt}"))
