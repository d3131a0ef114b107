"""The general ledger out of PostgreSQL (issue 19 §5): the Beancount export (books/beancount.py renders it), the trial
balance at a date, and the balances the export asserts at each month end.

The journal is streamed (a server-side cursor, :data:`CHUNK` rows at a time) and the file written as it is read:
millions of lines go through in constant memory. Everything is read in one REPEATABLE READ transaction
(:func:`snapshot`), so the entries, the journal's balances and the sub-ledgers' figures are of the same moment.

Balance assertions take their amounts from the sub-ledgers (:class:`SubLedger`: each lease's schedule, Stripe's
balance transactions, each dealer's transfers), independently of the journal, so that ``bean-check`` tests the
general ledger against them; an account no sub-ledger covers yet is asserted at the journal's own balance, and the
file says so beside it (books/beancount.py ``JOURNAL``)."""

from __future__ import annotations

import time
from collections.abc import Callable
from collections.abc import Iterator
from collections.abc import Mapping
from collections.abc import Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from datetime import timedelta
from typing import TextIO

from sqlalchemy import Connection
from sqlalchemy import Date
from sqlalchemy import cast
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlalchemy.orm import aliased

from books.accounts import VAT_PENDING
from books.beancount import JOURNAL
from books.beancount import Assertion
from books.beancount import Booked
from books.beancount import assertion_days
from books.beancount import render
from books.beancount import summary_entry
from books.chart import Chart
from books.chart import load_chart
from books.entries import Entry
from books.entries import Line
from books.lease import RECEIVABLE
from books.lease import UNEARNED
from infra.db.engine import Database
from infra.db.models import JournalEntryRow as E
from infra.db.models import JournalLineRow as L

R = aliased(E)  # the entry a reversal reverses

#: rows fetched from the server-side cursor at a time
CHUNK = 20_000

#: balances in fen, debit-positive, at the start of each day asked for: day → account → fen
Balances = Mapping[date, Mapping[str, int]]


@dataclass(frozen=True)
class SubLedger:
    """An independent source of some accounts' balances: ``balances(conn, days)`` answers each account's balance at the
    start of each day (fen, debit-positive: a liability owed is negative), computed from records other than the
    journal (a lease's schedule and what was paid, Stripe's balance, a dealer's transfers)."""

    name: str
    accounts: tuple[str, ...]
    balances: Callable[[Connection, Sequence[date]], Balances]


@dataclass(frozen=True)
class Exported:
    entries: int  # transactions written (entries, or daily summaries)
    assertions: int
    from_journal: int  # of which asserted at the journal's own balance (no sub-ledger)
    first: date | None
    seconds: float


@contextmanager
def snapshot(database: Database) -> Iterator[Connection]:
    """A read-only REPEATABLE READ transaction: every read in it sees the same moment of the ledger."""
    with database.engine.connect() as conn:
        conn = conn.execution_options(isolation_level="REPEATABLE READ")
        with conn.begin():
            conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            yield conn


def first_booked(conn: Connection) -> date | None:
    """The first day anything was booked (None: an empty journal)."""
    return conn.execute(select(func.min(E.booked_on))).scalar_one()


def journal(conn: Connection, chunk: int = CHUNK) -> Iterator[Booked]:
    """Every entry with its lines, by booked day and id, streamed ``chunk`` rows at a time."""
    rows = conn.execution_options(stream_results=True, max_row_buffer=chunk).execute(
        select(E.id, E.booked_on, E.key, E.kind, E.value_date, E.memo, E.lease_id, E.dealer_id, R.key, L.account,
               L.debit, L.credit, L.lease_id, L.dealer_id).join(L, L.entry_id == E.id)
        .outerjoin(R, R.id == E.reverses_id).order_by(E.booked_on, E.id, L.id))
    current: int | None = None
    head: tuple[object, ...] = ()
    lines: list[Line] = []
    for row in rows:
        if row[0] != current:
            if current is not None:
                yield _booked(head, lines)
            current, head, lines = row[0], tuple(row[1:9]), []
        lines.append(Line(row[9], int(row[10]), int(row[11]), row[12], row[13]))
    if current is not None:
        yield _booked(head, lines)


def _booked(head: tuple[object, ...], lines: list[Line]) -> Booked:
    booked_on, key, kind, value_date, memo, lease_id, dealer_id, reverses = head
    assert isinstance(booked_on, date) and isinstance(value_date, date)
    return Booked(booked_on, Entry(str(key), str(kind), value_date, tuple(lines), str(memo or ""),
                                   lease_id if isinstance(lease_id, str) else None,
                                   dealer_id if isinstance(dealer_id, str) else None,
                                   reverses if isinstance(reverses, str) else None))


def daily_summaries(conn: Connection, chunk: int = CHUNK) -> Iterator[Booked]:
    """One transaction per booked day and kind of event, one posting per account (netted), summed in the database."""
    counts = {(day, kind): int(n) for day, kind, n in conn.execute(
        select(E.booked_on, E.kind, func.count()).group_by(E.booked_on, E.kind))}
    rows = conn.execution_options(stream_results=True, max_row_buffer=chunk).execute(
        select(E.booked_on, E.kind, L.account, func.sum(L.debit), func.sum(L.credit)).join(L, L.entry_id == E.id)
        .group_by(E.booked_on, E.kind, L.account).order_by(E.booked_on, E.kind, L.account))
    current: tuple[date, str] | None = None
    totals: list[tuple[str, int, int]] = []
    for day, kind, account, debits, credits in rows:
        if (day, kind) != current:
            if current is not None and (made := summary_entry(*current, counts[current], totals)):
                yield made
            current, totals = (day, kind), []
        totals.append((account, int(debits), int(credits)))
    if current is not None and (made := summary_entry(*current, counts[current], totals)):
        yield made


