"""Collecting rent (issue 18 §3) in the database and at the collectors.

- :class:`SqlCollections`: each attempt to collect (``collection_attempts``), each succeeded payment booked into a
  lease once by its key (``lease_receipts``, :meth:`SqlCollections.book`: allocated over the open instalments in the
  policy's order, each instalment's paid parts and state updated, one ``servicing_movements`` row per instalment
  touched — all in one transaction under the lease's row lock), the customers' mandates (``collection_mandates``).
- :class:`Collector`: the port automatic collection goes through, with two adapters — :class:`SandboxDirectDebit`, a
  clearly named sandbox of a bank's 协议支付 direct debit (代扣) whose answers are fixed by the agreement number's
  last digit (see its docstring), and :class:`StripeOffSession`, Stripe PaymentIntents confirmed off-session with
  the customer's saved card (https://docs.stripe.com/payments/save-and-reuse).

Money is integer fen. A payment's movement lowers what the instalment owes (negative principal, interest, late
charge), dated the business date it was booked on (infra/servicing.py).
"""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import Protocol

import stripe
from sqlalchemy import ColumnElement
from sqlalchemy import and_
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from books import lease as books_lease
from books.lease import Applied
from infra.books import post
from infra.db.engine import Database
from infra.db.models import CollectionAttemptRow
from infra.db.models import CollectionMandateRow
from infra.db.models import EndOfTermRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseReceiptRow
from infra.db.models import LeaseRow
from infra.db.models import LeaseTermRow
from infra.db.models import ServicingMovementRow
from infra.end_of_term import CHOSEN
from infra.end_of_term import PURCHASE_PRICE
from infra.end_of_term import deposit_applied
from infra.end_of_term import deposit_paid
from infra.forksafe import PerProcess
from infra.invoicing import rents_paid
from infra.jobs import Job
from infra.payments import PaymentDeclined
from infra.payments import PaymentGateway
from infra.payments import PaymentRefused
from infra.payments import PaymentsUnavailable
from infra.payments import intent_from_object
from infra.servicing import ACTIVE
from infra.servicing import DUE
from infra.servicing import OPEN
from infra.servicing import OVERDUE
from infra.servicing import PAID
from infra.servicing import PARTLY_PAID
from infra.servicing import PENDING
from infra.servicing import RENT
from infra.servicing import any_of
from infra.servicing import current_business_date
from infra.servicing import load_business_calendar
from infra.servicing import to_fen
from infra.servicing import yuan
from infra.vat_points import lease_structure
from infra.vat_points import paid_ahead
from servicing.allocation import Component
from servicing.allocation import Parts
from servicing.allocation import allocate

STRIPE, DIRECT_DEBIT = "stripe", "direct_debit"
CUSTOMER, AUTO = "customer", "auto"
CREATED, PROCESSING, REQUIRES_ACTION, SUCCEEDED, FAILED, CANCELED = (
    "created", "processing", "requires_action", "succeeded", "failed", "canceled")
#: an attempt's states after which nothing more happens to it
FINAL = (SUCCEEDED, FAILED, CANCELED)
NOT_FINAL = (CREATED, PROCESSING, REQUIRES_ACTION)
#: a customer's attempt still ``created`` (the pay page's form sent, the Payment Element not confirmed) or waiting for
#: their bank's check (3-D Secure) is in flight this long after its last change, then taken as abandoned — the page
#: left open, the phone put away — so that it does not hold automatic collections back for ever. An hour is far more
#: than paying takes (a 3-D Secure challenge expires in minutes); one still confirmed after it pays, and a debit made
#: meanwhile is then refunded as a surplus (SqlCollections.book). One processing at the bank is in flight however long.
CUSTOMER_IN_FLIGHT = timedelta(hours=1)
SURPLUS, LEASE_CLOSED = "surplus", "lease_closed"
#: the mandate texts (bff/servicing/mandates.py MANDATE_VERSION) that authorise collecting rents and late charges only:
#: the purchase price is never debited under them — the customer pays it on the phone
RENTS_ONLY_MANDATES = ("2026.12-1",)
#: what an attempt pays (``collection_attempts.purpose``)
RENT_PAYMENT, SETTLEMENT, PREPAYMENT = "rent", "settlement", "prepayment"
#: the most days a due date is moved to the next business day (China's longest holidays with their weekends: 9)
MOVED_AT_MOST = 21
CARD, ACTIVE_MANDATE, REVOKED = "card", "active", "revoked"


# -- values -----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Attempt:
    id: str
    lease_id: str
    instalment_id: int | None
    mandate_id: str | None
    channel: str
    trigger: str
    amount: int
    status: str
    key: str
    provider_ref: str | None
    business_date: date
    failure_code: str | None
    failure_message: str | None
    polls: int
    poll_after: datetime | None
    notified_at: datetime | None
    created_at: datetime
    #: what it pays: rent | settlement | prepayment (``subject_id``: the settlement quote, the prepayment)
    purpose: str = "rent"
    subject_id: str | None = None


@dataclass(frozen=True)
class Receipt:
    """A payment booked into a lease (``replay``: booked before, by an earlier call with the same key)."""

    id: str
    key: str
    lease_id: str
    attempt_id: str | None
    source: str
    reference: str | None
    amount: int
    applied: int
    surplus: int
    value_date: date
    refund_reason: str | None
    refund_status: str | None
    refund_ref: str | None
    booked_at: datetime
    replay: bool = False


@dataclass(frozen=True)
class Mandate:
    id: str
    application_id: str
    kind: str  # card | direct_debit
    status: str
    auto_collect: bool
    customer_ref: str | None
    payment_method: str | None
    agreement_no: str | None
    bank: str | None
    account_last4: str | None
    text_version: str
    text_sha256: str
    language: str
    accepted_at: datetime | None


