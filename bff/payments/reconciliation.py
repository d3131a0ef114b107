"""Our payments compared with Stripe's PaymentIntents (``leaseline payments reconcile``, and /payments on demand):
read only, it reports and changes nothing. The rents paid through Stripe are compared too
(bff/servicing/collect.py ``RentReconciliation``)."""

from __future__ import annotations

from typing import Any

from bff.payments.intents import untried
from bff.payments.machine import PAYABLE
from bff.payments.machine import from_intent
from bff.servicing.collect import RentReconciliation
from infra.collections import SqlCollections
from infra.payments import PaymentGateway
from infra.payments_store import SqlPayments


class Reconciliation:
    def __init__(self, store: SqlPayments, gateway: PaymentGateway) -> None:
        self.store, self.gateway = store, gateway

    def reconcile(self) -> list[dict[str, Any]]:
        """Every disagreement between Stripe's PaymentIntents and our payments (``leaseline payments reconcile``)."""
        ours = {p.id: p for p in self.store.all()}
        seen: set[str] = set()
        problems: list[dict[str, Any]] = []
        rents = RentReconciliation(SqlCollections(self.store.db))  # the rents paid through Stripe (issue 18 §3)
        for intent in self.gateway.list_intents():
            payment_id = intent.metadata.get("payment_id")
            if not payment_id:
                problems.extend(rents.check(intent))
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
            if untried(intent) and payment.status in PAYABLE:  # the Payment Element's, not confirmed yet
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
        return problems + rents.unseen()
