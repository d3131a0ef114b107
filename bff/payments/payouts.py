"""The dealers' shares (分账), paid out through Stripe Connect.

Dealer split: the down payment belongs to the dealer, who sells the vehicle (the lessor pays it the financed amount
apart); fees, premiums and the first rent stay with the lessor. Once the upfront payment is captured, the down
payment is transferred to the dealer's Stripe Connect account (separate charges and transfers, ``transfer_group`` =
the application; key ``transfer:<payment>``). A dealer without a connected account keeps its share "due" until
lessor ops enter one on the Dealers page.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from datetime import timedelta

from bff.applications.services import Actor
from bff.applications.services import NotAllowed
from bff.payments.common import record_audit
from bff.payments.common import utc_now
from bff.payments.common import yuan
from books.entries import UnpostableEntry
from infra.applications import SqlApplications
from infra.audit import SqlAuditLog
from infra.payments import PaymentDeclined
from infra.payments import PaymentGateway
from infra.payments import PaymentRefused
from infra.payments import PaymentsUnavailable
from infra.payments_store import Payment
from infra.payments_store import SqlPayments

log = logging.getLogger(__name__)
#: a dealer share left ``sending`` this long was being sent by a process that died: it is sent again (same key)
TRANSFER_STALE_AFTER = timedelta(minutes=5)


class PayoutService:
    """``dealer_account``: a dealer's Stripe Connect account, None while it has none."""

    def __init__(self, store: SqlPayments, gateway: PaymentGateway, repo: SqlApplications,
                 dealer_account: Callable[[str], str | None] = lambda dealer_id: None,
                 clock: Callable[[], datetime] = utc_now, audit: SqlAuditLog | None = None,
                 stale_after: timedelta = TRANSFER_STALE_AFTER) -> None:
        self.store, self.gateway, self.repo = store, gateway, repo
        self.dealer_account, self.clock, self.audit, self.stale_after = dealer_account, clock, audit, stale_after

    def pay_out_dealers(self) -> int:
        """Transfer each captured down payment to its dealer's connected account (the worker's
        ``payments.pay_out_dealers`` job)."""
        done = 0
        # a transfer left ``sending`` longer than a call takes: its sender died (a worker killed mid-call); sent again
        # with the same Idempotency-Key, Stripe answers with the transfer it made, if it made one
        stale = self.clock() - self.stale_after
        for payment in self.store.transfers_due(stale_before=stale):
            account = self.dealer_account(payment.dealer_id)
            if not account or payment.refunded:  # no account yet, or money went back: ops decide
                continue
            if not self.store.claim_transfer(payment.id, stale_before=stale):  # another process is sending it
                continue
            if payment.transfer_id:  # Stripe made it; only its entry could not be posted: booked again, not sent again
                if self._book(payment, payment.transfer_id, payment.dealer_share):
                    done += 1
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
            if self._book(payment, transfer.id, transfer.amount):
                done += 1
        return done

    def _book(self, payment: Payment, transfer_id: str, amount: int) -> bool:
        """Record the share sent with its journal entry and its evidence entry, together. An entry that cannot be
        posted changes nothing (issue 19: never half-booked) and the sweep goes on with the other shares: the transfer
        is kept on the payment with the reason (``sending``, never ``failed``, whose retry would send the money a second
        time), in the log and — once per reason — in the audit log (``books.unpostable``); it is booked again, without
        asking Stripe, each time the claim goes stale (:data:`TRANSFER_STALE_AFTER`) until ops fix the cause."""
        try:
            with self.repo.db.transaction():
                self.store.transfer_sent(payment.id, transfer_id, amount)
                self.repo.outbox_add(payment.application_id, f"transfer:{payment.id}", "payment", {
                    "payment_id": payment.id, "kind": "dealer_share", "amount": yuan(amount),
                    "currency": "CNY", "stripe_transfer": transfer_id}, self.clock())
        except UnpostableEntry as exc:
            why = f"not booked: {exc}"[:255]
            log.error("transfer %s of %s sent but not booked: %s", transfer_id, payment.id, exc)
            if payment.transfer_error != why:
                record_audit(self.audit, "books.unpostable", None, payment.dealer_id, payment.id,
                             {"why": str(exc), "application": payment.application_id, "transfer": transfer_id,
                              "amount": amount}, outcome="failure", system="system:books")
            self.store.set_fields(payment.id, transfer_id=transfer_id, transfer_error=why)
            return False
        return True

    def retry_transfer(self, actor: Actor, payment_id: str, dealer_id: str | None = None) -> Payment:
        """Make a dealer's share (分账) that Stripe refused due again, as a new attempt (ops fixed the cause, e.g. the
        dealer's connected account on the Dealers page); the worker sends it. ``dealer_id``: the caller's tenant
        (None: every dealer)."""
        payment = self.store.get(payment_id)
        if payment is None or (dealer_id is not None and payment.dealer_id != dealer_id):
            raise NotAllowed("not_found", "没有这笔付款", "No such payment")
        with self.repo.db.transaction():  # due again and its audit entry together
            if not self.store.retry_transfer(payment.id):
                raise NotAllowed("not_failed", "这笔分账没有失败，无需重试", "This transfer has not failed")
            record_audit(self.audit, "payment.transfer_retry", actor, payment.dealer_id, payment.id,
                         {"attempt": payment.transfer_attempts + 1})
        # sent by the worker's payments.pay_out_dealers job within seconds, not in this request (which would wait on
        # Stripe for every due share)
        fresh = self.store.get(payment.id)
        assert fresh is not None
        return fresh


def transfer_key(payment: Payment) -> str:
    """The Idempotency-Key of a dealer-share transfer: ``transfer:<payment>``, and ``:<n>`` for ops' n-th retry
    after a refusal (a lost answer keeps its key: the same transfer, never a second one)."""
    return f"transfer:{payment.id}" + (f":{payment.transfer_attempts}" if payment.transfer_attempts else "")