@dataclass(frozen=True)
class Owed:
    """What an instalment still owes, by part, in fen."""

    instalment_id: int
    number: int
    kind: str
    due_on: date
    state: str
    penalty: int
    interest: int
    principal: int

    @property
    def total(self) -> int:
        return self.penalty + self.interest + self.principal


def _attempt(r: CollectionAttemptRow) -> Attempt:
    return Attempt(r.id, r.lease_id, r.instalment_id, r.mandate_id, r.channel, r.trigger, r.amount, r.status, r.key,
                   r.provider_ref, r.business_date, r.failure_code, r.failure_message, r.polls, r.poll_after,
                   r.notified_at, r.created_at, r.purpose, r.subject_id)


def _receipt(r: LeaseReceiptRow, replay: bool = False) -> Receipt:
    return Receipt(r.id, r.key, r.lease_id, r.attempt_id, r.source, r.reference, r.amount, r.applied, r.surplus,
                   r.value_date, r.refund_reason, r.refund_status, r.refund_ref, r.booked_at, replay)


def _mandate(r: CollectionMandateRow) -> Mandate:
    return Mandate(r.id, r.application_id, r.kind, r.status, r.auto_collect, r.customer_ref, r.payment_method,
                   r.agreement_no, r.bank, r.account_last4, r.text_version, r.text_sha256, r.language, r.accepted_at)


def owed_of(row: InstalmentRow) -> Owed:
    """What ``row`` still owes: its late charge accrued less what was paid of it, its interest and principal less what
    was paid of them (never below zero)."""
    return Owed(row.id, row.number, row.kind, row.due_on, row.state, max(0, row.penalty_accrued - row.paid_penalty),
                max(0, row.interest - row.paid_interest), max(0, row.principal - row.paid_principal))


def in_flight(now: datetime) -> ColumnElement[bool]:
    """An attempt that may still take money: processing (the bank answers later: however long), or ``created`` or
    waiting for the customer's bank (3-D Secure) — an automatic one until its job or the customer ends it, one the
    customer began only within :data:`CUSTOMER_IN_FLIGHT` of its last change."""
    return and_(CollectionAttemptRow.status.in_(NOT_FINAL),
                or_(CollectionAttemptRow.trigger != CUSTOMER, CollectionAttemptRow.status == PROCESSING,
                    CollectionAttemptRow.updated_at >= now - CUSTOMER_IN_FLIGHT))


