"""The payments of signed leases, their refunds and the Stripe events seen (tables in migration 0008), and the
delivered leases' terms and settlements (``lease_terms``, migration 0009).

Every change is a conditional UPDATE (the status it expects in its WHERE), so two requests, two processes
or a request and a webhook never both move a payment: the one that matched wins, the other sees 0 rows.

The books (issue 19): each change that moves money posts its journal entry (books/origination.py) in the same
transaction — a payment moving into ``succeeded``/``captured`` (:meth:`SqlPayments.move`), a refund finishing
``succeeded`` (:meth:`SqlPayments.finish_refund`), a refund made outside Leaseline (:meth:`SqlPayments.raise_refunded`),
the dealer's share sent (:meth:`SqlPayments.transfer_sent`) — keyed by the record, so a replay posts nothing twice.
What they credit to Income:Other:Fees (the upfront fees, a deduction kept) is income net of the VAT it includes, Output
the tax (issue 19 §3, books/origination.py), under the rule in force on the day for the lease's structure
(:func:`_vat_rule`); a refund gives the tax back under the rule of the capture's day.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Select
from sqlalchemy import and_
from sqlalchemy import delete
from sqlalchemy import exists
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from books import origination
from books.entries import Entry
from books.lease import structure_of
from books.vat import Rule
from books.vat import load_tax_policy
from infra.books import entry_of
from infra.books import post
from infra.db.engine import Database
from infra.db.models import REFUSED_EVENT
from infra.db.models import ApplicationEventRow
from infra.db.models import ApplicationRow
from infra.db.models import LeaseRow
from infra.db.models import LeaseTermRow
from infra.db.models import PaymentRow
from infra.db.models import RefundRow
from infra.db.models import StripeEventRow
from infra.db.models import utcnow

#: our statuses in which Stripe has taken the money (bff/payments/machine.py ``CAPTURED``)
CAPTURED = ("succeeded", "captured")
SHANGHAI = ZoneInfo("Asia/Shanghai")

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
    transfer_attempts: int = 0  # dealer-share transfers retried after a refusal
    transfer_error: str | None = None

    @property
    def refundable(self) -> int:
        return self.captured - self.refunded


@dataclass(frozen=True)
class StripeEvent:
    """A webhook event as received, and what it did."""

    id: str
    type: str
    intent_id: str | None
    created: int  # Stripe's event time (unix seconds)
    outcome: str
    received_at: datetime


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
                   r.dealer_share, r.transfer_status, r.transfer_id, r.created_at, r.updated_at,
                   r.transfer_attempts or 0, r.transfer_error)


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
            now = utcnow()
            moved = session.execute(update(PaymentRow).where(PaymentRow.id == payment_id,
                                                             PaymentRow.status == expected).values(
                status=to, updated_at=now, **values)).rowcount
            if not moved:
                return None
            row = session.get(PaymentRow, payment_id)
            assert row is not None
            if to in CAPTURED and expected not in CAPTURED:  # the money taken: its entry, in this transaction
                post(session, [_capture_entry(session, row, now)], now)
            return _payment(row)

    def set_fields(self, payment_id: str, **values: object) -> None:
        """Fields that are not the status (the intent id, amounts Stripe reports, the last error)."""
        with self.db.session() as session:
            session.execute(update(PaymentRow).where(PaymentRow.id == payment_id).values(updated_at=utcnow(),
                                                                                          **values))

    def add_refund(self, payment_id: str, amount: int, reason: str, actor_id: str | None) -> Refund | None:
        """Reserve ``amount`` for a refund: one statement checks and raises the refunded total, so two refunds at
        once can never exceed what was captured (localstripe would accept an over-refund; Stripe refuses it
        only after the fact). None when it would exceed — for an upfront payment whose lease commenced, what is left of
        its fees and premiums (:func:`_refund_limit`)."""
        refund_id = str(uuid.uuid4())
        with self.db.session() as session:
            moved = session.execute(update(PaymentRow).where(
                PaymentRow.id == payment_id, PaymentRow.refunded + amount <= _refund_limit(session, payment_id)).values(
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

    def transfers_due(self, stale_before: datetime | None = None) -> list[Payment]:
        """Captured upfront payments whose dealer share is not paid out yet; with ``stale_before``, those claimed
        for sending before then too (the process sending it died: it is sent again, with the same key)."""
        due = PaymentRow.transfer_status == "due"
        if stale_before is not None:
            due = or_(due, and_(PaymentRow.transfer_status == "sending", PaymentRow.updated_at < stale_before))
        with self.db.session() as session:
            return [_payment(r) for r in session.scalars(
                select(PaymentRow).where(due, PaymentRow.status == "succeeded"))]

    def claim_transfer(self, payment_id: str, expected: str = "due", to: str = "sending",
                       stale_before: datetime | None = None) -> bool:
        """Move the dealer-share transfer ``expected`` → ``to``, once (two senders never both send it); with
        ``stale_before``, also one left ``sending`` before then by a process that died."""
        match = PaymentRow.transfer_status == expected
        if stale_before is not None:
            match = or_(match, and_(PaymentRow.transfer_status == "sending", PaymentRow.updated_at < stale_before))
        with self.db.session() as session:
            return bool(session.execute(update(PaymentRow).where(PaymentRow.id == payment_id, match).values(
                transfer_status=to, updated_at=utcnow())).rowcount)

    def finish_refund(self, refund_id: str, stripe_refund_id: str | None, status: str) -> None:
        """Record Stripe's answer; a failed refund gives its reserved amount back."""
        with self.db.session() as session:
            row = session.get(RefundRow, refund_id, with_for_update=True)
            if row is None or row.status != "pending":
                return
            if status == "succeeded":  # the money given back: its entry, in this transaction
                now = utcnow()
                payment = session.get(PaymentRow, row.payment_id, with_for_update=True)
                assert payment is not None
                before = payment.refunded - _pending_refunds(session, payment.id)  # this one is still pending
                post(session, [_refund_entry(session, payment, f"refund:{row.id}", row.amount, before, now,
                                             f"refund {stripe_refund_id or ''}: {row.reason}")], now)
            row.status, row.stripe_refund_id = status, stripe_refund_id
            if status == "failed":
                session.execute(update(PaymentRow).where(PaymentRow.id == row.payment_id).values(
                    refunded=PaymentRow.refunded - row.amount, updated_at=utcnow()))

    def record_event(self, event_id: str, event_type: str, intent_id: str | None, created: int,
                     outcome: str) -> bool:
        """Store a webhook event's id; False when it was seen before (a replay: do nothing)."""
        try:
            with self.db.session() as session:
                session.add(StripeEventRow(id=event_id[:255], type=event_type[:64],
                                           intent_id=intent_id[:64] if intent_id else None, created=created,
                                           outcome=outcome[:64], received_at=utcnow()))
        except IntegrityError:
            return False
        return True

    def set_event_outcome(self, event_id: str, outcome: str) -> None:
        with self.db.session() as session:
            session.execute(update(StripeEventRow).where(StripeEventRow.id == event_id).values(outcome=outcome[:64]))

    def raise_refunded(self, payment_id: str, total: int) -> bool:
        """Raise what was refunded of a captured payment to ``total`` (a refund made outside Leaseline, reported by
        Stripe), in one conditional UPDATE: never lower, never above what was captured. False when it does not hold."""
        with self.db.session() as session:
            row = session.get(PaymentRow, payment_id, with_for_update=True)
            if row is None or not row.refunded < total <= row.captured or row.status not in CAPTURED:
                return False
            now = utcnow()
            before = row.refunded - _pending_refunds(session, payment_id)  # what the books gave back so far
            amount = total - row.refunded
            row.refunded, row.updated_at = total, now
            # what it gives back of rent 1 (paid at signing) once the lease commenced is owed again by the lessee
            # (books/origination.py refunded: Dr Assets:Receivable:Lessees): the sale stands, its Output VAT and its
            # e-invoice with it — no red-letter invoice, which is for a refund that reduces the sale
            post(session, [_refund_entry(session, row, f"payment:{payment_id}:refunded:{total}", amount, before, now,
                                         "refunded outside Leaseline (reported by Stripe)")], now)
            return True

    def transfer_sent(self, payment_id: str, transfer_id: str, amount: int) -> bool:
        """The dealer's share sent to its connected account (Stripe's Transfer ``transfer_id`` of ``amount`` fen):
        ``sent``, and its entry posted (key ``transfer:<payment>``), in one transaction; False when it was recorded
        sent already."""
        with self.db.session() as session:
            now = utcnow()
            moved = session.execute(update(PaymentRow).where(
                PaymentRow.id == payment_id, PaymentRow.transfer_status != "sent").values(
                transfer_status="sent", transfer_id=transfer_id, updated_at=now)).rowcount
            if not moved:
                return False
            row = session.get(PaymentRow, payment_id)
            assert row is not None
            post(session, [origination.dealer_share_paid(
                row.id, amount, business_day(now), dealer_id=row.dealer_id,
                lease_id=_lease_of(session, row.application_id), transfer_id=transfer_id)], now)
            return True

    def forget_event(self, event_id: str) -> None:
        """Forget an event that could not be applied yet (Stripe unreachable while checking it), so that Stripe's
        retry of it is applied rather than taken for a replay."""
        with self.db.session() as session:
            session.execute(delete(StripeEventRow).where(StripeEventRow.id == event_id[:255],
                                                         StripeEventRow.outcome == "received"))

    def refused_events(self, limit: int = 20) -> list[StripeEvent]:
        """The newest webhook events refused (signed, but not about a payment as we made it): for ops to see."""
        # through ix_stripe_events_refused, read backwards (infra.db.models.REFUSED_EVENT): no scan, no sort
        stmt = (select(StripeEventRow).where(text(REFUSED_EVENT))
                .order_by(StripeEventRow.received_at.desc(), StripeEventRow.id.desc()).limit(limit))
        with self.db.session() as session:
            return [StripeEvent(r.id, r.type, r.intent_id, r.created, r.outcome, r.received_at)
                    for r in session.scalars(stmt)]

    # -- the ops view (every dealer's payments, or one dealer's) --------------------------------------------------
    @staticmethod
    def _filtered(stmt: Select[Any], dealer_id: str | None, statuses: Sequence[str], kinds: Sequence[str],
                  transfer: str | None) -> Select[Any]:
        if dealer_id is not None:
            stmt = stmt.where(PaymentRow.dealer_id == dealer_id)
        if statuses:
            stmt = stmt.where(PaymentRow.status.in_(list(statuses)))
        if kinds:
            stmt = stmt.where(PaymentRow.kind.in_(list(kinds)))
        if transfer is not None:
            stmt = stmt.where(PaymentRow.transfer_status == transfer)
        return stmt

    def search(self, *, dealer_id: str | None = None, statuses: Sequence[str] = (), kinds: Sequence[str] = (),
               transfer: str | None = None, limit: int = 200) -> list[PaymentLine]:
        """Payments, most recently changed first, with their application's customer and state. ``dealer_id``
        None: every dealer (the caller decides the tenant, as for applications)."""
        stmt = self._filtered(select(PaymentRow, ApplicationRow.customer_name, ApplicationRow.status).join(
            ApplicationRow, ApplicationRow.id == PaymentRow.application_id), dealer_id, statuses, kinds, transfer)
        stmt = stmt.order_by(PaymentRow.updated_at.desc(), PaymentRow.id).limit(limit)
        with self.db.session() as session:
            return [PaymentLine(_payment(row), name, status) for row, name, status in session.execute(stmt)]

    def totals(self, *, dealer_id: str | None = None, statuses: Sequence[str] = (), kinds: Sequence[str] = (),
               transfer: str | None = None) -> dict[str, int]:
        """Count and sums (fen) of the payments that match, all of them (the list shows the newest only)."""
        stmt = self._filtered(select(func.count(PaymentRow.id), func.coalesce(func.sum(PaymentRow.amount), 0),
                                     func.coalesce(func.sum(PaymentRow.captured), 0),
                                     func.coalesce(func.sum(PaymentRow.refunded), 0)),
                              dealer_id, statuses, kinds, transfer)
        with self.db.session() as session:
            count, amount, captured, refunded = session.execute(stmt).one()
        return {"count": int(count), "amount": int(amount), "captured": int(captured), "refunded": int(refunded)}

    def retry_transfer(self, payment_id: str) -> bool:
        """A refused dealer-share transfer ``failed`` → ``due`` as a new attempt (its own Idempotency-Key: Stripe
        answers a key it refused with the same refusal), once."""
        with self.db.session() as session:
            return bool(session.execute(update(PaymentRow).where(
                PaymentRow.id == payment_id, PaymentRow.transfer_status == "failed").values(
                transfer_status="due", transfer_attempts=PaymentRow.transfer_attempts + 1, transfer_error=None,
                updated_at=utcnow())).rowcount)

    # -- refunds made once per purpose --------------------------------------------------------------------------
    def refund(self, refund_id: str) -> Refund | None:
        with self.db.session() as session:
            row = session.get(RefundRow, refund_id)
            return _refund(row) if row is not None else None

    def add_refund_once(self, refund_id: str, payment_id: str, amount: int, reason: str,
                        actor_id: str | None) -> Refund | None:
        """:meth:`add_refund` under a chosen id (e.g. derived from the settlement it belongs to): the refund row and
        the reservation of its amount are one transaction, so a second call — or two at once — finds the first
        refund instead of reserving the amount twice. None when it would exceed what is left to refund."""
        existing = self.refund(refund_id)
        if existing is not None:
            return existing
        try:
            with self.db.session() as session:
                row = RefundRow(id=refund_id, payment_id=payment_id, amount=amount, reason=reason[:255],
                                status="pending", actor_id=actor_id, created_at=utcnow())
                session.add(row)
                session.flush()  # the id is taken first: a concurrent twin fails here, before reserving anything
                moved = session.execute(update(PaymentRow).where(
                    PaymentRow.id == payment_id,
                    PaymentRow.refunded + amount <= _refund_limit(session, payment_id)).values(
                    refunded=PaymentRow.refunded + amount, updated_at=utcnow())).rowcount
                if not moved:
                    raise _Undo
                return _refund(row)
        except IntegrityError:
            return self.refund(refund_id)
        except _Undo:
            return None

    # -- lease terms (交车 → term end → 结清) ------------------------------------------------------------------------
    def term(self, application_id: str) -> LeaseTerm | None:
        if len(application_id) > 36:  # an id names its row exactly, never the one its first 36 characters name
            return None
        with self.db.session() as session:
            row = session.get(LeaseTermRow, application_id)
            return _term(row) if row is not None else None

    def start_term(self, application_id: str, *, dealer_id: str, from_status: str, to_status: str,
                   term_months: int, starts_on: date, ends_on: date, actor_kind: str, actor_id: str,
                   delivered_by: str, delivered_by_label: str, note: str, now: datetime) -> LeaseTerm | None:
        """The application ``from_status`` → ``to_status`` (with its event, by the actor who confirmed) and its term
        recorded (handed over by ``delivered_by``), in one transaction; None when the application is not in
        ``from_status`` any more (a second tap, another device)."""
        with self.db.session() as session:
            moved = session.execute(update(ApplicationRow).where(
                ApplicationRow.id == application_id, ApplicationRow.status == from_status).values(
                status=to_status, updated_at=now, version=ApplicationRow.version + 1)).rowcount
            if not moved:
                return None
            session.add(ApplicationEventRow(application_id=application_id, at=now, actor_kind=actor_kind,
                                            actor_id=actor_id, from_status=from_status, to_status=to_status,
                                            note=note[:2000]))
            row = LeaseTermRow(application_id=application_id, dealer_id=dealer_id, term_months=term_months,
                               starts_on=starts_on, ends_on=ends_on, delivered_at=now, delivered_by=delivered_by,
                               delivered_by_label=delivered_by_label[:254], deduction=0, refunded=0, captured=0,
                               settle_attempts=0)
            session.add(row)
            session.flush()
            return _term(row)

    def serviced(self, application_id: str) -> bool:
        """Whether the application has a lease in force in servicing (``leases``, infra/servicing.py): its term ends,
        and its deposit is settled, with the lease (infra/end_of_term.py, infra/settlements.py), not by ops' closing."""
        with self.db.session() as session:
            return bool(session.execute(select(exists().where(LeaseRow.application_id == application_id))).scalar())

    def close_term(self, application_id: str, *, from_status: str, to_status: str, deduction: int, reason: str,
                   actor_id: str, actor_label: str, note: str, now: datetime) -> LeaseTerm | None:
        """The application ``from_status`` → ``to_status`` (with its event) and its term closed with the deduction,
        its settlement ``due``, in one transaction; None when it is not in ``from_status`` any more or has a lease in
        servicing (:meth:`serviced`: the lease's end settles its deposit). The part of the deduction the deposit still
        holds is posted kept in that transaction (``deduction:<application>``: books/origination.py
        ``deposit_kept``); a live hold's part when the settle job captures it (:func:`_capture_entry`)."""
        try:
            with self.db.session() as session:
                moved = session.execute(update(ApplicationRow).where(
                    ApplicationRow.id == application_id, ApplicationRow.status == from_status,
                    ~exists().where(LeaseRow.application_id == application_id)).values(
                    status=to_status, updated_at=now, version=ApplicationRow.version + 1)).rowcount
                closed = moved and session.execute(update(LeaseTermRow).where(
                    LeaseTermRow.application_id == application_id, LeaseTermRow.settlement.is_(None)).values(
                    closed_at=now, closed_by=actor_id, closed_by_label=actor_label[:254], deduction=deduction,
                    deduction_reason=reason[:255] or None, settlement="due")).rowcount
                if not closed:  # moved elsewhere, or no term recorded (delivery records one): change nothing
                    raise _Undo
                session.add(ApplicationEventRow(application_id=application_id, at=now, actor_kind="staff",
                                                actor_id=actor_id, from_status=from_status, to_status=to_status,
                                                note=note[:2000]))
                session.flush()
                row = session.get(LeaseTermRow, application_id)
                assert row is not None
                post(session, [origination.deposit_kept(application_id, min(deduction, _deposit_left(
                    session, application_id)), business_day(now), dealer_id=row.dealer_id,
                    reason=row.deduction_reason or "", rule=_vat_rule(session, application_id, business_day(now)))],
                     now)
                return _term(row)
        except _Undo:
            return None

    def leases(self, *, dealer_id: str | None = None, ending_by: date | None = None,
               settlements: Sequence[str | None] = (), unserviced: bool = False, limit: int = 200) -> list[LeaseLine]:
        """Lease terms with their application's customer and state, soonest end first: those ending on or before
        ``ending_by``, in one of ``settlements`` (None: still running); ``unserviced``: only those without a lease in
        servicing (:meth:`serviced`)."""
        stmt = (select(LeaseTermRow, ApplicationRow.customer_name, ApplicationRow.status,
                       ApplicationRow.vehicle_label)
                .join(ApplicationRow, ApplicationRow.id == LeaseTermRow.application_id)
                .order_by(LeaseTermRow.ends_on, LeaseTermRow.application_id).limit(limit))
        if dealer_id is not None:
            stmt = stmt.where(LeaseTermRow.dealer_id == dealer_id)
        if ending_by is not None:
            stmt = stmt.where(LeaseTermRow.ends_on <= ending_by)
        if unserviced:
            stmt = stmt.where(~exists().where(LeaseRow.application_id == LeaseTermRow.application_id))
        if settlements:
            named = [s for s in settlements if s is not None]
            clauses = [LeaseTermRow.settlement.in_(named)] if named else []
            if None in settlements:
                clauses.append(LeaseTermRow.settlement.is_(None))
            stmt = stmt.where(or_(*clauses))
        with self.db.session() as session:
            return [LeaseLine(_term(row), name, status, vehicle)
                    for row, name, status, vehicle in session.execute(stmt)]

    def settlements_due(self, stale_before: datetime, limit: int = 50, only: str | None = None) -> list[LeaseTerm]:
        """Closed leases whose settlement is due and not being worked on (or whose worker stopped before
        ``stale_before``), oldest closing first; ``only``: that lease's, wherever it would come in the list."""
        stmt = (select(LeaseTermRow).where(LeaseTermRow.settlement == "due")
                .where(or_(LeaseTermRow.settle_claimed_at.is_(None), LeaseTermRow.settle_claimed_at < stale_before))
                .order_by(LeaseTermRow.closed_at).limit(limit))
        if only is not None:
            stmt = stmt.where(LeaseTermRow.application_id == only)
        with self.db.session() as session:
            return [_term(r) for r in session.scalars(stmt)]

    def claim_settlement(self, application_id: str, now: datetime, stale_before: datetime) -> bool:
        """Take the settlement for this worker, once (two settle runs never work on the same lease at once)."""
        with self.db.session() as session:
            return bool(session.execute(update(LeaseTermRow).where(
                LeaseTermRow.application_id == application_id, LeaseTermRow.settlement == "due",
                or_(LeaseTermRow.settle_claimed_at.is_(None), LeaseTermRow.settle_claimed_at < stale_before)).values(
                settle_claimed_at=now)).rowcount)

    def finish_settlement(self, application_id: str, settlement: str, *, claim: datetime, **values: object) -> bool:
        """Record where the settlement stands (``due`` again, ``settled``, ``attention``) and let go of it — only
        while ``claim`` (the time :meth:`claim_settlement` took it) is still the claim: a run taken over for stale
        never overwrites what the newer run records. False when it was not the claim any more."""
        with self.db.session() as session:
            return bool(session.execute(update(LeaseTermRow).where(
                LeaseTermRow.application_id == application_id, LeaseTermRow.settle_claimed_at == claim).values(
                settlement=settlement, settle_claimed_at=None, **values)).rowcount)

    def reopen_settlement(self, application_id: str) -> bool:
        """``attention`` → ``due`` as a new attempt (ops dealt with the cause), once."""
        with self.db.session() as session:
            return bool(session.execute(update(LeaseTermRow).where(
                LeaseTermRow.application_id == application_id, LeaseTermRow.settlement == "attention").values(
                settlement="due", settle_claimed_at=None, settle_note=None,
                settle_attempts=LeaseTermRow.settle_attempts + 1)).rowcount)


