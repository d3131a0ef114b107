"""Stripe's balance in the books (issue 19 §1, §2): the processor's fees and payouts posted from Stripe's balance
transactions, and the Stripe clearing account reconciled with them — the differences listed for ops.

Stripe reports what it did to the balance as balance transactions (https://docs.stripe.com/api/balance_transactions/
object): ``amount`` (gross, signed: positive into the balance), ``fee`` and ``fee_details``, ``net`` (amount − fee),
``type`` (charge, payment, refund, payment_refund, transfer, payout, stripe_fee, adjustment, …), ``source`` (the
object it is about; expanded, its ``payment_intent``), ``created`` and ``available_on``.

:func:`reconcile_stripe` reads the transactions created since a moment (the caller's last run, less
:data:`OVERLAP`: the keys make a transaction read twice post nothing twice) and, in one transaction:

- posts each fee (key ``fee:<transaction>``: Dr Expenses:Finance:ProcessorFees / Cr Assets:Clearing:Stripe; a
  ``stripe_fee`` transaction is a fee too, its amount the fee) and each payout to the lessor's bank
  (``payout:<transaction>``: Dr Assets:Bank:Collections / Cr Assets:Clearing:Stripe), dated on the transaction's day
  in Asia/Shanghai (books/origination.py);
- compares each transaction about money we moved with the entry that booked it — a charge with the capture of the
  payment (``payment:<id>:captured``) or the rent receipt (``receipt:<id>``) of its PaymentIntent, a refund with our
  refund (``refund:<id>``, ``receipt:<id>:refund``), a transfer with the dealer's share (``transfer:<payment>``); a
  refund made outside Leaseline with what the books took for the payment's refunds made outside
  (``payment:<id>:refunded:<total>``) — by the amount moved through Assets:Clearing:Stripe;
- lists as :class:`Difference` what does not agree: ``not_in_books`` (Stripe moved money no entry books),
  ``not_at_stripe`` (an entry posted since then moved the clearing account for a Stripe object Stripe did not
  report), ``amount`` (both, amounts differing), ``currency`` (not CNY: the books hold CNY only).

localstripe reports fees as 0 and has no transfers or payouts; it refuses ``created`` on /v1/balance_transactions,
and a server without that path is read at the legacy /v1/balance/history (infra/payments.py
``StripeGateway.balance_transactions`` reads either).

The worker's ``books.reconcile_stripe`` job (:class:`StripeBooksJob`, daily) reads the last :data:`LOOKBACK` each
run (the keys make the overlap post nothing twice) and makes what disagrees visible: an error line per difference in
the log and one ``books.stripe_reconciliation`` entry (outcome ``failure``, the differences in its details) in the
audit log ops read; a run that agrees leaves a ``success`` entry.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Iterator
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any
from typing import Protocol

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session

from books import origination
from books.entries import Entry
from infra.audit import SqlAuditLog
from infra.books import post
from infra.db.engine import Database
from infra.db.models import JournalEntryRow
from infra.db.models import JournalLineRow
from infra.db.models import LeaseReceiptRow
from infra.db.models import PaymentRow
from infra.db.models import RefundRow
from infra.payments_store import business_day

log = logging.getLogger(__name__)
#: what the daily job reads each run: three days, so a run missed (a worker down over a weekend day) is caught up
LOOKBACK = timedelta(days=3)
#: how far before the caller's ``since`` the transactions are read: a charge Stripe made just before it may be booked
#: by us (its webhook, our answer) just after it
OVERLAP = timedelta(days=1)
CHARGES = frozenset({"charge", "payment"})
REFUNDS = frozenset({"refund", "payment_refund"})
TRANSFERS = frozenset({"transfer"})
PAYOUTS = frozenset({"payout", "payout_cancel", "payout_failure"})
#: Stripe's own fees charged to the balance as transactions of their own (their amount is the fee)
FEE_TYPES = frozenset({"stripe_fee"})
#: the entries of ours that move the Stripe clearing account for a Stripe object (not those this job posts)
OWN_KINDS = ("upfront_captured", "deposit_captured", "hold_captured", "payment_refunded", "dealer_share_paid")


@dataclass(frozen=True)
class BalanceTransaction:
    """One of Stripe's balance transactions, amounts in fen."""

    id: str
    type: str
    amount: int  # gross, signed (positive: into the balance)
    fee: int
    net: int
    currency: str
    created: int  # unix seconds
    available_on: int
    source: str | None  # the id of the object it is about
    payment_intent: str | None  # the source's PaymentIntent (a charge's or a refund's), when Stripe says it
    fee_details: tuple[tuple[str, int], ...] = ()  # (type, amount)