class SqlCollections:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- what a lease owes -------------------------------------------------------------------------------------------
    def lease(self, lease_id: str) -> LeaseRow | None:
        with self.db.session() as session:
            return session.get(LeaseRow, lease_id)

    def owed(self, lease_id: str, instalment_id: int | None = None) -> list[Owed]:
        """What is due now (every instalment due, partly paid or overdue, and those due on the business date — the
        close marks them due only once their day has ended —, oldest first, with its late charge), or what the
        instalment ``instalment_id`` of the lease still owes (a rent not yet due may be paid ahead)."""
        with self.db.session() as session:
            day = current_business_date(session)
            return [owed_of(r) for r in session.scalars(_open(lease_id, instalment_id, day))]

    def instalments(self, lease_id: str) -> list[Owed]:
        with self.db.session() as session:
            return [owed_of(r) for r in session.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)
                                                        .order_by(InstalmentRow.number))]

    # -- booking a payment once ------------------------------------------------------------------------------------
    def book(self, *, lease_id: str, amount: int, source: str, key: str, order: Sequence[Component],
             reference: str | None = None, attempt_id: str | None = None, instalment_id: int | None = None,
             now: datetime) -> Receipt:
        """Book the succeeded payment ``key`` (``amount`` fen from ``source``) into the lease, once: allocated with
        :func:`servicing.allocation.allocate` in ``order`` over what is due now, oldest first (or over the one
        instalment the customer chose to pay), each instalment's paid parts and state updated and one movement per
        instalment touched (key ``payment:<key>:<instalment>``), the receipt and the attempt's success — one
        transaction under the lease's row lock, so that two payments of one lease are allocated one after the other
        and the same key a second time (a webhook replayed, a double tap, two workers) finds its receipt and books
        nothing (``replay``). What no instalment needs (``surplus``), and all of a payment for a lease no longer active,
        is marked to refund (``refund_status`` pending). Raises LookupError for an unknown lease."""
        if amount <= 0:
            raise ValueError("a payment books more than 0 fen")
        with self.db.transaction() as session:
            lease = session.execute(select(LeaseRow).where(LeaseRow.id == lease_id).with_for_update()
                                    ).scalar_one_or_none()
            if lease is None:
                raise LookupError(lease_id)
            done = session.scalars(select(LeaseReceiptRow).where(LeaseReceiptRow.key == key)).one_or_none()
            if done is not None:
                return _receipt(done, replay=True)
            day = current_business_date(session)
            applied, held, reason, parts = 0, 0, None, []
            attempt_row = session.get(CollectionAttemptRow, attempt_id) if attempt_id is not None else None
            purpose = attempt_row.purpose if attempt_row is not None else RENT_PAYMENT
            if lease.status != ACTIVE:
                reason = LEASE_CLOSED
            elif purpose != RENT_PAYMENT:
                assert attempt_row is not None
                applied = held = _book_special(session, lease, attempt_row, amount, day, now, reference)
                if amount > applied:
                    reason = SURPLUS
            else:
                rows = list(session.scalars(_open(lease_id, instalment_id, day).with_for_update()))
                owed = {r.number: owed_of(r) for r in rows}
                split = allocate(yuan(amount), [Parts(o.number, yuan(o.penalty), yuan(o.interest),
                                                       yuan(o.principal)) for o in owed.values()], order)
                for row, part in zip(rows, split.splits, strict=True):
                    penalty, interest, principal = to_fen(part.penalty), to_fen(part.interest), to_fen(part.principal)
                    if not penalty + interest + principal:
                        continue
                    _pay(row, penalty, interest, principal, day, now)
                    session.add(ServicingMovementRow(
                        lease_id=lease_id, instalment_id=row.id, kind="payment", value_date=day, principal=-principal,
                        interest=-interest, penalty=-penalty, key=f"payment:{key}:{row.id}"[:160],
                        reference=(reference or "")[:64] or None, booked_at=now,
                        note=f"还款 payment ({source}) {penalty + interest + principal} fen"))
                    applied += penalty + interest + principal
                    parts.append(Applied(row.kind, principal, interest, penalty))
                if amount > applied:
                    reason = SURPLUS
            booked = session.execute(insert(LeaseReceiptRow).values(
                id=str(uuid.uuid4()), key=key, lease_id=lease_id, attempt_id=attempt_id, source=source,
                reference=reference, amount=amount, applied=applied, surplus=amount - applied, value_date=day,
                refund_reason=reason, refund_status="pending" if reason else None, booked_at=now,
            ).on_conflict_do_nothing(index_elements=["key"]).returning(LeaseReceiptRow.id)).scalar_one_or_none()
            if booked is None:  # cannot happen under the lease's lock; the unique key still guards it
                raise RuntimeError(f"payment {key} booked concurrently")
            received = books_lease.receipt(booked, lease_id, lease.dealer_id, source=source, value_date=day,
                                           amount=amount, applied=parts, held=held, surplus=amount - applied,
                                           structure=lease_structure(lease.terms))
            # a rent received in full before the close passed its due date: its tax point is today (infra/vat_points.py)
            ahead = paid_ahead(lease_id, lease.dealer_id, lease.closed_through, lease.terms, day, [
                (r.id, r.kind, r.due_on, r.amount, r.interest) for r in rows if r.state == PAID]) if parts else []
            post(session, [received, *ahead], now)
            if parts:  # the rents this payment paid in full: their e-invoices asked for (infra/invoicing.py)
                rents_paid(session, lease, [r for r in rows if r.state == PAID], received_on=day, now=now,
                           receipt_id=booked)
            if attempt_id is not None:
                session.execute(update(CollectionAttemptRow).where(CollectionAttemptRow.id == attempt_id).values(
                    status=SUCCEEDED, failure_code=None, failure_message=None, poll_after=None, updated_at=now))
            session.flush()
            row = session.get(LeaseReceiptRow, booked)
            assert row is not None
            return _receipt(row)

    def receipt(self, key: str) -> Receipt | None:
        with self.db.session() as session:
            row = session.scalars(select(LeaseReceiptRow).where(LeaseReceiptRow.key == key)).one_or_none()
            return _receipt(row) if row is not None else None

    def paid_by(self, attempt_id: str) -> tuple[Receipt, list[tuple[int, str, int]]] | None:
        """The receipt of the payment attempt ``attempt_id`` once booked, and what it paid of each instalment (its
        number, its kind, fen: the payment's movements, :meth:`book`), by number; None before it is booked."""
        with self.db.session() as session:
            row = session.scalars(select(LeaseReceiptRow).where(LeaseReceiptRow.attempt_id == attempt_id)
                                  .order_by(LeaseReceiptRow.booked_at)).first()
            if row is None:
                return None
            m = ServicingMovementRow
            paid = session.execute(
                select(InstalmentRow.number, InstalmentRow.kind, -func.sum(m.principal + m.interest + m.penalty))
                .join(InstalmentRow, InstalmentRow.id == m.instalment_id)
                .where(m.lease_id == row.lease_id, m.kind == "payment",
                       m.key.startswith(f"payment:{row.key}:", autoescape=True))
                .group_by(InstalmentRow.number, InstalmentRow.kind).order_by(InstalmentRow.number)).all()
            return _receipt(row), [(int(n), str(k), int(a)) for n, k, a in paid]

    def receipts_of(self, reference: str) -> list[Receipt]:
        """The receipts of one provider's payment (a PaymentIntent, a bank's order)."""
        with self.db.session() as session:
            return [_receipt(r) for r in session.scalars(select(LeaseReceiptRow).where(
                LeaseReceiptRow.reference == reference))]

    def charged(self, channel: str) -> list[Attempt]:
        """The attempts of ``channel`` that succeeded at the provider (reconciliation: each must be there)."""
        with self.db.session() as session:
            return [_attempt(r) for r in session.scalars(select(CollectionAttemptRow).where(
                CollectionAttemptRow.channel == channel, CollectionAttemptRow.status == SUCCEEDED,
                CollectionAttemptRow.provider_ref.is_not(None)))]

    def pending_refunds(self, limit: int = 50) -> list[Receipt]:
        with self.db.session() as session:
            return [_receipt(r) for r in session.scalars(select(LeaseReceiptRow).where(
                LeaseReceiptRow.refund_status == "pending").order_by(LeaseReceiptRow.booked_at).limit(limit))]

    def finish_refund(self, receipt_id: str, status: str, ref: str | None, now: datetime) -> bool:
        """Record a refund's answer, once (False when it was recorded already); a refund that succeeded posts its
        entry in the same transaction (books/lease.py ``surplus_refunded``, key ``receipt:<id>:refund``), dated the
        business date."""
        with self.db.session() as session:
            done = session.execute(update(LeaseReceiptRow).where(
                LeaseReceiptRow.id == receipt_id, LeaseReceiptRow.refund_status == "pending").values(
                refund_status=status, refund_ref=(ref or "")[:64] or None, refunded_at=now)
                .returning(LeaseReceiptRow.lease_id, LeaseReceiptRow.source, LeaseReceiptRow.surplus)).one_or_none()
            if done is None:
                return False
            if status == SUCCEEDED:
                lease_id, source, surplus = done
                dealer_id = session.execute(select(LeaseRow.dealer_id).where(LeaseRow.id == lease_id)).scalar_one()
                refunded = books_lease.surplus_refunded(receipt_id, lease_id, dealer_id, source=source,
                                                        value_date=current_business_date(session), surplus=surplus)
                post(session, [refunded], now)
            return True

    # -- attempts ----------------------------------------------------------------------------------------------------
    def start_attempt(self, *, lease_id: str, amount: int, channel: str, trigger: str, key: str, business_date: date,
                      now: datetime, instalment_id: int | None = None, mandate_id: str | None = None,
                      purpose: str = RENT_PAYMENT, subject_id: str | None = None,
                      session: Session | None = None) -> tuple[Attempt, bool]:
        """The attempt ``key`` (our Idempotency-Key), created when new: ``(attempt, created)``. The same key again (a
        double tap, a retried job) returns the first attempt and creates nothing. ``purpose``: what it pays (rent, or
        a settlement quote or a prepayment: ``subject_id``)."""
        values = dict(id=str(uuid.uuid4()), lease_id=lease_id, instalment_id=instalment_id, mandate_id=mandate_id,
                      channel=channel, trigger=trigger, amount=amount, currency="CNY", status=CREATED, key=key,
                      business_date=business_date, polls=0, created_at=now, updated_at=now, purpose=purpose,
                      subject_id=subject_id)

        def run(s: Session) -> tuple[Attempt, bool]:
            made = s.execute(insert(CollectionAttemptRow).values(**values).on_conflict_do_nothing(
                index_elements=["key"]).returning(CollectionAttemptRow.id)).scalar_one_or_none()
            row = s.scalars(select(CollectionAttemptRow).where(CollectionAttemptRow.key == key)).one()
            return _attempt(row), made is not None

        if session is not None:
            return run(session)
        with self.db.session() as s:
            return run(s)

    def attempt(self, attempt_id: str) -> Attempt | None:
        with self.db.session() as session:
            row = session.get(CollectionAttemptRow, attempt_id)
            return _attempt(row) if row is not None else None

    def attempt_by_key(self, key: str) -> Attempt | None:
        with self.db.session() as session:
            row = session.scalars(select(CollectionAttemptRow).where(CollectionAttemptRow.key == key)).one_or_none()
            return _attempt(row) if row is not None else None

    def attempts(self, lease_id: str) -> list[Attempt]:
        with self.db.session() as session:
            return [_attempt(r) for r in session.scalars(select(CollectionAttemptRow).where(
                CollectionAttemptRow.lease_id == lease_id).order_by(CollectionAttemptRow.created_at))]

    def move(self, attempt_id: str, allowed_from: Sequence[str], to: str, now: datetime, *, job: Job | None = None,
             **values: Any) -> Attempt | None:
        """Move the attempt to ``to`` (with ``values``) if it is in one of ``allowed_from``, and defer ``job`` with the
        move (same transaction); None otherwise (another process moved it first: no job)."""
        with self.db.session() as session:
            moved = session.execute(update(CollectionAttemptRow).where(
                CollectionAttemptRow.id == attempt_id, CollectionAttemptRow.status.in_(list(allowed_from))).values(
                status=to, updated_at=now, **values).returning(CollectionAttemptRow.id)).scalar_one_or_none()
            if moved is None:
                return None
            if job is not None:
                job.defer(session)
            row = session.get(CollectionAttemptRow, attempt_id)
            assert row is not None
            session.refresh(row)
            return _attempt(row)

    def another_in_flight(self, attempt: Attempt, now: datetime) -> Attempt | None:
        """Another attempt of ``attempt``'s lease, :func:`in_flight` at ``now``, that may pay what ``attempt``
        collects: one for the same instalment, or for no one instalment (everything due now, a settlement, a
        prepayment); one for another instalment is booked to it alone. Another automatic one still ``created`` has not
        reached the bank and makes this same check when its job runs (counted, two of them would cancel each other).
        None when there is none."""
        with self.db.session() as session:
            row = session.scalars(select(CollectionAttemptRow).where(
                CollectionAttemptRow.lease_id == attempt.lease_id, CollectionAttemptRow.id != attempt.id,
                in_flight(now), or_(CollectionAttemptRow.instalment_id.is_(None),
                                    CollectionAttemptRow.instalment_id == attempt.instalment_id),
                or_(CollectionAttemptRow.trigger != AUTO, CollectionAttemptRow.status != CREATED))
                .order_by(CollectionAttemptRow.created_at).limit(1)).one_or_none()
            return _attempt(row) if row is not None else None

    def to_poll(self, now: datetime, limit: int = 50) -> list[Attempt]:
        """Attempts whose result the collector gave as delayed, due for another look."""
        with self.db.session() as session:
            return [_attempt(r) for r in session.scalars(select(CollectionAttemptRow).where(
                CollectionAttemptRow.status == PROCESSING, CollectionAttemptRow.poll_after <= now)
                .order_by(CollectionAttemptRow.poll_after).limit(limit))]

    def claim_notice(self, attempt_id: str, now: datetime) -> bool:
        """Whether this caller is the one to text the customer about the attempt (once per attempt)."""
        with self.db.session() as session:
            return session.execute(update(CollectionAttemptRow).where(
                CollectionAttemptRow.id == attempt_id, CollectionAttemptRow.notified_at.is_(None)).values(
                notified_at=now).returning(CollectionAttemptRow.id)).scalar_one_or_none() is not None

    def release_notice(self, attempt_id: str) -> None:
        """The text could not be sent: the next try of the job sends it."""
        with self.db.session() as session:
            session.execute(update(CollectionAttemptRow).where(CollectionAttemptRow.id == attempt_id).values(
                notified_at=None))

    # -- mandates ----------------------------------------------------------------------------------------------------
    def mandate(self, mandate_id: str) -> Mandate | None:
        with self.db.session() as session:
            row = session.get(CollectionMandateRow, mandate_id)
            return _mandate(row) if row is not None else None

    def active_mandate(self, application_id: str) -> Mandate | None:
        """The application's mandate in force (the newest active one), or None."""
        with self.db.session() as session:
            row = session.scalars(select(CollectionMandateRow).where(
                CollectionMandateRow.application_id == application_id, CollectionMandateRow.status == ACTIVE_MANDATE)
                .order_by(CollectionMandateRow.created_at.desc()).limit(1)).one_or_none()
            return _mandate(row) if row is not None else None

    def add_mandate(self, *, application_id: str, kind: str, text_version: str, text_sha256: str, language: str,
                    now: datetime, customer_ref: str | None = None, payment_method: str | None = None,
                    setup_intent: str | None = None, agreement_no: str | None = None, bank: str | None = None,
                    account_last4: str | None = None, auto_collect: bool = True) -> Mandate:
        """Record an accepted mandate, in force at once; the application's earlier ones are revoked (one in force)."""
        with self.db.session() as session:
            session.execute(update(CollectionMandateRow).where(
                CollectionMandateRow.application_id == application_id,
                CollectionMandateRow.status == ACTIVE_MANDATE).values(status=REVOKED, revoked_at=now, updated_at=now))
            row = CollectionMandateRow(
                id=str(uuid.uuid4()), application_id=application_id, kind=kind, status=ACTIVE_MANDATE,
                auto_collect=auto_collect, customer_ref=customer_ref, payment_method=payment_method,
                setup_intent=setup_intent, agreement_no=agreement_no, bank=bank, account_last4=account_last4,
                text_version=text_version, text_sha256=text_sha256, language=language, accepted_at=now,
                created_at=now, updated_at=now)
            session.add(row)
            session.flush()
            return _mandate(row)

    def set_auto_collect(self, mandate_id: str, on: bool, now: datetime) -> bool:
        with self.db.session() as session:
            return session.execute(update(CollectionMandateRow).where(
                CollectionMandateRow.id == mandate_id, CollectionMandateRow.status == ACTIVE_MANDATE).values(
                auto_collect=on, updated_at=now).returning(CollectionMandateRow.id)).scalar_one_or_none() is not None

    def revoke_mandate(self, mandate_id: str, now: datetime) -> bool:
        """Revoke the mandate if it is in force; whether this call revoked it."""
        with self.db.session() as session:
            return session.execute(update(CollectionMandateRow).where(
                CollectionMandateRow.id == mandate_id, CollectionMandateRow.status == ACTIVE_MANDATE).values(
                status=REVOKED, revoked_at=now, updated_at=now).returning(CollectionMandateRow.id)
            ).scalar_one_or_none() is not None

    # -- the close of business's automatic collections -----------------------------------------------------------
    def plan_collections(self, session: Session, lease_ids: Sequence[str], business_date: date,
                         now: datetime, retry_days: Sequence[int] = ()) -> list[Attempt]:
        """In the close's batch transaction (``session``) of ``business_date`` (B): one automatic attempt for each rent
        of ``lease_ids`` whose collection day is B + 1 — the day after the date closed, which the close of B reaches
        just after midnight —, so that it is debited on that day, as the mandate says: its due date, moved to the next
        business day when it is not one (China's calendar, with the days ops loaded). Rents, and the purchase price
        of a lessee who keeps the car (infra/end_of_term.py: collected like a rent, on the term's last day) less what
        the deposit will pay of it — the close of that day applies the deposit to the purchase price first (the
        contract's 第五条), so the debit is what the deposit leaves, and none when it covers it; never the final rent
        (the balloon: the customer chooses at the end of the term how it is paid) nor a returned car's charges (paid
        on the pay page); only what still owes something, on a lease whose application has a mandate in force with
        automatic collection on. Key ``auto:<instalment>:<collection day>``: a close of the same date run again
        returns the attempts it made, and makes none twice.

        A collection that did not succeed is tried again on each of ``retry_days`` business days after the collection
        day (the policy's ``[collections] retry_after_business_days``), on what the rent still owes then — its late
        charge with it once it is overdue —, unless it was paid meanwhile, the mandate is no longer in force (an
        agreement revoked at the bank revokes it) or another payment that may pay it is :func:`in_flight`: an attempt
        for that rent, or for no one instalment (the customer's 'everything due now', a settlement, a prepayment) —
        the retry would debit it twice, or change the arrears under a settlement being paid.

        Set-based (the close of 100,000 leases has a minute): one read of the rents to collect, one of the payments in
        flight (when a retry is due), one INSERT … ON CONFLICT DO NOTHING of the batch's attempts, the collection day
        reckoned once per due date."""
        if not lease_ids:
            return []
        day = business_date + timedelta(days=1)
        # a retry is at most max(retry_days) business days after the collection day: 3 calendar days a business day
        reach = MOVED_AT_MOST + 3 * max(retry_days, default=0)
        rows = session.execute(
            select(InstalmentRow.id, InstalmentRow.lease_id, InstalmentRow.kind, InstalmentRow.due_on,
                   InstalmentRow.penalty_accrued - InstalmentRow.paid_penalty,
                   InstalmentRow.interest - InstalmentRow.paid_interest,
                   InstalmentRow.principal - InstalmentRow.paid_principal,
                   CollectionMandateRow.id, CollectionMandateRow.kind)
            .join(LeaseRow, LeaseRow.id == InstalmentRow.lease_id)
            .join(CollectionMandateRow, CollectionMandateRow.application_id == LeaseRow.application_id)
            .where(InstalmentRow.lease_id == any_of(list(lease_ids)), InstalmentRow.kind.in_((RENT, PURCHASE_PRICE)),
                   # the purchase price only under a mandate whose words name it
                   or_(InstalmentRow.kind == RENT, CollectionMandateRow.text_version.not_in(RENTS_ONLY_MANDATES)),
                   InstalmentRow.state.in_((PENDING, DUE, PARTLY_PAID, *((OVERDUE,) if retry_days else ()))),
                   InstalmentRow.due_on > day - timedelta(days=reach), InstalmentRow.due_on <= day,
                   LeaseRow.status == ACTIVE, CollectionMandateRow.status == ACTIVE_MANDATE,
                   CollectionMandateRow.auto_collect.is_(True))
            .order_by(InstalmentRow.id, CollectionMandateRow.created_at)).all()
        if not rows:
            return []
        calendar = load_business_calendar(session)
        newest = {r[0]: r for r in rows}  # by instalment: the newest mandate in force (by its creation)
        when: dict[date, tuple[date, frozenset[date]]] = {}  # due date → (collection day, retry days)
        wanted: list[tuple[Any, bool]] = []
        for row in newest.values():
            due_on = row[3]
            if due_on not in when:
                first = calendar.on_or_after(due_on)
                when[due_on] = first, frozenset(calendar.add_business_days(first, n) for n in retry_days)
            first, retries = when[due_on]
            if max(0, row[4]) + max(0, row[5]) + max(0, row[6]) <= 0:
                continue
            if first == day or day in retries:
                wanted.append((row, first != day))
        retried = {row[1] for row, retry in wanted if retry}
        busy: set[tuple[str, int | None]] = set()
        if retried:
            busy = {(a, i) for a, i in session.execute(select(
                CollectionAttemptRow.lease_id, CollectionAttemptRow.instalment_id).where(
                CollectionAttemptRow.lease_id.in_(list(retried)), in_flight(now)))}
        deposit = _deposit_left(session, [row[1] for row, _ in wanted if row[2] == PURCHASE_PRICE])
        values: list[dict[str, Any]] = []
        for row, retry in wanted:
            inst_id, lease_id, kind = row[0], row[1], row[2]
            if retry and ((lease_id, inst_id) in busy or (lease_id, None) in busy):
                continue
            amount = max(0, row[4]) + max(0, row[5]) + max(0, row[6])
            if kind == PURCHASE_PRICE:
                amount -= min(amount, deposit.get(lease_id, 0))
                if amount <= 0:
                    continue
            values.append(dict(
                id=str(uuid.uuid4()), lease_id=lease_id, instalment_id=inst_id, mandate_id=row[7],
                channel=DIRECT_DEBIT if row[8] == DIRECT_DEBIT else STRIPE, trigger=AUTO, amount=amount,
                currency="CNY", status=CREATED, key=f"auto:{inst_id}:{day.isoformat()}", business_date=business_date,
                polls=0, created_at=now, updated_at=now, purpose=RENT_PAYMENT, subject_id=None))
        made: list[Attempt] = []
        for i in range(0, len(values), _INSERT_CHUNK):
            made += [_attempt(r) for r in session.scalars(
                insert(CollectionAttemptRow).values(values[i:i + _INSERT_CHUNK])
                .on_conflict_do_nothing(index_elements=["key"]).returning(CollectionAttemptRow))]
        if len(made) < len(values):  # the same date closed again: the attempts it made before, as they are
            keys = {v["key"] for v in values} - {a.key for a in made}
            made += [_attempt(r) for r in session.scalars(select(CollectionAttemptRow).where(
                CollectionAttemptRow.key.in_(sorted(keys))))]
        return made

    def business_date(self) -> date:
        with self.db.session() as session:
            return current_business_date(session)