def business_day(now: datetime) -> date:
    """The business date of an event at ``now``: its day in Asia/Shanghai."""
    return now.astimezone(SHANGHAI).date()


def _lease_of(session: Session, application_id: str) -> str | None:
    """The application's lease in force, once its handover opened one (infra/servicing.py)."""
    return session.execute(select(LeaseRow.id).where(LeaseRow.application_id == application_id)).scalar_one_or_none()


def _parts(session: Session, row: PaymentRow) -> origination.UpfrontParts | None:
    """What an upfront payment's captured amount is made of, from its application's frozen plan."""
    if row.kind != "upfront":
        return None
    plan_json = session.execute(select(ApplicationRow.plan_json).where(
        ApplicationRow.id == row.application_id)).scalar_one()
    return origination.upfront_parts(json.loads(plan_json or "{}"), row.captured)


def _pending_refunds(session: Session, payment_id: str) -> int:
    """What the payment's refunds still pending reserve (fen): counted in ``refunded``, not in the books yet."""
    return int(session.execute(select(func.coalesce(func.sum(RefundRow.amount), 0)).where(
        RefundRow.payment_id == payment_id, RefundRow.status == "pending")).scalar_one())


def _deposit_left(session: Session, application_id: str) -> int:
    """What the application's deposit payment still holds (fen: captured less refunded, refunds pending counted)."""
    return int(session.execute(select(func.coalesce(func.sum(PaymentRow.captured - PaymentRow.refunded), 0)).where(
        PaymentRow.application_id == application_id, PaymentRow.kind == "deposit",
        PaymentRow.status == "succeeded")).scalar_one())


