"""VAT in the books of leases in force (issue 19 §3) on a real PostgreSQL database of its own: leases commenced (their
rents' VAT to Pending), closes of business rolled over their due dates (each rent's tax point to output VAT, once, in
the close's batches), a replayed date and a close after a gap, the month's finance income net of VAT — and after it all
the output VAT is Σ tax of the rents fallen due, Pending the rest, the lease sub-ledger reconciles, the trial balance
balances and the Beancount export passes its sub-ledger assertions. Every tax figure is reckoned here from the rate's
definition (τ/(1+τ) = 13/113 in 2026, half up, Fraction), not by books/vat.py."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from fractions import Fraction

import pytest
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from bff.servicing.close import CloseOfBusiness
from books.accounts import UNEARNED
from books.accounts import VAT_INPUT
from books.accounts import VAT_OUTPUT
from books.accounts import VAT_PENDING
from books.chart import load_chart
from books.income import LeaseSchedule
from books.income import Rent
from books.income import monthly_income
from books.trial_balance import trial_balance
from infra.books_reconcile import lease_differences
from infra.db import Database
from infra.db.models import InstalmentRow
from infra.db.models import JournalEntryRow
from infra.db.models import LeaseRow
from infra.finance_income import recognise_month
from infra.servicing import SqlServicing
from tests.integration.test_books_lease import books_database
from tests.integration.test_servicing_close import open_lease
from tests.integration.test_servicing_close import record

pytestmark = pytest.mark.db
NOW = datetime(2026, 1, 10, 4, 0, tzinfo=UTC)
START = date(2026, 1, 10)


def tax(fen: int) -> int:
    """The VAT a tax-inclusive sum carries at 13 %: half_up(fen × 13 / 113)."""
    return int(Fraction(fen * 13, 113) + Fraction(1, 2))


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    yield from books_database("leaseline_books_vat")


def rows_of(db: Database, lease_id: str) -> list[InstalmentRow]:
    with db.session() as s:
        return list(s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)
                              .order_by(InstalmentRow.number)))


def balances(db: Database, lease_id: str, on: date) -> dict[str, int]:
    """The lease's balances through ``on`` (credit − debit, fen)."""
    with db.session() as s:
        return {a: int(v) for a, v in s.execute(text(
            "SELECT jl.account, SUM(jl.credit - jl.debit) FROM journal_lines jl JOIN journal_entries je "
            "ON je.id = jl.entry_id WHERE jl.lease_id = :lease AND je.booked_on <= :on GROUP BY jl.account"),
            {"lease": lease_id, "on": on})}


def vat_keys(db: Database) -> dict[str, date]:
    with db.session() as s:
        return {key: on for key, on in s.execute(select(JournalEntryRow.key, JournalEntryRow.value_date)
                                                 .where(JournalEntryRow.key.like("vat:%")))}


def test_closes_move_each_rent_s_vat_to_output_on_its_due_date_once(db: Database) -> None:
    repo = SqlServicing(db)
    repo.start_business_date(START, NOW)
    arrears = open_lease(repo, record(START, residual_ratio="0.2"))
    advance = open_lease(repo, record(START, timing="advance"))
    assert arrears and advance
    # rent 1 in advance falls due on the start: its tax point posted with the commencement
    first = rows_of(db, advance)[0]
    assert vat_keys(db) == {f"vat:{first.id}": START}

    close = CloseOfBusiness(repo, batch_size=1, clock=lambda: NOW)  # a batch a lease: tax points in each batch
    last = date(2026, 4, 15)
    close.close_until(last)
    for lease_id in (arrears, advance):
        rows = rows_of(db, lease_id)
        fallen = [r for r in rows if r.due_on <= last]
        assert len(fallen) == (3 if lease_id == arrears else 4)
        found = balances(db, lease_id, last)
        assert found[VAT_OUTPUT] == sum(tax(r.amount) for r in fallen)
        assert found[VAT_PENDING] == sum(tax(r.amount) for r in rows if r.due_on > last)
        # the commencement: the principal's share against input VAT, the interest's against unearned income
        assert -found[VAT_INPUT] == sum(tax(r.amount) - tax(r.interest) for r in rows)
    keys = vat_keys(db)
    assert keys == {f"vat:{r.id}": r.due_on for lease_id in (arrears, advance)
                                               for r in rows_of(db, lease_id) if r.due_on <= last}
    with db.session() as s:
        assert lease_differences(s, on=last) == []
        assert lease_differences(s, on=date(2026, 2, 28)) == []  # as it stood then
        count = s.scalar(select(func.count()).select_from(JournalEntryRow))

    # the same date again posts nothing
    again = close.close(last)
    assert again.already
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(JournalEntryRow)) == count

    # a lease opened late (its start three months back, never closed): the next close posts each rent due meanwhile
    late = open_lease(repo, record(START, residual_ratio="0.2"))
    assert late
    close.close_until(last + timedelta(days=2))
    due = [r for r in rows_of(db, late) if r.due_on <= last + timedelta(days=2)]
    assert len(due) == 3
    assert {k for k in vat_keys(db) if k in {f"vat:{r.id}" for r in due}} == {f"vat:{r.id}" for r in due}
    assert balances(db, late, last + timedelta(days=2))[VAT_OUTPUT] == sum(tax(r.amount) for r in due)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(JournalEntryRow).where(
            JournalEntryRow.key.like("vat:%"), JournalEntryRow.lease_id == late)) == 3
        assert lease_differences(s, on=last + timedelta(days=2)) == []

    # the trial balance balances
    with db.session() as s:
        totals = {a: int(v) for a, v in s.execute(text(
            "SELECT jl.account, SUM(jl.debit - jl.credit) FROM journal_lines jl JOIN journal_entries je "
            "ON je.id = jl.entry_id WHERE je.booked_on <= :on GROUP BY jl.account"), {"on": last})}
    shown = trial_balance(load_chart(), totals)
    assert shown["total_debit"] == shown["total_credit"]