def _book_special(session: Session, lease: LeaseRow, attempt: CollectionAttemptRow, amount: int, day: date,
                  now: datetime, reference: str | None) -> int:
    """Book a payment that is not rent — a settlement quote paid, a partial prepayment — in
    :meth:`SqlCollections.book`'s transaction, under the lease's lock: what it applied (fen); the rest is refunded
    as a surplus."""
    if attempt.purpose == SETTLEMENT:
        from infra.settlements import book_settlement

        return book_settlement(session, lease, attempt, amount, day, now, reference)
    if attempt.purpose == PREPAYMENT:
        from infra.prepayments import book_prepayment

        return book_prepayment(session, lease, attempt, amount, day, now, reference)
    raise ValueError(f"a payment for {attempt.purpose!r}")


#: attempts made by one INSERT (16 parameters each: far below PostgreSQL's 65,535)
_INSERT_CHUNK = 1_000


def _deposit_left(session: Session, lease_ids: Sequence[str]) -> dict[str, int]:
    """What the close of the term's last day will apply of each lease's deposit to its purchase price first
    (infra/end_of_term.py ``end_of_term_hook``, for a purchase chosen whose deposit is not yet applied), by lease: what
    the deposit holds for the lease's end — nothing once its application's term is closed (by ops, by a settlement)
    or when none is recorded, else the deposit the contract states, at most what the deposit payment still holds
    (captured less refunded), as infra/end_of_term.py ``_deposit_held`` reckons it (the same ``deposit_paid`` and
    ``deposit_applied``) — less what was applied of it before (its ``deposit_offset`` movements, negative). Erring
    low only makes the debit larger: what the deposit then does not need is refunded when the lease ends."""
    if not lease_ids:
        return {}
    return {lease_id: max(0, int(left)) for lease_id, left in session.execute(
        select(LeaseRow.id, func.least(LeaseRow.deposit, deposit_paid(LeaseRow.application_id))
               + deposit_applied(LeaseRow.id))
        .join(EndOfTermRow, EndOfTermRow.lease_id == LeaseRow.id)
        .join(LeaseTermRow, LeaseTermRow.application_id == LeaseRow.application_id)
        .where(LeaseRow.id.in_(sorted(set(lease_ids))), EndOfTermRow.option == "purchase",
               EndOfTermRow.status == CHOSEN, EndOfTermRow.deposit_deduction == 0,
               LeaseTermRow.settlement.is_(None)))}


