"""Refunds of captured payments by lessor ops, and the sending again of those whose answer was lost: each
refund's amount is reserved first, its Idempotency-Key is ``refund:<refund>``, and it commits with its evidence
entry."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta

from bff.applications.services import Actor
from bff.applications.services import NotAllowed
from bff.payments.common import own_payment
from bff.payments.common import utc_now
from bff.payments.common import yuan
from infra.applications import Application
from infra.applications import SqlApplications
from infra.payments import PaymentDeclined
from infra.payments import PaymentGateway
from infra.payments import PaymentRefused
from infra.payments import PaymentsUnavailable
from infra.payments_store import Payment
from infra.payments_store import SqlPayments

log = logging.getLogger(__name__)
REFUND_RETRY_AFTER = timedelta(minutes=1)


class RefundService:
    def __init__(self, store: SqlPayments, gateway: PaymentGateway, repo: SqlApplications,
                 clock: Callable[[], datetime] = utc_now, retry_after: timedelta = REFUND_RETRY_AFTER) -> None:
        self.store, self.gateway, self.repo, self.clock, self.retry_after = store, gateway, repo, clock, retry_after

    def refund(self, actor: Actor, app: Application, payment_id: str, amount: int, reason: str) -> Payment:
        """Refund ``amount`` fen of a captured payment, with a reason; never more than is left to refund."""
        payment = own_payment(self.store, app, payment_id)
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
                "payment_id": payment.id, "kind": payment.kind, "amount": yuan(amount), "currency": "CNY",
                "stripe_refund": made.id}, self.clock())
        fresh = self.store.get(payment.id)
        assert fresh is not None
        return fresh

    def retry_refunds(self) -> int:
        """Finish the refunds whose answer was lost (Stripe unreachable, or the process that sent it died): the
        refund Stripe made for ours if there is one (its metadata names our refund id), else the refund sent again
        with its first key. Looking first keeps it one refund where the key would not: Stripe prunes idempotency
        keys after 24 hours (https://docs.stripe.com/api/idempotent_requests), and localstripe keeps none."""
        done = 0
        for refund in self.store.pending_refunds():
            if self.clock() - refund.created_at < self.retry_after:  # its own request may still be waiting
                continue
            payment = self.store.get(refund.payment_id)
            if payment is None or not payment.intent_id:
                continue
            try:
                made = next((r for r in self.gateway.list_refunds(payment_intent=payment.intent_id)
                             if r.metadata.get("refund_id") == refund.id), None)
                if made is None:
                    made = self.gateway.refund(payment.intent_id, amount=refund.amount,
                                               idempotency_key=f"refund:{refund.id}", reason="requested_by_customer",
                                               metadata={"refund_id": refund.id, "payment_id": payment.id})
                else:
                    log.info("refund %s was made at Stripe already (%s): recorded, not sent again", refund.id, made.id)
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
                        "payment_id": payment.id, "kind": payment.kind, "amount": yuan(refund.amount),
                        "currency": "CNY", "stripe_refund": made.id}, self.clock())
            done += 1
        return done
