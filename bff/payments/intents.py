"""A payment kept in step with Stripe's PaymentIntent: the one place where what Stripe says about an intent — our
answer from Stripe, a refresh, a webhook's event, the settle job's capture or release — moves a payment, by the
rules of the state machine (bff/payments/machine.py), with its evidence entry and what it unlocks (the lease ready
for delivery) in the same transaction. Used by the checkout, the webhooks and the settlement."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from bff.payments.common import DELIVERABLE
from bff.payments.common import PAYING
from bff.payments.common import record_audit
from bff.payments.common import utc_now
from bff.payments.common import yuan
from bff.payments.machine import CAPTURED
from bff.payments.machine import SECURED
from bff.payments.machine import advance
from bff.payments.machine import from_intent
from bff.payments.machine import mismatch
from bff.payments.machine import receipt_problem
from bff.payments.machine import secured
from books.entries import UnpostableEntry
from infra.applications import SqlApplications
from infra.audit import SqlAuditLog
from infra.payments import Intent
from infra.payments_store import Payment
from infra.payments_store import SqlPayments
from plans.product import CARD_HOLD_DAYS

log = logging.getLogger(__name__)
HOLD_WINDOW = timedelta(days=CARD_HOLD_DAYS)


class NotBooked(UnpostableEntry):
    """Stripe moved a payment's money but the move's journal entry cannot be posted (issue 19: "fails its whole
    transaction with a clear error and an ops task, never a half-booked event"): nothing was changed, the failure is
    in the audit log (:meth:`IntentSync.unbooked`). A customer is told the payment was received and is being
    processed (bff/errors.py); a webhook keeps it among the refused events (bff/payments/webhooks.py)."""

    def __init__(self, application_id: str, payment_id: str, why: str) -> None:
        super().__init__(why)
        self.application_id, self.payment_id = application_id, payment_id


class IntentSync:
    def __init__(self, store: SqlPayments, repo: SqlApplications, clock: Callable[[], datetime] = utc_now,
                 audit: SqlAuditLog | None = None) -> None:
        self.store, self.repo, self.clock, self.audit = store, repo, clock, audit

    def apply_intent(self, payment_id: str, intent: Intent) -> Payment:
        """Bring the payment in line with Stripe's PaymentIntent (our answer from Stripe, or a refresh), by the rules
        of :meth:`apply`; an intent that does not fit the payment changes nothing and is logged and audited."""
        payment, outcome = self.apply(payment_id, intent)
        if outcome.startswith("refused"):
            self.refused(payment, outcome, {"source": "answer", **intent_facts(intent)})
        return payment

    def apply(self, payment_id: str, intent: Intent, source: dict[str, object] | None = None) -> tuple[Payment, str]:
        """Apply ``intent`` to the payment: ``(the payment now, the outcome)``, one of

        - ``applied``: the machine accepted the move; the intent, its 3-D Secure address and — on moving into
          ``succeeded`` or ``captured`` — what Stripe received are written with it, in one conditional UPDATE;
        - ``updated``: the same status, the current attempt's intent (first heard of) or its address recorded — never
          while the money is on the recorded intent (secured);
        - ``ignored: <status> stays``: an earlier attempt's intent, or a move the machine does not allow (a late event);
        - ``refused: <why>``: not the intent we asked Stripe for (another attempt's number, no attempt and not the
          recorded intent, another amount, currency or capture method), or a received amount that cannot be right.

        Nothing but ``applied`` changes the status or any amount (issue 14: a late ``processing`` had set ``captured``
        to 0 while the payment stayed ``succeeded``). :class:`NotBooked` when the move's journal entry cannot be posted:
        nothing changed, the failure audited with ``source`` (e.g. the webhook event)."""
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
            target = payment.status if untried(intent) else from_intent(intent.status, manual)
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
                try:
                    with self.repo.db.transaction():  # the move, its entries and what it unlocks, together
                        moved = self.store.move(payment.id, payment.status, target, **fields)
                        if moved is not None:
                            self._evidence(payment, target, intent)
                            self.check_ready(payment.application_id)
                except UnpostableEntry as exc:  # rolled back: nothing of the move is kept
                    raise self.unbooked(payment, exc, {**(source or {}), "to": target, **intent_facts(intent)}) from exc
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

    def refused(self, payment: Payment, outcome: str, details: dict[str, object]) -> str:
        """Keep a refusal where people look: the log, the audit log (``payment.stripe_refused``); a webhook's also in
        its stored outcome, which /payments lists for ops. Returns ``outcome``."""
        log.warning("payment %s: Stripe's %s %s", payment.id, details.get("type") or "answer", outcome)
        record_audit(self.audit, "payment.stripe_refused", None, payment.dealer_id, payment.id,
                     {"why": outcome.removeprefix("refused: "), **details}, outcome="failure", system="system:stripe")
        return outcome

    def unbooked(self, payment: Payment, exc: UnpostableEntry, details: dict[str, object]) -> NotBooked:
        """Keep a money event whose journal entry cannot be posted where ops look — the log and the audit log
        (``books.unpostable``, outcome ``failure``), in a transaction of its own after the event's rolled back — and
        return the :class:`NotBooked` to raise."""
        log.error("payment %s: not booked, nothing changed: %s", payment.id, exc)
        record_audit(self.audit, "books.unpostable", None, payment.dealer_id, payment.id,
                     {"why": str(exc), "application": payment.application_id, **details}, outcome="failure",
                     system="system:books")
        return NotBooked(payment.application_id, payment.id, str(exc))

    def check_ready(self, application_id: str) -> None:
        """Signed and every payment secured → ready for delivery (a deposit that replaced a lapsed hold, or the
        renewed hold, secures the lease on its own)."""
        if secured((p.kind, p.status) for p in self.store.for_application(application_id)):
            self.repo.transition(application_id, allowed_from=PAYING, to=DELIVERABLE, actor_kind="system",
                                 actor_id="payments", note="paid")

    def _evidence(self, payment: Payment, status: str, intent: Intent) -> None:
        kind = {"succeeded": "payment", "held": "payment", "captured": "capture", "released": "capture"}.get(status)
        if kind is None:
            return
        amount = intent.amount_received if status in ("succeeded", "captured") else payment.amount
        self.repo.outbox_add(payment.application_id, f"{kind}:{payment.id}:{status}:{payment.attempts}", kind, {
            "payment_id": payment.id, "kind": payment.kind, "status": status, "amount": yuan(amount),
            "currency": "CNY", "stripe_intent": intent.id}, self.clock())


def untried(intent: Intent) -> bool:
    """An intent waiting for its customer (made for the Payment Element, not confirmed yet): Stripe says
    ``requires_payment_method`` with no error, which says nothing about our payment (after a decline, an error)."""
    return intent.status == "requires_payment_method" and not intent.last_error


def intent_facts(intent: Intent) -> dict[str, object]:
    """What an intent says, for the audit log of a refusal."""
    return {"intent": intent.id, "status": intent.status, "amount": intent.amount, "currency": intent.currency[:8],
            "received": intent.amount_received, "capture_method": intent.capture_method,
            "attempt": intent.metadata.get("attempt", "")[:12]}
