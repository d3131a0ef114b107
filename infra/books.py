"""The general ledger in PostgreSQL (issue 19, migration 0029): entries posted in the caller's transaction — the
transaction of the money event that causes them — once by key, checked against the chart of accounts first
(books/entries.py ``check``); the database refuses what does not balance and any update or delete. An entry dated in a
closed month is booked on the first day of the next open month, its own date kept (``value_date``)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC
from datetime import date
from datetime import datetime

from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.orm import Session

from books.chart import Chart
from books.chart import load_chart
from books.entries import Entry
from books.entries import Line
from books.entries import UnpostableEntry
from books.entries import check
from books.entries import reversal
from infra.db.models import JournalEntryRow
from infra.db.models import JournalLineRow
from infra.db.models import LedgerPeriodRow

#: lines sent in one INSERT at most (each entry's lines always in the same statement: the balance trigger checks
#: the entries a statement touched); the columns go as arrays, so this bounds a statement's size, not its parameters
LINES_A_STATEMENT = 5_000

__all__ = ["UnpostableEntry", "booked_on", "entry_of", "last_closed_month", "post", "reverse"]


def last_closed_month(session: Session) -> date | None:
    """The first day of the latest closed month of the books (None: none closed)."""
    return session.execute(select(func.max(LedgerPeriodRow.month))).scalar_one()


def booked_on(value_date: date, closed: date | None) -> date:
    """The day an event of ``value_date`` counts in the books: its own, unless its month is closed (``closed``: the
    latest closed month's first day), then the first day after the closed month."""
    if closed is None or value_date >= _next_month(closed):
        return value_date
    return _next_month(closed)


def post(session: Session, items: Sequence[Entry | None], now: datetime, *, chart: Chart | None = None) -> list[int]:
    """Post ``items`` in ``session``'s transaction; the ids of those posted now (an entry whose key is already in the
    journal is skipped: a replay posts nothing twice; a None — books.entries.entry's event that moved no money — is
    nothing to post). Raises :class:`UnpostableEntry` before writing anything when one cannot be posted (its whole
    transaction fails with it)."""
    chart = chart or load_chart()
    entries = [item for item in items if item is not None]
    if not entries:
        return []
    keys: set[str] = set()
    for item in entries:
        check(chart, item)
        if item.key in keys:
            raise UnpostableEntry(f"{item.key}: posted twice in one batch")
        keys.add(item.key)
    closed = last_closed_month(session)
    reverses = _ids_of(session, [item.reverses_key for item in entries if item.reverses_key])
    created: dict[str, int] = {key: entry_id for key, entry_id in session.execute(_INSERT_ENTRIES, {
        "keys": [item.key for item in entries], "kinds": [item.kind for item in entries],
        "value_dates": [item.value_date for item in entries],
        "booked": [booked_on(item.value_date, closed) for item in entries],
        "leases": [item.lease_id for item in entries], "dealers": [item.dealer_id for item in entries],
        "memos": [item.memo[:255] for item in entries],
        "reverses": [reverses.get(item.reverses_key) if item.reverses_key else None for item in entries],
        "chart_version": chart.version, "posted_at": now.astimezone(UTC)})}
    statement: list[tuple[int, Line]] = []
    for item in entries:
        entry_id = created.get(item.key)
        if entry_id is None:
            continue
        if statement and len(statement) + len(item.lines) > LINES_A_STATEMENT:
            _insert_lines(session, statement)
            statement = []
        statement.extend((entry_id, line) for line in item.lines)
    if statement:
        _insert_lines(session, statement)
    return [created[item.key] for item in entries if item.key in created]


#: one statement for a batch's entries, its columns as arrays (a few parameters however many entries: compiled once,
#: where a multi-row VALUES of bound parameters took SQLAlchemy and psycopg longer than PostgreSQL took to insert it)
_INSERT_ENTRIES = text(
    "INSERT INTO journal_entries (key, kind, value_date, booked_on, lease_id, dealer_id, memo, reverses_id, "
    "chart_version, posted_at) "
    "SELECT e.*, CAST(:chart_version AS varchar), CAST(:posted_at AS timestamptz) FROM unnest("
    "CAST(:keys AS varchar[]), CAST(:kinds AS varchar[]), CAST(:value_dates AS date[]), CAST(:booked AS date[]), "
    "CAST(:leases AS varchar[]), CAST(:dealers AS varchar[]), CAST(:memos AS varchar[]), "
    "CAST(:reverses AS bigint[])) AS e "
    "ON CONFLICT (key) DO NOTHING RETURNING key, id")
_INSERT_LINES = text(
    "INSERT INTO journal_lines (entry_id, account, debit, credit, lease_id, dealer_id) SELECT * FROM unnest("
    "CAST(:entries AS bigint[]), CAST(:accounts AS varchar[]), CAST(:debits AS bigint[]), CAST(:credits AS bigint[]), "
    "CAST(:leases AS varchar[]), CAST(:dealers AS varchar[]))")


def _insert_lines(session: Session, lines: Sequence[tuple[int, Line]]) -> None:
    """The lines in one statement (the balance trigger checks the entries a statement touched: each entry's lines are
    always in the same one)."""
    session.execute(_INSERT_LINES, {
        "entries": [entry_id for entry_id, _line in lines], "accounts": [line.account for _id, line in lines],
        "debits": [line.debit for _id, line in lines], "credits": [line.credit for _id, line in lines],
        "leases": [line.lease_id for _id, line in lines], "dealers": [line.dealer_id for _id, line in lines]})


def entry_of(session: Session, key: str) -> Entry | None:
    """The posted entry ``key`` as it stands in the journal (None: never posted)."""
    row = session.execute(select(JournalEntryRow).where(JournalEntryRow.key == key)).scalar_one_or_none()
    if row is None:
        return None
    lines = session.execute(select(JournalLineRow).where(JournalLineRow.entry_id == row.id)
                            .order_by(JournalLineRow.id)).scalars().all()
    return Entry(row.key, row.kind, row.value_date,
                 tuple(Line(li.account, li.debit, li.credit, li.lease_id, li.dealer_id) for li in lines),
                 row.memo, row.lease_id, row.dealer_id)


def reverse(session: Session, key: str, reversal_key: str, value_date: date, memo: str, now: datetime) -> int | None:
    """Post the reversal of entry ``key`` (a correction, never an edit) under ``reversal_key``, once; its id, or None
    when that reversal is posted already. Raises :class:`UnpostableEntry` when ``key`` was never posted."""
    original = entry_of(session, key)
    if original is None:
        raise UnpostableEntry(f"{key}: no such entry to reverse")
    posted = post(session, [reversal(original, reversal_key, value_date, memo)], now)
    return posted[0] if posted else None


def _ids_of(session: Session, keys: Sequence[str | None]) -> dict[str | None, int]:
    wanted = [key for key in keys if key]
    if not wanted:
        return {}
    found: dict[str | None, int] = {key: entry_id for key, entry_id in session.execute(
        select(JournalEntryRow.key, JournalEntryRow.id).where(JournalEntryRow.key.in_(wanted)))}
    missing = sorted(set(wanted) - set(found))
    if missing:
        raise UnpostableEntry(f"{missing[0]}: no such entry to reverse")
    return found


def _next_month(first: date) -> date:
    return date(first.year + (first.month == 12), first.month % 12 + 1, 1)