def _kept_from_hold(session: Session, row: PaymentRow) -> int:
    """The part of a hold's capture that pays its closed term's deduction (fen): the deduction less what the closing
    kept from the deposit (``deduction:<application>``); nothing for a hold of a term not closed (ops' capture on
    default: security held, the lessee's deposit)."""
    if row.kind != "hold":
        return 0
    term = session.execute(select(LeaseTermRow.settlement, LeaseTermRow.deduction).where(
        LeaseTermRow.application_id == row.application_id)).one_or_none()
    if term is None or term[0] is None or not term[1]:
        return 0
    kept = entry_of(session, f"deduction:{row.application_id}")
    from_deposit = sum(line.debit for line in kept.lines if line.account == origination.DEPOSITS) if kept else 0
    return max(0, int(term[1]) - from_deposit)


def _vat_rule(session: Session, application_id: str, day: date) -> Rule:
    """The VAT rule in force on ``day`` for the application's lease structure: its lease's frozen terms once it has
    one; before that direct — the only structure offered (plans/product.py STRUCTURES), the frozen plan names none."""
    terms = session.execute(select(LeaseRow.terms).where(LeaseRow.application_id == application_id)).scalar()
    try:
        found = json.loads(terms) if terms else {}
    except ValueError:
        found = {}
    return load_tax_policy().rule(structure_of(found if isinstance(found, dict) else {}), day)