def _open(lease_id: str, instalment_id: int | None, day: date) -> Any:
    """The lease's instalments due now on the business date ``day`` (open, or due on ``day``: the close marks them
    due once the day has ended), or its instalment ``instalment_id`` if anything may be paid of it."""
    stmt = select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)
    if instalment_id is not None:
        stmt = stmt.where(InstalmentRow.id == instalment_id, InstalmentRow.state.in_((*OPEN, PENDING)))
    else:
        stmt = stmt.where(or_(InstalmentRow.state.in_(OPEN),
                              and_(InstalmentRow.state == PENDING, InstalmentRow.due_on <= day)))
    return stmt.order_by(InstalmentRow.number)


def _pay(row: InstalmentRow, penalty: int, interest: int, principal: int, day: date, now: datetime) -> None:
    """An instalment's parts paid: ``paid`` when nothing is left of it, else partly paid (a rent not yet due stays
    pending — the close marks it partly paid when it falls due —, an overdue one stays overdue: its late charge
    goes on, on what is left)."""
    row.paid_penalty += penalty
    row.paid_interest += interest
    row.paid_principal += principal
    row.updated_at = now
    if owed_of(row).total == 0:
        row.state, row.settled_on = PAID, day
    elif row.state == DUE:
        row.state = PARTLY_PAID


