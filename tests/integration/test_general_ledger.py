"""The general ledger's own rules, in PostgreSQL (issue 19 §1): an entry posts once by its key, an entry that does not
balance or names no account of the chart is refused before anything is written, the database itself refuses lines
that do not balance, entries without lines, and any update or delete (a correction is a reversal), and an event dated
in a closed month is booked on the first day of the next open one with its own date kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC
from datetime import date
from datetime import datetime

import pytest
from sqlalchemy import select
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from books.entries import Entry
from books.entries import UnpostableEntry
from books.entries import credit
from books.entries import debit
from books.entries import entry
from infra.books import post
from infra.books import reverse
from infra.db.engine import Database
from infra.db.models import JournalEntryRow
from infra.db.models import JournalLineRow
from infra.db.models import LedgerPeriodRow

pytestmark = pytest.mark.db
NOW = datetime(2026, 12, 7, 2, 0, tzinfo=UTC)
BANK, RECEIVABLE = "Assets:Bank:Collections", "Assets:LeaseReceivable:Payments"


@pytest.fixture()
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


def rent(key: str, fen: int, on: date = date(2026, 12, 7)) -> Entry:
    made = entry(key, "rent_collected", on, [debit(BANK, fen), credit(RECEIVABLE, fen)], lease_id="lease-1")
    assert made is not None
    return made


def test_an_entry_posts_once_by_its_key(db: Database) -> None:
    with db.session() as session:
        first = post(session, [rent("t:once", 123_456)], NOW)
        again = post(session, [rent("t:once", 123_456)], NOW)
    assert len(first) == 1 and again == []
    with db.session() as session:
        lines = session.execute(select(JournalLineRow.account, JournalLineRow.debit, JournalLineRow.credit,
                                       JournalLineRow.lease_id).where(JournalLineRow.entry_id == first[0])
                                .order_by(JournalLineRow.id)).all()
    assert lines == [(BANK, 123_456, 0, "lease-1"), (RECEIVABLE, 0, 123_456, "lease-1")]


def test_what_cannot_be_posted_is_refused_before_anything_is_written(db: Database) -> None:
    unbalanced = entry("t:unbalanced", "rent_collected", date(2026, 12, 7), [debit(BANK, 100), credit(RECEIVABLE, 99)])
    unknown = entry("t:unknown", "rent_collected", date(2026, 12, 7), [debit("Assets:Nowhere", 100),
                                                                         credit(RECEIVABLE, 100)])
    for bad in (unbalanced, unknown):
        with pytest.raises(UnpostableEntry), db.session() as session:
            post(session, [rent("t:before-bad", 5), bad], NOW)
    with pytest.raises(UnpostableEntry, match="whole fen"):
        entry("t:fraction", "rent_collected", date(2026, 12, 7), [debit(BANK, 1.5), credit(RECEIVABLE, 1.5)])  # type: ignore[arg-type]
    with db.session() as session:
        assert session.execute(select(JournalEntryRow.id).where(JournalEntryRow.key.like("t:%bad%"))).all() == []


def test_the_database_refuses_unbalanced_lines_entries_without_lines_and_any_edit(db: Database) -> None:
    with db.session() as session:
        entry_id = post(session, [rent("t:edit", 500)], NOW)[0]
    statements = [
        f"UPDATE journal_lines SET debit = 400 WHERE entry_id = {entry_id} AND debit > 0",
        f"DELETE FROM journal_lines WHERE entry_id = {entry_id}",
        f"UPDATE journal_entries SET memo = 'x' WHERE id = {entry_id}",
        f"DELETE FROM journal_entries WHERE id = {entry_id}",
        "TRUNCATE journal_lines CASCADE",
        f"INSERT INTO journal_lines (entry_id, account, debit, credit) VALUES ({entry_id}, '{BANK}', 1, 0)",
        "INSERT INTO journal_entries (key, kind, value_date, booked_on, memo, chart_version, posted_at) "
        "VALUES ('t:bare', 'x', '2026-12-07', '2026-12-07', '', 'x', now())",
    ]
    for statement in statements:
        with pytest.raises(DBAPIError), db.session() as session:
            session.execute(text(statement))
    with db.session() as session:
        assert session.execute(select(JournalLineRow.debit + JournalLineRow.credit).where(
            JournalLineRow.entry_id == entry_id)).scalars().all() == [500, 500]


def test_a_correction_is_a_reversal_and_a_closed_month_books_late_events_in_the_next(db: Database) -> None:
    with db.session() as session:
        post(session, [rent("t:wrong", 700, date(2026, 10, 30))], NOW)
        session.add(LedgerPeriodRow(month=date(2026, 10, 1), closed_at=NOW, closed_by="ops-1", approved_by="ops-2"))
    with db.session() as session:
        undone = reverse(session, "t:wrong", "t:wrong:reversed", date(2026, 10, 31), "wrong lease", NOW)
        assert reverse(session, "t:wrong", "t:wrong:reversed", date(2026, 10, 31), "again", NOW) is None
        late = post(session, [rent("t:late", 300, date(2026, 10, 31))], NOW)
    with db.session() as session:
        rows = {row.key: row for row in session.scalars(select(JournalEntryRow).where(
            JournalEntryRow.key.in_(["t:wrong", "t:wrong:reversed", "t:late"])))}
        reversed_lines = session.execute(select(JournalLineRow.account, JournalLineRow.debit, JournalLineRow.credit)
                                         .where(JournalLineRow.entry_id == undone).order_by(JournalLineRow.id)).all()
    assert rows["t:wrong:reversed"].reverses_id == rows["t:wrong"].id
    assert [tuple(r) for r in reversed_lines] == [(BANK, 0, 700), (RECEIVABLE, 700, 0)]
    assert (rows["t:late"].value_date, rows["t:late"].booked_on) == (date(2026, 10, 31), date(2026, 11, 1))
    assert rows["t:wrong:reversed"].booked_on == date(2026, 11, 1) and late == [rows["t:late"].id]