def transaction_from_object(data: Mapping[str, Any]) -> BalanceTransaction:
    """A balance transaction from Stripe's JSON (``source`` expanded or an id), every field read defensively."""
    source = data.get("source")
    intent: object = None
    if isinstance(source, Mapping):
        intent = source.get("payment_intent")
        if isinstance(intent, Mapping):
            intent = intent.get("id")
        source = source.get("id")
    details = tuple((str(d.get("type") or ""), _int(d.get("amount"))) for d in data.get("fee_details") or []
                    if isinstance(d, Mapping))
    amount, fee = _int(data.get("amount")), _int(data.get("fee"))
    return BalanceTransaction(id=str(data.get("id") or ""), type=str(data.get("type") or ""), amount=amount, fee=fee,
                              net=_int(data["net"]) if "net" in data else amount - fee,
                              currency=str(data.get("currency") or "").lower(), created=_int(data.get("created")),
                              available_on=_int(data.get("available_on")),
                              source=source if isinstance(source, str) and source else None,
                              payment_intent=intent if isinstance(intent, str) and intent else None,
                              fee_details=details)


class BalanceHistory(Protocol):
    """Where Stripe's balance transactions are read (``StripeGateway``)."""

    def balance_transactions(self, *, created_gte: int | None = None) -> Iterator[dict[str, Any]]:
        """Stripe's balance transactions created at or after ``created_gte`` (unix seconds), newest first, as JSON."""
        ...


@dataclass(frozen=True)
class Difference:
    """Where the Stripe clearing account and Stripe's balance transactions disagree (for ops)."""

    problem: str  # not_in_books | not_at_stripe | amount | currency
    stripe_id: str | None  # the Stripe object (PaymentIntent, Refund, Transfer) or the balance transaction
    key: str | None  # the journal entry, when there is one
    ours: int | None  # fen through the Stripe clearing account (positive: in)
    stripe: int | None  # fen, Stripe's gross amount

    def as_dict(self) -> dict[str, object]:
        return {"problem": self.problem, "stripe_id": self.stripe_id, "key": self.key, "ours": self.ours,
                "stripe": self.stripe}


@dataclass(frozen=True)
class StripeBooks:
    """What one run did: the transactions read, the entries posted now (keys), the differences, and the newest
    transaction's time (the next run's ``since``)."""

    transactions: int
    posted: tuple[str, ...]
    differences: tuple[Difference, ...]
    newest: datetime | None

    @property
    def reconciled(self) -> bool:
        return not self.differences


def reconcile_stripe(db: Database, history: BalanceHistory, *, since: datetime, now: datetime,
                     overlap: timedelta = OVERLAP) -> StripeBooks:
    """Post Stripe's fees and payouts of the balance transactions created since ``since`` (less ``overlap``)
    and list the differences between them and the books (module docstring), in one transaction."""
    start = since - overlap
    transactions = [transaction_from_object(t) for t in history.balance_transactions(
        created_gte=int(start.timestamp()))]
    with db.transaction() as session:
        entries = [e for t in transactions if t.currency == "cny" for e in stripe_entries(t)]
        posted = post(session, entries, now)
        posted_keys = _keys_of(session, posted)
        differences = compare(session, transactions, since)
    newest = max((t.created for t in transactions), default=None)
    return StripeBooks(len(transactions), posted_keys, tuple(differences),
                       datetime.fromtimestamp(newest, UTC) if newest is not None else None)