# -- the collectors ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Collected:
    """A collector's answer: ``succeeded`` (the money is ours: ``amount`` fen), ``processing`` (the bank answers
    later: ask again with :meth:`Collector.status`), ``requires_action`` (the customer must confirm it: a card's 3-D
    Secure) or ``failed`` (with the bank's or Stripe's ``code``); ``ref`` the provider's reference."""

    status: str
    ref: str | None
    amount: int = 0
    code: str | None = None
    message: str | None = None


class CollectionUnavailable(Exception):
    """The collector could not be reached or did not answer: nothing is known to be collected; ask again with the
    same key."""


class Collector(Protocol):
    """The port automatic collection goes through: one charge per attempt, keyed by our attempt's key."""

    channel: str

    def collect(self, *, amount: int, key: str, mandate: Mandate, metadata: Mapping[str, str]) -> Collected:
        """Collect ``amount`` fen under ``mandate`` once for ``key`` (the same key again answers the first charge).
        Raises :class:`CollectionUnavailable`."""
        ...

    def status(self, ref: str) -> Collected:
        """The charge ``ref`` as the provider has it now (a delayed result settles here). Raises
        :class:`CollectionUnavailable`."""
        ...

    def refund(self, ref: str, *, amount: int, key: str) -> str:
        """Refund ``amount`` fen of the charge ``ref``, once for ``key``; the refund's reference. Raises
        :class:`CollectionUnavailable`, or ValueError when the provider refuses it."""
        ...