def test_a_rent_received_in_full_ahead_is_taxed_the_day_it_is(db: Database) -> None:
    """收讫销售款项 before the contract's date: the receipt is the tax point (its e-invoice is issued then too); the
    close of its due date posts nothing more, and the sub-ledger holds on every day between."""
    import uuid
    from typing import cast

    from infra.collections import SqlCollections
    from plans.policy import load_policy
    from servicing.allocation import Component

    repo = SqlServicing(db)
    today = repo.business_date()
    lease_id = open_lease(repo, record(today - timedelta(days=5)))
    assert lease_id
    rent = rows_of(db, lease_id)[0]
    assert rent.due_on > today
    paid = SqlCollections(db).book(lease_id=lease_id, amount=rent.amount, source="stripe", key=f"vat:{uuid.uuid4()}",
                                   order=cast(tuple[Component, ...], load_policy().allocation_order),
                                   instalment_id=rent.id, now=NOW)
    assert paid.applied == rent.amount and rows_of(db, lease_id)[0].state == "paid"
    assert vat_keys(db)[f"vat:{rent.id}"] == today
    assert balances(db, lease_id, today)[VAT_OUTPUT] == tax(rent.amount)
    CloseOfBusiness(repo, clock=lambda: NOW).close_until(rent.due_on)
    with db.session() as s:
        assert s.scalar(select(func.count()).select_from(JournalEntryRow).where(
            JournalEntryRow.lease_id == lease_id, JournalEntryRow.key.like("vat:%"))) == 1
        for on in (today - timedelta(days=1), today, rent.due_on - timedelta(days=1), rent.due_on):
            assert lease_differences(s, [lease_id], on=on) == [], on


def test_finance_income_is_recognised_net_of_vat_and_the_books_export_checks(db: Database) -> None:
    """The months of the first lease recognised net of VAT (its interest less each rent's included tax, spread by
    day), the sub-ledger reconciling after them, and the export passing bean-check's balance assertions, the VAT
    pending among them."""
    from beancount import loader

    from infra.books_export import export
    from infra.books_export import snapshot

    with db.session() as s:
        lease = s.scalars(select(LeaseRow).where(LeaseRow.starts_on == START, LeaseRow.timing == "arrears")
                          .order_by(LeaseRow.created_at)).first()
        assert lease is not None
        lease_id = lease.id
    rows = rows_of(db, lease_id)
    for month in ("2026-01", "2026-02", "2026-03"):
        assert recognise_month(db, month, NOW, only=[lease_id]).posted == 1
    net = LeaseSchedule(START, rows[-1].due_on, "arrears", tuple(
        Rent(r.due_on, r.interest, r.amount, tax(r.amount), tax(r.interest)) for r in rows))
    expected = {m.month: m.amount for m in monthly_income(net)}
    found = balances(db, lease_id, date(2026, 3, 31))
    assert found["Income:Lease:Interest"] == expected["2026-01"] + expected["2026-02"] + expected["2026-03"]
    # Unearned holds the net interest not yet recognised: Σ (interest − its tax) less what the months took
    assert found[UNEARNED] == sum(r.interest - tax(r.interest) for r in rows) - found["Income:Lease:Interest"]
    assert sum(expected.values()) == sum(r.interest - tax(r.interest) for r in rows)
    with db.session() as s:
        assert lease_differences(s, on=date(2026, 3, 31)) == []
    out = io.StringIO()
    with snapshot(db) as conn:
        done = export(conn, out, date(2026, 4, 16))
    assert done.assertions > 0
    _entries, errors, _options = loader.load_string(out.getvalue())
    assert errors == []
    assert 'balance Liabilities:Tax:VAT:Pending' in out.getvalue()


def test_a_ledger_off_its_pending_vat_is_reported(db: Database) -> None:
    """A tax point posted twice under another key (or any stray Pending line of a lease) puts the lease out of line."""
    from books.entries import credit
    from books.entries import debit
    from books.entries import entry
    from infra.books import post
    from infra.books_reconcile import LeaseDifference

    with db.session() as s:
        lease_id = s.scalars(select(LeaseRow.id).order_by(LeaseRow.created_at)).first()
        assert lease_id is not None
        on = date(2026, 4, 16)
        before = {d for d in lease_differences(s, [lease_id], on=on)}
        assert before == set()
        stray = entry(f"test:vat-twice:{lease_id}", "vat_tax_point", on, [debit(VAT_PENDING, 7),
                                                                        credit(VAT_OUTPUT, 7)], lease_id=lease_id)
        post(s, [stray], NOW)
        pending = balances_in(s, lease_id, on)
        assert lease_differences(s, [lease_id], on=on) == [
            LeaseDifference(lease_id, VAT_PENDING, pending, pending + 7)]
        s.rollback()


def balances_in(s: object, lease_id: str, on: date) -> int:
    from sqlalchemy.orm import Session

    assert isinstance(s, Session)
    return int(s.execute(text(
        "SELECT COALESCE(SUM(jl.credit - jl.debit), 0) FROM journal_lines jl JOIN journal_entries je "
        "ON je.id = jl.entry_id WHERE jl.lease_id = :lease AND jl.account = :pending AND je.booked_on <= :on"),
        {"lease": lease_id, "pending": VAT_PENDING, "on": on}).scalar_one())