def _capture_entry(session: Session, row: PaymentRow, now: datetime) -> Entry | None:
    return origination.captured(row.id, row.kind, row.captured, business_day(now), parts=_parts(session, row),
                                dealer_id=row.dealer_id, lease_id=_lease_of(session, row.application_id),
                                application_id=row.application_id, kept=_kept_from_hold(session, row),
                                rule=_vat_rule(session, row.application_id, business_day(now)))


def _refund_limit(session: Session, payment_id: str) -> Any:
    """The most a payment's refunds may add up to (fen; a SQL expression for the reserving UPDATE): what was
    captured — for an upfront payment whose lease commenced, only its fees and premiums
    (books/origination.py ``refundable_once_commenced``: the commencement applied the first rent to rent 1, paid at
    signing, which servicing does not reopen, and the dealer's down payment comes after it). The payment's row is
    locked first, so that the limit read holds for the UPDATE."""
    row = session.get(PaymentRow, payment_id, with_for_update=True)
    if row is None or row.kind != "upfront" or _lease_of(session, row.application_id) is None:
        return PaymentRow.captured
    parts = _parts(session, row)
    return origination.refundable_once_commenced(parts) if parts is not None else PaymentRow.captured


def _refund_entry(session: Session, row: PaymentRow, key: str, amount: int, before: int, now: datetime,
                  memo: str) -> Entry | None:
    lease_id = _lease_of(session, row.application_id)
    # the fees' tax given back under the rule of the day they were captured, as the capture taxed them (a capture
    # posted before VAT credited the fees gross: none to give back)
    capture = entry_of(session, f"payment:{row.id}:captured")
    taxed = capture is not None and any(line.account == origination.VAT_OUTPUT for line in capture.lines)
    return origination.refunded(key, row.kind, amount, business_day(now), before=before, parts=_parts(session, row),
                                dealer_id=row.dealer_id, lease_id=lease_id, memo=memo, commenced=lease_id is not None,
                                rule=_vat_rule(session, row.application_id, capture.value_date)
                                if capture is not None and taxed else None)