#: the sandbox bank's behaviour by the agreement number's last digit (README, issue 18 §3)
SANDBOX_OUTCOMES = {"6": ("failed", "insufficient_funds", "余额不足 insufficient funds"),
                    "7": ("failed", "agreement_revoked", "代扣协议已解约 the agreement was revoked"),
                    "8": ("processing", None, "银行处理中 the bank answers later: it succeeds"),
                    "9": ("processing", "insufficient_funds", "银行处理中 the bank answers later: insufficient funds")}


class SandboxDirectDebit:
    """沙箱银行 — a SANDBOX of a bank's 协议支付 direct debit (代扣), the embedded default: no bank is called and no
    money moves. Its answers depend only on the agreement number's last digit, so that tests and demos choose them:

    - ``0``–``5``: the debit succeeds at once;
    - ``6``: insufficient funds (``insufficient_funds``, 余额不足);
    - ``7``: the agreement was revoked by the customer at their bank (``agreement_revoked``, 协议已解约);
    - ``8``: a delayed result — ``processing`` now, ``succeeded`` on the next :meth:`status`;
    - ``9``: a delayed result that then fails with insufficient funds.

    The bank's order number is derived from our key alone (the same key: the same order, never a second debit) and
    encodes the order's outcome; the order is for the first amount asked with its key (asked again with another
    amount, it answers the first order, as a bank's order number is the order). The sandbox keeps each order's amount
    in the process that took it (no bank behind it: the worker's, where the collection jobs and the poll run); a
    delayed order asked about by a process that does not know it (the worker restarted meanwhile) fails with
    ``unknown_order`` — the customer is texted and pays by hand. Refunds succeed.
    """

    channel = DIRECT_DEBIT
    #: the first amount of each order, by order number (every instance in the process: one sandbox bank)
    _orders: dict[str, int] = {}
    _lock = threading.Lock()

    def collect(self, *, amount: int, key: str, mandate: Mandate, metadata: Mapping[str, str]) -> Collected:
        if amount <= 0:
            raise ValueError("a debit is more than 0 fen")
        digit = (mandate.agreement_no or "0")[-1:]
        status, code, message = SANDBOX_OUTCOMES.get(digit, ("succeeded", None, "扣款成功 debited"))
        ref = f"ddsb_{digit}_{hashlib.sha256(key.encode()).hexdigest()[:24]}"
        with self._lock:
            amount = self._orders.setdefault(ref, amount)
        return Collected(status, ref, amount if status == SUCCEEDED else 0, code, message)

    def status(self, ref: str) -> Collected:
        try:
            _, digit, _ = ref.split("_")
        except ValueError:
            raise ValueError(f"not an order of the sandbox bank: {ref!r}") from None
        if digit == "9":
            return Collected(FAILED, ref, 0, "insufficient_funds", "余额不足 insufficient funds")
        outcome = SANDBOX_OUTCOMES.get(digit)
        if outcome is not None and outcome[0] == FAILED:
            return Collected(FAILED, ref, 0, outcome[1], outcome[2])
        with self._lock:
            amount = self._orders.get(ref)
        if amount is None:
            return Collected(FAILED, ref, 0, "unknown_order", "沙箱银行无此订单 no such order at the sandbox bank")
        return Collected(SUCCEEDED, ref, amount)

    def refund(self, ref: str, *, amount: int, key: str) -> str:
        if not ref.startswith("ddsb_") or amount <= 0:
            raise ValueError("not a refundable order of the sandbox bank")
        return f"ddsbr_{hashlib.sha256(key.encode()).hexdigest()[:24]}"