def balances_through(conn: Connection, on: date) -> dict[str, int]:
    """Each account's closing balance at the end of ``on`` (fen, debit-positive), every account with a line booked
    through that day (zero balances too)."""
    return {account: int(fen) for account, fen in conn.execute(
        select(L.account, func.sum(L.debit - L.credit)).join(E, L.entry_id == E.id).where(E.booked_on <= on)
        .group_by(L.account))}


def journal_balances(conn: Connection, days: Sequence[date]) -> dict[date, dict[str, int]]:
    """The journal's balance of each account at the start of each of ``days``, from one pass of monthly sums."""
    monthly = conn.execute(
        select(cast(func.date_trunc("month", E.booked_on), Date).label("month"), L.account,
               func.sum(L.debit - L.credit))
        .join(E, L.entry_id == E.id).group_by("month", L.account).order_by("month")).all()
    answer: dict[date, dict[str, int]] = {}
    running: dict[str, int] = {}
    i = 0
    for day in sorted(days):
        while i < len(monthly) and monthly[i][0] < day:
            running[monthly[i][1]] = running.get(monthly[i][1], 0) + int(monthly[i][2])
            i += 1
        answer[day] = dict(running)
    return answer


def assertions(conn: Connection, chart: Chart, days: Sequence[date],
               subledgers: Sequence[SubLedger] = ()) -> list[Assertion]:
    """A balance assertion for each account of the chart at the start of each of ``days``: from the sub-ledger that
    covers the account, else from the journal (marked :data:`~books.beancount.JOURNAL`)."""
    if not days:
        return []
    sources: dict[str, SubLedger] = {}
    for ledger in subledgers:
        for account in ledger.accounts:
            sources.setdefault(account, ledger)
    figures = {ledger.name: ledger.balances(conn, days) for ledger in subledgers}
    own = journal_balances(conn, days)
    made = []
    for day in days:
        for account in chart.accounts:
            ledger = sources.get(account)
            if ledger is None:
                made.append(Assertion(day, account, own[day].get(account, 0), JOURNAL))
            else:
                made.append(Assertion(day, account, int(figures[ledger.name].get(day, {}).get(account, 0)),
                                      ledger.name))
    return made


def lease_schedules() -> SubLedger:
    """The lease payments receivable, the unearned finance income and the VAT pending as the leases' instalments and
    their movements say (the lease sub-ledger's check, infra/books_reconcile.py ``lease_differences``, where the
    definitions are written once): at the start of each day, the journal's balance less every lease's difference from
    its schedule through the day before — the schedules' figure for the leases' lines, the journal's for lines of no
    lease."""
    from infra.books_reconcile import lease_differences

    def balances(conn: Connection, days: Sequence[date]) -> Balances:
        own = journal_balances(conn, days)
        answer: dict[date, dict[str, int]] = {}
        with Session(bind=conn) as session:
            for day in days:
                found = lease_differences(session, on=day - timedelta(days=1))
                # a receivable's difference is debit-positive, the unearned income's credit-positive (the module's)
                answer[day] = {
                    RECEIVABLE: own[day].get(RECEIVABLE, 0) - sum(d.difference for d in found
                                                                  if d.account == RECEIVABLE),
                    UNEARNED: own[day].get(UNEARNED, 0) + sum(d.difference for d in found if d.account == UNEARNED),
                    # the VAT pending, credit-positive as the unearned income
                    VAT_PENDING: own[day].get(VAT_PENDING, 0) + sum(d.difference for d in found
                                                                    if d.account == VAT_PENDING)}
        return answer

    return SubLedger("lease schedules", (RECEIVABLE, UNEARNED, VAT_PENDING), balances)


def default_subledgers() -> tuple[SubLedger, ...]:
    """The sub-ledgers the export asserts against: the leases' schedules (:func:`lease_schedules`); Stripe's balance
    and the dealers' transfers have none yet (those accounts are asserted at the journal's own balance, and the file
    says so)."""
    return (lease_schedules(),)


def export(conn: Connection, out: TextIO, through: date, *, summary: bool = False,
           subledgers: Sequence[SubLedger] | None = None, chart: Chart | None = None) -> Exported:
    """Write the ledger to ``out`` as a Beancount file: every entry (``summary``: one transaction per day and kind)
    and balance assertions at each month end through ``through`` (sub-ledgers: :func:`default_subledgers` unless
    given). Read in ``conn``'s transaction (:func:`snapshot`)."""
    started = time.perf_counter()
    chart = chart or load_chart()
    first = first_booked(conn)
    days = assertion_days(first, through) if first else []
    checks = assertions(conn, chart, days, default_subledgers() if subledgers is None else subledgers)
    counted = [0]

    def entries() -> Iterator[Booked]:
        for booked in (daily_summaries(conn) if summary else journal(conn)):
            counted[0] += 1
            yield booked

    for text in render(chart, first or through, entries(), checks):
        out.write(text)
        out.write("\n")
    return Exported(counted[0], len(checks), sum(c.source == JOURNAL for c in checks), first,
                    time.perf_counter() - started)
