"""Stripe's webhook events (verified by the view, bff/payments/views.py), each applied once: a PaymentIntent's event
through :class:`bff.payments.intents.IntentSync`, a refund made outside Leaseline raising what was refunded."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bff.payments.intents import IntentSync
from bff.payments.intents import NotBooked
from bff.payments.intents import intent_facts
from bff.payments.machine import CAPTURED
from bff.payments.machine import EVENT_STATUS
from books.entries import UnpostableEntry
from infra.payments import PaymentGateway
from infra.payments import PaymentRefused
from infra.payments import charge_refunded
from infra.payments import intent_from_object
from infra.payments import received_known
from infra.payments_store import Payment
from infra.payments_store import SqlPayments

#: what a PaymentIntent id looks like (``pi_`` and Stripe's characters; our columns hold 64): anything else in an
#: event is no intent of ours
INTENT_ID = re.compile(r"pi_[A-Za-z0-9_]{1,61}")


#: a handler of the PaymentIntent events that name no payment of ours here (the rents: bff/servicing/collect.py):
#: ``(type, object, intent id)`` → its outcome, or None when the event is not its either
OtherIntents = Callable[[str, dict[str, Any], str | None], str | None]


class WebhookService:
    def __init__(self, store: SqlPayments, gateway: PaymentGateway, intents: IntentSync) -> None:
        self.store, self.gateway, self.intents = store, gateway, intents
        self.others: list[OtherIntents] = []

    def handle_event(self, event: dict[str, Any]) -> str:
        """Apply one verified Stripe event, once; returns what it did (stored with the event id): ``applied``,
        ``updated``, ``ignored: …`` (a late or foreign event: nothing changed), ``refused: …`` (it names one of our
        payments but is not about it as we made it: nothing changed, logged, audited and listed for ops on
        /payments; ``refused: not booked: …`` when the money moved at Stripe but its journal entry cannot be posted:
        nothing changed either, answered 200, not retried), ``replay`` or ``malformed``. :class:`PaymentsUnavailable`
        when Stripe could not be asked about the event's intent: the event is forgotten, so that Stripe's retry of it
        is applied."""
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
        except NotBooked as exc:
            # the money moved at Stripe but its entry cannot be posted: nothing was changed and the audit log has it.
            # Kept among the refused events (/payments) and answered 200: Stripe's retries would fail alike until ops
            # fix the cause; then the customer's return (or a refresh) brings the payment in line
            outcome = f"refused: not booked: {exc}"
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
        fits the payment: :meth:`IntentSync.apply`). About an intent not recorded — our answer not stored yet, or the
        intent confirmed in the browser — that names a payment of ours, the object is not believed at all: Stripe is
        asked, and only an intent Stripe knows, made for that payment's current attempt, is applied, as Stripe
        describes it."""
        body = replace(intent_from_object(obj), id=intent_id or "", status=EVENT_STATUS[kind])
        payment = self.store.by_intent(intent_id) if intent_id else None
        if payment is not None:
            # localstripe's objects may not say what was received (an older shape): then Stripe says it
            intent = body if received_known(obj) else self.gateway.retrieve_intent(payment.intent_id or "")
        else:
            payment = self._named(obj)
            if payment is None:
                return next((o for o in (other(kind, obj, intent_id) for other in self.others) if o is not None),
                            "ignored: not ours")
            details = {"event": event_id, "type": kind, **intent_facts(body)}
            attempt = body.metadata.get("attempt")
            if attempt is not None and attempt.isdigit() and int(attempt) < payment.attempts:
                return f"ignored: {payment.status} stays"  # a late word about an attempt that is over: changes nothing
            if intent_id is None:
                return self.intents.refused(payment, "refused: no PaymentIntent id", details)
            try:
                intent = self.gateway.retrieve_intent(intent_id)
            except PaymentRefused:  # e.g. 404: Stripe has no such intent in our account
                return self.intents.refused(payment, "refused: unknown to Stripe", details)
            if intent.metadata.get("payment_id") != payment.id:
                return self.intents.refused(payment, "refused: Stripe's intent is not for this payment", details)
        payment, outcome = self.intents.apply(payment.id, intent, {"event": event_id, "type": kind})
        if outcome.startswith("refused"):
            self.intents.refused(payment, outcome, {"event": event_id, "type": kind, **intent_facts(body)})
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
        elif self._raise_refunded(payment, refunded, {"event": event_id, "type": kind, "intent": intent_id}):
            return "applied: refunded outside"
        else:
            return "ignored: refunds changed meanwhile"
        return self.intents.refused(payment, why, {"event": event_id, "type": kind, "intent": intent_id,
                                                   "refunded": refunded, "currency": currency[:8]})

    def _raise_refunded(self, payment: Payment, refunded: int, details: dict[str, object]) -> bool:
        try:
            return self.store.raise_refunded(payment.id, refunded)
        except UnpostableEntry as exc:  # rolled back: the refund is not raised either
            raise self.intents.unbooked(payment, exc, {**details, "refunded": refunded}) from exc