class StripeOffSession:
    """Automatic collection with the customer's card saved through a SetupIntent: a PaymentIntent per attempt,
    confirmed off-session with the saved PaymentMethod of the mandate's Customer
    (https://docs.stripe.com/payments/save-and-reuse#charge-saved-payment-method), its Idempotency-Key our attempt's
    key. A card whose bank asks for authentication answers ``requires_action`` (Stripe: ``authentication_required``):
    the customer then pays on the phone. Refunds go through the payment gateway (infra/payments.py)."""

    channel = STRIPE

    def __init__(self, secret_key: str, gateway: PaymentGateway, *, api_base: str | None = None,
                 timeout: float = 10.0) -> None:
        self.gateway, self.api_base = gateway, (api_base or stripe.DEFAULT_API_BASE).rstrip("/")
        self._clients: PerProcess[stripe.StripeClient] = PerProcess(lambda: stripe.StripeClient(
            secret_key, base_addresses={"api": self.api_base}, max_network_retries=2,
            http_client=stripe.RequestsClient(timeout=timeout)))

    def __repr__(self) -> str:  # never the key
        return f"StripeOffSession(api_base={self.api_base!r})"

    def collect(self, *, amount: int, key: str, mandate: Mandate, metadata: Mapping[str, str]) -> Collected:
        if not mandate.customer_ref or not mandate.payment_method:
            return Collected(FAILED, None, 0, "no_payment_method", "no saved card")
        params: dict[str, Any] = {"amount": amount, "currency": "cny", "customer": mandate.customer_ref,
                                  "payment_method": mandate.payment_method, "off_session": True, "confirm": True,
                                  "metadata": dict(metadata), "expand": ["latest_charge"]}
        try:
            made = self._clients.get().v1.payment_intents.create(params, {"idempotency_key": key})  # type: ignore
        except stripe.CardError as exc:
            body: Any = exc.json_body or {}
            error = body.get("error") or {}
            code = str(error.get("decline_code") or error.get("code") or "card_declined")
            intent = error.get("payment_intent") or {}
            ref = intent.get("id") if isinstance(intent, dict) else None
            status = REQUIRES_ACTION if code == "authentication_required" else FAILED
            return Collected(status, ref, 0, code[:40], str(error.get("message") or "")[:255])
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise CollectionUnavailable(type(exc).__name__) from None
        except stripe.StripeError as exc:
            if (exc.http_status or 500) >= 500:
                raise CollectionUnavailable(f"Stripe answered {exc.http_status}") from None
            return Collected(FAILED, None, 0, "refused", str(exc.user_message or "")[:255])
        return self._of(intent_from_object(made.to_dict()))

    def save_card(self, *, key: str, payment_method: str, metadata: Mapping[str, str]) -> tuple[str, str, str]:
        """Save a card for off-session collection: a Customer and a SetupIntent (``usage=off_session``) confirmed with
        ``payment_method`` (https://docs.stripe.com/payments/save-and-reuse), each with an Idempotency-Key derived
        from ``key``; ``(customer, payment method, setup intent)``. A card declined, or needing its bank's check now,
        raises :class:`PaymentDeclined`; Stripe away :class:`CollectionUnavailable`."""
        client = self._clients.get()
        try:
            customer = client.v1.customers.create({"metadata": dict(metadata)},
                                                  {"idempotency_key": f"{key}:customer"})
            made = client.v1.setup_intents.create({"customer": customer.id, "usage": "off_session",
                                                   "metadata": dict(metadata)}, {"idempotency_key": f"{key}:setup"})
            done = client.v1.setup_intents.confirm(made.id, {"payment_method": payment_method},
                                                   {"idempotency_key": f"{key}:confirm"})
        except stripe.CardError as exc:
            body: Any = exc.json_body or {}
            error = body.get("error") or {}
            raise PaymentDeclined(str(error.get("decline_code") or error.get("code") or "card_declined"),
                                  str(error.get("message") or "")) from None
        except (stripe.APIConnectionError, stripe.RateLimitError) as exc:
            raise CollectionUnavailable(type(exc).__name__) from None
        except stripe.StripeError as exc:
            if (exc.http_status or 500) >= 500:
                raise CollectionUnavailable(f"Stripe answered {exc.http_status}") from None
            raise PaymentRefused(exc.http_status, str(exc.user_message or "")) from None
        if done.status != "succeeded" or not done.payment_method:
            raise PaymentDeclined("authentication_required", f"the card was not saved ({done.status})")
        method = done.payment_method if isinstance(done.payment_method, str) else done.payment_method.id
        return customer.id, method, done.id

    def status(self, ref: str) -> Collected:
        try:
            return self._of(self.gateway.retrieve_intent(ref))
        except PaymentsUnavailable as exc:
            raise CollectionUnavailable(str(exc)) from None

    def refund(self, ref: str, *, amount: int, key: str) -> str:
        try:
            return self.gateway.refund(ref, amount=amount, idempotency_key=key, reason="requested_by_customer",
                                       metadata={"refund_key": key}).id
        except PaymentsUnavailable as exc:
            raise CollectionUnavailable(str(exc)) from None
        except (PaymentRefused, PaymentDeclined) as exc:
            raise ValueError(str(exc)) from None

    @staticmethod
    def _of(intent: Any) -> Collected:
        status = {"succeeded": SUCCEEDED, "processing": PROCESSING, "requires_action": REQUIRES_ACTION}.get(
            intent.status, FAILED)
        return Collected(status, intent.id, intent.amount_received if status == SUCCEEDED else 0,
                         None if status == SUCCEEDED else (intent.last_error or intent.status)[:40])