class _Undo(Exception):
    """Raised inside a unit of work to roll it back (a condition checked in it did not hold)."""


@dataclass(frozen=True)
class PaymentLine:
    """A payment as the ops view lists it."""

    payment: Payment
    customer_name: str
    application_status: str


@dataclass(frozen=True)
class LeaseTerm:
    application_id: str
    dealer_id: str
    term_months: int
    starts_on: date
    ends_on: date
    delivered_at: datetime
    delivered_by: str
    delivered_by_label: str
    closed_at: datetime | None
    closed_by: str | None
    closed_by_label: str | None
    deduction: int  # fen
    deduction_reason: str | None
    settlement: str | None
    settled_at: datetime | None
    refunded: int  # fen
    captured: int  # fen
    settle_note: str | None
    settle_attempts: int = 0


@dataclass(frozen=True)
class LeaseLine:
    """A lease term as the ops view lists it."""

    term: LeaseTerm
    customer_name: str
    application_status: str
    vehicle_label: str


def _term(r: LeaseTermRow) -> LeaseTerm:
    return LeaseTerm(r.application_id, r.dealer_id, r.term_months, r.starts_on, r.ends_on, r.delivered_at,
                     r.delivered_by, r.delivered_by_label, r.closed_at, r.closed_by, r.closed_by_label, r.deduction,
                     r.deduction_reason, r.settlement, r.settled_at, r.refunded, r.captured, r.settle_note,
                     r.settle_attempts)