class StripeBooksJob:
    """The worker's ``books.reconcile_stripe`` duty: :func:`reconcile_stripe` over the last :data:`LOOKBACK`, its
    differences logged and kept in the audit log for ops."""

    def __init__(self, db: Database, history: BalanceHistory, audit: SqlAuditLog | None = None,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db, self.history, self.audit, self.clock = db, history, audit, clock

    def run(self) -> StripeBooks:
        now = self.clock()
        result = reconcile_stripe(self.db, self.history, since=now - LOOKBACK, now=now)
        for difference in result.differences:
            log.error("Stripe reconciliation: %s %s %s ours %s Stripe %s", difference.problem, difference.stripe_id,
                      difference.key, difference.ours, difference.stripe)
        if self.audit is not None:
            self.audit.append("books.stripe_reconciliation", "success" if result.reconciled else "failure",
                              actor_id=None, actor_label="system:books", target="stripe", details={
                                  "transactions": result.transactions, "posted": len(result.posted),
                                  "differences": [d.as_dict() for d in result.differences[:100]],
                                  "more": max(0, len(result.differences) - 100)})
        return result


def stripe_entries(t: BalanceTransaction) -> list[Entry | None]:
    """The entries Stripe's own transaction ``t`` causes: its fee, and a payout to the bank."""
    day = business_day(datetime.fromtimestamp(t.created, UTC))
    fee = t.fee + (-t.amount if t.type in FEE_TYPES else 0)
    found = [origination.processor_fee(t.id, fee, day, f"Stripe fee {t.type} {t.source or ''}".strip())]
    if t.type in PAYOUTS:
        found.append(origination.payout(t.id, -t.amount, day, f"Stripe {t.type} {t.source or ''}".strip()))
    return found


def compare(session: Session, transactions: Iterable[BalanceTransaction], since: datetime) -> list[Difference]:
    """The differences between ``transactions`` and the entries that booked the money they are about, and the
    entries posted since ``since`` that moved the Stripe clearing account for something Stripe did not report."""
    listed = list(transactions)
    differences = [Difference("currency", t.id, None, None, t.amount) for t in listed if t.currency != "cny"]
    ours = [t for t in listed if t.currency == "cny"]
    charges = _charge_keys(session, {t.payment_intent for t in ours if t.type in CHARGES and t.payment_intent})
    refunds = _refund_keys(session, {t.source for t in ours if t.type in REFUNDS and t.source})
    transfers = _transfer_keys(session, {t.source for t in ours if t.type in TRANSFERS and t.source})
    outside: dict[str, int] = {}  # payment id → Stripe's refunds of it not made by us
    expected: list[tuple[str, str, int]] = []  # (Stripe object, our key, Stripe's amount)
    for t in ours:
        if t.type in CHARGES:
            found, ref = charges.get(t.payment_intent or ""), t.payment_intent or t.source or t.id
        elif t.type in REFUNDS:
            found, ref = refunds.get(t.source or ""), t.source or t.id
            if found is None and t.payment_intent:
                payment = _payment_of(session, t.payment_intent)
                if payment is not None:  # a refund made outside Leaseline: compared by payment below
                    outside[payment] = outside.get(payment, 0) + t.amount
                    continue
        elif t.type in TRANSFERS:
            found, ref = transfers.get(t.source or ""), t.source or t.id
        elif t.type in PAYOUTS or t.type in FEE_TYPES:
            continue  # posted from Stripe's own report above
        else:
            differences.append(Difference("not_in_books", t.id, None, None, t.amount))
            continue
        if found is None:
            differences.append(Difference("not_in_books", ref, None, None, t.amount))
        else:
            expected.append((ref, found, t.amount))
    amounts = _clearing(session, [key for _, key, _ in expected])
    for ref, key, stripe_amount in expected:
        if amounts.get(key) is None:
            differences.append(Difference("not_in_books", ref, key, None, stripe_amount))
        elif amounts[key] != stripe_amount:
            differences.append(Difference("amount", ref, key, amounts[key], stripe_amount))
    matched = {key for _, key, _ in expected}
    for payment, stripe_amount in outside.items():
        booked = _clearing_like(session, f"payment:{payment}:refunded:%")
        matched |= set(booked)
        if sum(booked.values()) != stripe_amount:
            differences.append(Difference("amount" if booked else "not_in_books", payment,
                                          f"payment:{payment}:refunded:*", sum(booked.values()) if booked else None,
                                          stripe_amount))
    for key, amount in _posted_since(session, since).items():
        if key not in matched:
            differences.append(Difference("not_at_stripe", None, key, amount, None))
    return differences


# -- what the books hold -------------------------------------------------------------------------------------------
def _charge_keys(session: Session, intents: set[str]) -> dict[str, str]:
    if not intents:
        return {}
    found = {intent: f"payment:{pid}:captured" for pid, intent in session.execute(
        select(PaymentRow.id, PaymentRow.intent_id).where(PaymentRow.intent_id.in_(intents)))}
    found.update({ref: f"receipt:{rid}" for rid, ref in session.execute(
        select(LeaseReceiptRow.id, LeaseReceiptRow.reference).where(LeaseReceiptRow.reference.in_(intents),
                                                                    LeaseReceiptRow.source == "stripe"))})
    return found


def _refund_keys(session: Session, refunds: set[str]) -> dict[str, str]:
    if not refunds:
        return {}
    found = {ref: f"refund:{rid}" for rid, ref in session.execute(
        select(RefundRow.id, RefundRow.stripe_refund_id).where(RefundRow.stripe_refund_id.in_(refunds)))}
    found.update({ref: f"receipt:{rid}:refund" for rid, ref in session.execute(
        select(LeaseReceiptRow.id, LeaseReceiptRow.refund_ref).where(LeaseReceiptRow.refund_ref.in_(refunds)))})
    return found


def _transfer_keys(session: Session, transfers: set[str]) -> dict[str, str]:
    if not transfers:
        return {}
    return {ref: f"transfer:{pid}" for pid, ref in session.execute(
        select(PaymentRow.id, PaymentRow.transfer_id).where(PaymentRow.transfer_id.in_(transfers)))}


def _payment_of(session: Session, intent: str) -> str | None:
    return session.execute(select(PaymentRow.id).where(PaymentRow.intent_id == intent)).scalar_one_or_none()


def _clearing(session: Session, keys: list[str]) -> dict[str, int]:
    """Each entry's net movement of the Stripe clearing account (fen, debit positive)."""
    if not keys:
        return {}
    return {key: int(net) for key, net in session.execute(
        select(JournalEntryRow.key, func.sum(JournalLineRow.debit - JournalLineRow.credit))
        .join(JournalLineRow, JournalLineRow.entry_id == JournalEntryRow.id)
        .where(JournalEntryRow.key.in_(keys), JournalLineRow.account == origination.STRIPE)
        .group_by(JournalEntryRow.key))}


def _clearing_like(session: Session, pattern: str) -> dict[str, int]:
    return {key: int(net) for key, net in session.execute(
        select(JournalEntryRow.key, func.sum(JournalLineRow.debit - JournalLineRow.credit))
        .join(JournalLineRow, JournalLineRow.entry_id == JournalEntryRow.id)
        .where(JournalEntryRow.key.like(pattern), JournalLineRow.account == origination.STRIPE)
        .group_by(JournalEntryRow.key))}


def _posted_since(session: Session, since: datetime) -> dict[str, int]:
    """Our entries posted since ``since`` that moved the Stripe clearing account for a Stripe object (the
    origination's and the rent receipts' paid through Stripe), by key."""
    return {key: int(net) for key, net in session.execute(
        select(JournalEntryRow.key, func.sum(JournalLineRow.debit - JournalLineRow.credit))
        .join(JournalLineRow, JournalLineRow.entry_id == JournalEntryRow.id)
        .where(JournalEntryRow.posted_at >= since, JournalLineRow.account == origination.STRIPE,
               JournalEntryRow.kind.in_(OWN_KINDS) | JournalEntryRow.key.like("receipt:%"))
        .group_by(JournalEntryRow.key))}


def _keys_of(session: Session, ids: list[int]) -> tuple[str, ...]:
    if not ids:
        return ()
    return tuple(session.scalars(select(JournalEntryRow.key).where(JournalEntryRow.id.in_(ids))
                                 .order_by(JournalEntryRow.id)))


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0
