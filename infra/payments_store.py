"""The payments of signed leases, their refunds and the Stripe events seen (tables in migration 0008).

Every change is a conditional UPDATE (the status it expects in its WHERE), so two requests, two processes
or a request and a webhook never both move a payment: the one that matched wins, the other sees 0 rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError

from infra.db.engine import Database
from infra.db.models import PaymentRow
from infra.db.models import RefundRow
from infra.db.models import StripeEventRow
from infra.db.models import utcnow


@dataclass(frozen=True)
class Payment:
    id: str
    application_id: str
    dealer_id: str
    kind: str
    amount: int  # fen
    currency: str
    status: str
    intent_id: str | None
    attempts: int
    attempt_key: str | None
    captured: int  # fen
    refunded: int  # fen
    last_error: str | None
    next_action_url: str | None
    held_until: datetime | None
    dealer_share: int  # fen
    transfer_status: str | None
    transfer_id: str | None
    created_at: datetime
    updated_at: datetime

    @property
    def refundable(self) -> int:
        return self.captured - self.refunded


@dataclass(frozen=True)
class Refund:
    id: str
    payment_id: str
    amount: int  # fen
    reason: str
    status: str
    stripe_refund_id: str | None
    actor_id: str | None
    created_at: datetime


def _payment(r: PaymentRow) -> Payment:
    return Payment(r.id, r.application_id, r.dealer_id, r.kind, r.amount, r.currency, r.status, r.intent_id,
                   r.attempts, r.attempt_key, r.captured, r.refunded, r.last_error, r.next_action_url, r.held_until,
                   r.dealer_share, r.transfer_status, r.transfer_id, r.created_at, r.updated_at)


def _refund(r: RefundRow) -> Refund:
    return Refund(r.id, r.payment_id, r.amount, r.reason, r.status, r.stripe_refund_id, r.actor_id, r.created_at)


class SqlPayments:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- reading -------------------------------------------------------------------------------------------
    def get(self, payment_id: str) -> Payment | None:
        with self.db.session() as session:
            row = session.get(PaymentRow, payment_id)
            return _payment(row) if row is not None else None

    def for_application(self, application_id: str) -> list[Payment]:
        order = {"upfront": 0, "deposit": 1, "hold": 2}
        with self.db.session() as session:
            rows = session.scalars(select(PaymentRow).where(PaymentRow.application_id == application_id)).all()
            return sorted((_payment(r) for r in rows), key=lambda p: order.get(p.kind, 9))

    def by_intent(self, intent_id: str) -> Payment | None:
        with self.db.session() as session:
            row = session.scalar(select(PaymentRow).where(PaymentRow.intent_id == intent_id))
            return _payment(row) if row is not None else None

    def all(self) -> list[Payment]:
        with self.db.session() as session:
            return [_payment(r) for r in session.scalars(select(PaymentRow).order_by(PaymentRow.created_at))]

    def refunds(self, payment_id: str) -> list[Refund]:
        with self.db.session() as session:
            return [_refund(r) for r in session.scalars(
                select(RefundRow).where(RefundRow.payment_id == payment_id).order_by(RefundRow.created_at))]

    # -- writing -------------------------------------------------------------------------------------------
    def ensure(self, application_id: str, dealer_id: str, lines: Iterable[tuple[str, int, int]]) -> list[Payment]:
        """The application's payments ``(kind, amount, dealer's share)``, created once (a second call, or a
        concurrent one, adds nothing)."""
        now = utcnow()
        for kind, amount, share in lines:
            try:
                with self.db.session() as session:
                    session.add(PaymentRow(id=str(uuid.uuid4()), application_id=application_id, dealer_id=dealer_id,
                                           kind=kind, amount=amount, currency="CNY", status="pending", attempts=0,
                                           captured=0, refunded=0, dealer_share=share,
                                           transfer_status="due" if share else None, created_at=now,
                                           updated_at=now))
            except IntegrityError:  # (application_id, kind) exists already
                continue
        return self.for_application(application_id)

    def claim_attempt(self, payment_id: str, new_key: str) -> Payment | None:
        """Start an attempt: ``pending``/``failed``/``expired`` → ``processing``, once (a conditional UPDATE: of two
        taps or two processes, one wins). The attempt key survives an attempt whose answer was lost (the payment
        went back to ``pending`` keeping it): that key is sent again, so Stripe answers with the same
        PaymentIntent."""
        current = self.get(payment_id)
        if current is None or current.status not in ("pending", "failed", "expired"):
            return None
        fresh_attempt = current.status != "pending" or not current.attempt_key
        values: dict[str, object] = {"status": "processing", "last_error": None, "updated_at": utcnow()}
        if fresh_attempt:  # a new authorisation: a new key, and the earlier intent is no longer followed
            values.update(attempts=current.attempts + 1, attempt_key=new_key, held_until=None)
        with self.db.session() as session:
            moved = session.execute(update(PaymentRow).where(
                PaymentRow.id == payment_id, PaymentRow.status == current.status,
                PaymentRow.attempts == current.attempts).values(**values)).rowcount
        return self.get(payment_id) if moved else None

    def move(self, payment_id: str, expected: str, to: str, **values: object) -> Payment | None:
        """``expected`` → ``to`` (with ``values``), or None when the payment is not in ``expected`` any more."""
        with self.db.session() as session:
            moved = session.execute(update(PaymentRow).where(PaymentRow.id == payment_id,
                                                             PaymentRow.status == expected).values(
                status=to, updated_at=utcnow(), **values)).rowcount
            if not moved:
                return None
            row = session.get(PaymentRow, payment_id)
            assert row is not None
            return _payment(row)

    def set_fields(self, payment_id: str, **values: object) -> None:
        """Fields that are not the status (the intent id, amounts Stripe reports, the last error)."""
        with self.db.session() as session:
            session.execute(update(PaymentRow).where(PaymentRow.id == payment_id).values(updated_at=utcnow(),
                                                                                          **values))

    def add_refund(self, payment_id: str, amount: int, reason: str, actor_id: str | None) -> Refund | None:
        """Reserve ``amount`` for a refund: one statement checks and raises the refunded total, so two refunds at
        once can never exceed what was captured (localstripe would accept an over-refund; Stripe refuses it
        only after the fact). None when it would exceed."""
        refund_id = str(uuid.uuid4())
        with self.db.session() as session:
            moved = session.execute(update(PaymentRow).where(
                PaymentRow.id == payment_id, PaymentRow.refunded + amount <= PaymentRow.captured).values(
                refunded=PaymentRow.refunded + amount, updated_at=utcnow())).rowcount
            if not moved:
                return None
            row = RefundRow(id=refund_id, payment_id=payment_id, amount=amount, reason=reason[:255],
                            status="pending", actor_id=actor_id, created_at=utcnow())
            session.add(row)
            session.flush()
            return _refund(row)

    def lapsed_holds(self, now: datetime) -> list[Payment]:
        """Holds whose authorisation window has ended."""
        with self.db.session() as session:
            return [_payment(r) for r in session.scalars(select(PaymentRow).where(
                PaymentRow.status == "held", PaymentRow.held_until <= now))]

    def pending_refunds(self) -> list[Refund]:
        with self.db.session() as session:
            return [_refund(r) for r in session.scalars(select(RefundRow).where(RefundRow.status == "pending"))]

    def transfers_due(self) -> list[Payment]:
        """Captured upfront payments whose dealer share is not paid out yet."""
        with self.db.session() as session:
            return [_payment(r) for r in session.scalars(select(PaymentRow).where(
                PaymentRow.transfer_status == "due", PaymentRow.status == "succeeded"))]

    def claim_transfer(self, payment_id: str, expected: str = "due", to: str = "sending") -> bool:
        """Move the dealer-share transfer ``expected`` → ``to``, once (two resumers never both send it)."""
        with self.db.session() as session:
            return bool(session.execute(update(PaymentRow).where(
                PaymentRow.id == payment_id, PaymentRow.transfer_status == expected).values(
                transfer_status=to, updated_at=utcnow())).rowcount)

    def finish_refund(self, refund_id: str, stripe_refund_id: str | None, status: str) -> None:
        """Record Stripe's answer; a failed refund gives its reserved amount back."""
        with self.db.session() as session:
            row = session.get(RefundRow, refund_id, with_for_update=True)
            if row is None or row.status != "pending":
                return
            row.status, row.stripe_refund_id = status, stripe_refund_id
            if status == "failed":
                session.execute(update(PaymentRow).where(PaymentRow.id == row.payment_id).values(
                    refunded=PaymentRow.refunded - row.amount, updated_at=utcnow()))

    def record_event(self, event_id: str, event_type: str, intent_id: str | None, created: int,
                     outcome: str) -> bool:
        """Store a webhook event's id; False when it was seen before (a replay: do nothing)."""
        try:
            with self.db.session() as session:
                session.add(StripeEventRow(id=event_id[:255], type=event_type[:64], intent_id=intent_id,
                                           created=created, outcome=outcome[:64], received_at=utcnow()))
        except IntegrityError:
            return False
        return True

    def set_event_outcome(self, event_id: str, outcome: str) -> None:
        with self.db.session() as session:
            session.execute(update(StripeEventRow).where(StripeEventRow.id == event_id).values(outcome=outcome[:64]))
