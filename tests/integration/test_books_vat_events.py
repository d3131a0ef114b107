"""VAT on the events outside a rent's normal life, end to end on a real PostgreSQL database of its own (issue 19 §3):
an early settlement, a partial prepayment, a returned car, a purchase price, a lease backfilled and a lease commenced
before VAT brought in. After each event the lease's Liabilities:Tax:VAT:Pending holds only the tax of the rents still
to fall due (nothing once the lease is settled or its car returned), Output holds the VAT of what was charged, the lease
sub-ledger (infra/books_reconcile.py) reconciles, and a replay posts nothing twice. Every expected figure is computed
here from the definition — half_up(x × 13/113), a direct lease's rate in force since 2019-04-01 — never by books/vat.py.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from fractions import Fraction
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from bff.servicing.lease_page import quote
from bff.servicing.lease_page import settlement_dates
from books.entries import Entry
from books.income import LeaseSchedule
from books.income import Rent
from books.income import income_entry
from books.income import month_end
from books.income import month_of
from books.income import recognised_through
from books.lease import Scheduled
from books.lease import collected_outside
from books.lease import commenced
from books.lease import tax_point
from infra import books
from infra.books_reconcile import lease_differences
from infra.collections import PREPAYMENT
from infra.collections import SETTLEMENT
from infra.collections import SqlCollections
from infra.db import Database
from infra.db.models import ApplicationRow
from infra.db.models import InstalmentRow
from infra.db.models import InvoiceRequestRow
from infra.db.models import JournalEntryRow
from infra.db.models import JournalLineRow
from infra.db.models import LeaseRow
from infra.db.models import LeaseTermRow
from infra.db.models import PaymentRow
from infra.db.models import ServicingMovementRow
from infra.db.models import SettlementQuoteRow
from infra.end_of_term import Inspection
from infra.end_of_term import SqlEndOfTerm
from infra.finance_income import recognise_month
from infra.finance_income import recognised
from infra.lease_backfill import SqlLeaseBackfill
from infra.prepayments import SqlPrepayments
from infra.servicing import SqlServicing
from infra.servicing import lease_plan
from infra.settlements import SqlSettlements
from infra.vat_catchup import catch_up
from leaseline.cli import main
from plans.policy import load_policy
from plans.timeline import add_months
from tests.integration.test_books_lease import books_database
from tests.integration.test_servicing_close import DEALER
from tests.integration.test_servicing_close import fen
from tests.integration.test_servicing_close import open_lease
from tests.integration.test_servicing_close import record

pytestmark = pytest.mark.db
TODAY = date(2026, 3, 20)  # the business date (a Friday): January and February closed
NOW = datetime(2026, 3, 20, 2, 0, tzinfo=UTC)
ORDER = ("penalty", "interest", "principal")
PENDING, OUTPUT, INPUT = "Liabilities:Tax:VAT:Pending", "Liabilities:Tax:VAT:Output", "Liabilities:Tax:VAT:Input"
RECEIVABLE, UNEARNED, INTEREST = "Assets:LeaseReceivable:Payments", "Assets:LeaseReceivable:Unearned", \
    "Income:Lease:Interest"
LEASE_PAYMENTS = ("rent", "final_rent")


def vat(fen: int) -> int:
    """half_up(fen × 13/113), halves away from zero: the VAT a tax-inclusive sum of a direct lease carries."""
    return (1 if fen >= 0 else -1) * int(Fraction(abs(fen) * 13, 113) + Fraction(1, 2))


def on_principal(amount: int, interest: int) -> int:
    """The principal's share of a rent's VAT: the rent's tax less its interest's."""
    return vat(amount) - vat(interest)


@pytest.fixture(scope="module")
def db() -> Iterator[Database]:
    for database in books_database("leaseline_books_vat_events"):
        SqlServicing(database).start_business_date(TODAY, NOW)
        yield database


def lease(db: Database, starts_on: date, timing: str = "arrears", residual: str = "0.2") -> str:
    lease_id = open_lease(SqlServicing(db), record(starts_on, timing=timing, residual_ratio=residual))
    assert lease_id is not None
    return lease_id


def instalments(db: Database, lease_id: str) -> list[InstalmentRow]:
    with db.session() as s:
        return list(s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)
                              .order_by(InstalmentRow.number)))


def balances(db: Database, lease_id: str) -> dict[str, int]:
    """The lease's balances by account (debit − credit, fen)."""
    with db.session() as s:
        return {a: int(t) for a, t in s.execute(
            select(JournalLineRow.account, func.sum(JournalLineRow.debit - JournalLineRow.credit))
            .where(JournalLineRow.lease_id == lease_id).group_by(JournalLineRow.account))}


def keys(db: Database, lease_id: str) -> list[tuple[str, str, date]]:
    with db.session() as s:
        return sorted((k, kind, d) for k, kind, d in s.execute(
            select(JournalEntryRow.key, JournalEntryRow.kind, JournalEntryRow.value_date)
            .where(JournalEntryRow.lease_id == lease_id)))


def closes_through(db: Database, lease_id: str, through: date) -> None:
    """What the closes through ``through`` posted of the lease's VAT (these tests run none): each rent's tax point,
    ``vat:<instalment>`` on its due date (books/lease.py ``tax_point``, its tax from the definition); the lease's
    ``closed_through`` moved there."""
    rows = [i for i in instalments(db, lease_id) if i.kind in LEASE_PAYMENTS and i.due_on <= through]
    with db.session() as s:
        s.execute(text("UPDATE leases SET closed_through = :d WHERE id = :id"), {"d": through, "id": lease_id})
        books.post(s, [tax_point(i.id, lease_id, DEALER, i.due_on, vat(i.amount)) for i in rows], NOW)


def asked(db: Database, lease_id: str, instalment_id: int) -> list[str]:
    """The keys of the e-invoice requests made for the lease's instalment ``instalment_id``."""
    with db.session() as s:
        return list(s.scalars(select(InvoiceRequestRow.key).where(InvoiceRequestRow.lease_id == lease_id,
                                                                  InvoiceRequestRow.instalment_id == instalment_id)))


def differences(db: Database, lease_id: str) -> list[Any]:
    with db.session() as s:
        return lease_differences(s, [lease_id], on=TODAY)


def replayed(db: Database, lease_id: str, prefix: str) -> list[int]:
    """The lease's entries whose key starts with ``prefix`` posted again: the ids posted (none, the keys)."""
    with db.session() as s:
        again = [books.entry_of(s, k) for k, _, _ in keys(db, lease_id) if k.startswith(prefix)]
        return books.post(s, [e for e in again if e is not None], NOW)


# -- an early settlement ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("timing", ["arrears", "advance"])
def test_a_lease_settled_early_ends_with_no_pending_vat_and_output_the_vat_of_what_was_collected(
        db: Database, timing: str) -> None:
    # arrears: rents due 02-25 (paid) and 03-25, after the business date but by the settlement day (paid by the
    # settlement before it falls due: its tax point is the day the money comes); never closed, its tax points come
    # with the settlement. In advance: the closes ran through yesterday.
    starts_on = date(2026, 1, 25) if timing == "arrears" else date(2026, 1, 10)
    lease_id = lease(db, starts_on, timing)
    if timing == "advance":
        closes_through(db, lease_id, TODAY - timedelta(days=1))
    first = next(i for i in instalments(db, lease_id) if i.kind == "rent" and i.state != "paid")
    SqlCollections(db).book(lease_id=lease_id, amount=first.amount, source="stripe", key=f"r1:{uuid.uuid4()}",
                            order=ORDER, now=NOW)  # one rent paid, the next left to the settlement
    for month in ("2026-01", "2026-02"):
        recognise_month(db, month, NOW, only=[lease_id])
    servicing = SqlServicing(db)
    with db.session() as s:
        row = s.get(LeaseRow, lease_id)
        assert row is not None
        rows = list(s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)))
        on = settlement_dates(row, rows, TODAY, servicing.calendar()).earliest
        assert on is not None
        made = quote(row, rows, on, servicing.calendar())
    quote_id = SqlSettlements(db).offer(lease_id, made, requested_by="customer", now=NOW)
    with db.session() as s:
        q = s.get(SettlementQuoteRow, quote_id)
        assert q is not None and q.arrears > 0
        amount, accrued, fee = q.amount_due, q.accrued_interest, q.early_settlement_fee
        principal = q.outstanding_principal
    collections, key = SqlCollections(db), f"settle:{uuid.uuid4()}"
    attempt, _ = collections.start_attempt(lease_id=lease_id, amount=amount, channel="stripe", trigger="customer",
                                           key=key, business_date=TODAY, now=NOW, purpose=SETTLEMENT,
                                           subject_id=quote_id)
    assert collections.book(lease_id=lease_id, amount=amount, source="stripe", key=key, order=ORDER,
                            attempt_id=attempt.id, now=NOW).applied > 0
    with db.session() as s:
        q = s.get(SettlementQuoteRow, quote_id)
        assert q is not None and q.penalties_booked is not None
        charges = q.penalties_booked
    rows = instalments(db, lease_id)
    paid = [i for i in rows if i.kind == "rent" and i.due_on <= on]
    replaced = [i for i in rows if i.state == "settled"]
    assert paid and replaced and len(paid) + len(replaced) == len(rows)
    if timing == "arrears":
        assert any(i.due_on > TODAY for i in paid)  # paid ahead of its due date by the settlement
    difference = principal - sum(i.principal for i in replaced)
    posted = {k: (kind, d) for k, kind, d in keys(db, lease_id)}
    # each rent it paid has its tax point, once: on its due date, or the day the settlement paid it when earlier
    for i in paid:
        assert posted[f"vat:{i.id}"] == ("vat_tax_point", min(i.due_on, TODAY))
    assert posted[f"settlement:{quote_id}:vat"] == ("vat_replaced", TODAY)
    b = balances(db, lease_id)
    assert b.get(PENDING, 0) == 0
    # Output: the rents it paid, the replaced rents' principal (repaid on the day), the settlement's interest to the
    # day (in advance less rent K's interest given back), its fee and the late charges it collected
    assert -b[OUTPUT] == (sum(vat(i.amount) for i in paid) + sum(on_principal(i.amount, i.interest) for i in replaced)
                          + vat(accrued + difference) + vat(fee) + vat(charges))
    assert b[INPUT] == sum(on_principal(i.amount, i.interest) for i in rows)  # the commencement's
    assert -b["Income:Other:Fees"] == fee - vat(fee)
    assert -b[INTEREST] == (sum(i.interest - vat(i.interest) for i in paid)
                            + accrued + difference - vat(accrued + difference))
    assert b.get(UNEARNED, 0) == 0 and b.get(RECEIVABLE, 0) == 0
    assert differences(db, lease_id) == []
    # the payment's webhook again, the entries posted again: nothing more
    assert collections.book(lease_id=lease_id, amount=amount, source="stripe", key=key, order=ORDER,
                            attempt_id=attempt.id, now=NOW).replay
    assert replayed(db, lease_id, "settlement:") == [] and replayed(db, lease_id, "vat:") == []
    assert balances(db, lease_id) == b


# -- a partial prepayment ---------------------------------------------------------------------------------------------
def test_a_lease_with_every_rent_paid_ahead_settles_and_owes_the_lessee_what_it_gives_back(db: Database) -> None:
    # every rent paid (those not due yet ahead): the quote gives back the interest paid ahead, more than it charges,
    # and the deposit: confirmed, the settlement credits what it gives back beyond the deposit to Unapplied (to be
    # refunded), the deposit refunded whole by the settle job
    lease_id = lease(db, date(2026, 1, 25), "arrears", residual="0")
    col = SqlCollections(db)
    for i in instalments(db, lease_id):
        col.book(lease_id=lease_id, amount=i.amount, source="stripe", key=f"a:{i.id}", order=ORDER, now=NOW,
                 instalment_id=i.id)
    servicing = SqlServicing(db)
    with db.session() as s:
        row = s.get(LeaseRow, lease_id)
        assert row is not None
        rows = list(s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)))
        made = quote(row, rows, settlement_dates(row, rows, TODAY, servicing.calendar()).earliest,
                     servicing.calendar())
    quote_id = SqlSettlements(db).offer(lease_id, made, requested_by="customer", now=NOW)
    with db.session() as s:
        q = s.get(SettlementQuoteRow, quote_id)
        assert q is not None
        amount, offset = q.amount_due, q.deposit_offset
    assert amount < 0 and -amount > offset
    unapplied = balances(db, lease_id).get("Liabilities:Unapplied:Lessees", 0)
    SqlSettlements(db).confirm(lease_id, quote_id, NOW)
    with db.session() as s:
        assert s.get(LeaseRow, lease_id).status == "settled"  # type: ignore[union-attr]
    b = balances(db, lease_id)
    assert b.get("Liabilities:Unapplied:Lessees", 0) - unapplied == amount + offset  # owed to the lessee
    assert b.get(PENDING, 0) == 0
    assert differences(db, lease_id) == []


def invoiced_tax(db: Database, lease_id: str) -> int:
    """Σ tax of the lease's e-invoice requests, their lines as the issuing task makes them (infra/invoicing.py
    lines_for); a red one counts against."""
    from books.vat import load_tax_policy
    from infra.invoicing import lines_for

    policy = load_tax_policy()
    with db.session() as s:
        rows = list(s.scalars(select(InvoiceRequestRow).where(InvoiceRequestRow.lease_id == lease_id)))
    return sum(sum(li.tax for li in lines_for(json.loads(r.facts), policy)) * (1 if r.kind == "blue" else -1)
               for r in rows)


@pytest.mark.parametrize("timing", ["arrears", "advance"])
def test_what_a_settled_lease_invoiced_carries_exactly_the_output_vat_its_books_posted(db: Database,
                                                                                       timing: str) -> None:
    lease_id = lease(db, date(2026, 1, 25) if timing == "arrears" else date(2026, 1, 10), timing, residual="0.2")
    if timing == "advance":
        closes_through(db, lease_id, TODAY - timedelta(days=1))
    first = next(i for i in instalments(db, lease_id) if i.kind == "rent" and i.state != "paid")
    col = SqlCollections(db)
    col.book(lease_id=lease_id, amount=first.amount, source="stripe", key=f"r1:{uuid.uuid4()}", order=ORDER, now=NOW)
    for month in ("2026-01", "2026-02"):
        recognise_month(db, month, NOW, only=[lease_id])
    servicing = SqlServicing(db)
    with db.session() as s:
        row = s.get(LeaseRow, lease_id)
        assert row is not None
        rows = list(s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)))
        made = quote(row, rows, settlement_dates(row, rows, TODAY, servicing.calendar()).earliest,
                     servicing.calendar())
    quote_id = SqlSettlements(db).offer(lease_id, made, requested_by="customer", now=NOW)
    with db.session() as s:
        amount = s.get(SettlementQuoteRow, quote_id).amount_due  # type: ignore[union-attr]
    key = f"settle:{uuid.uuid4()}"
    attempt, _ = col.start_attempt(lease_id=lease_id, amount=amount, channel="stripe", trigger="customer", key=key,
                                   business_date=TODAY, now=NOW, purpose=SETTLEMENT, subject_id=quote_id)
    col.book(lease_id=lease_id, amount=amount, source="stripe", key=key, order=ORDER, attempt_id=attempt.id, now=NOW)
    assert -balances(db, lease_id)[OUTPUT] == invoiced_tax(db, lease_id)


def test_a_rent_s_late_charge_paid_by_two_receipts_is_invoiced_with_the_tax_each_receipt_posted(db: Database) -> None:
    # rent 1 overdue with 8 fen of late charges, paid by two receipts of 4 fen of them each: each receipt's 4 fen
    # carries half_up(4 × 13/113) = 0 in the books, so the rent's invoice carries 0 on its 8 fen too (not 1)
    lease_id = lease(db, date(2026, 2, 10))
    closes_through(db, lease_id, TODAY - timedelta(days=1))
    rent1 = next(i for i in instalments(db, lease_id) if i.number == 1)
    with db.session() as s:
        s.execute(text("UPDATE instalments SET state = 'overdue', penalty_accrued = 8 WHERE id = :id"),
                  {"id": rent1.id})
    col = SqlCollections(db)
    col.book(lease_id=lease_id, amount=4, source="stripe", key=f"c1:{uuid.uuid4()}", order=ORDER, now=NOW,
             instalment_id=rent1.id)
    col.book(lease_id=lease_id, amount=rent1.amount + 4, source="stripe", key=f"c2:{uuid.uuid4()}", order=ORDER,
             now=NOW, instalment_id=rent1.id)
    assert next(i for i in instalments(db, lease_id) if i.id == rent1.id).paid_penalty == 8
    assert -balances(db, lease_id)[OUTPUT] == vat(rent1.amount) + 2 * vat(4)
    assert invoiced_tax(db, lease_id) == -balances(db, lease_id)[OUTPUT]


def test_a_prepayment_is_invoiced_with_the_output_vat_it_posted(db: Database) -> None:
    lease_id = lease(db, date(2026, 1, 10))
    closes_through(db, lease_id, TODAY - timedelta(days=1))
    owed = sum(i.amount for i in instalments(db, lease_id) if i.kind == "rent" and i.due_on <= TODAY)
    col = SqlCollections(db)
    col.book(lease_id=lease_id, amount=owed, source="stripe", key=f"due:{uuid.uuid4()}", order=ORDER, now=NOW)
    output, invoiced = -balances(db, lease_id)[OUTPUT], invoiced_tax(db, lease_id)
    repo = SqlPrepayments(db)
    offer = repo.offer(lease_id, 2_000_000, "customer", NOW)
    repo.choose(lease_id, offer.id, "lower_rent")
    key = f"prepay:{uuid.uuid4()}"
    attempt, _ = col.start_attempt(lease_id=lease_id, amount=offer.total, channel="stripe", trigger="customer",
                                   key=key, business_date=TODAY, now=NOW, purpose=PREPAYMENT, subject_id=offer.id)
    repo.attach(offer.id, attempt.id)
    col.book(lease_id=lease_id, amount=offer.total, source="stripe", key=key, order=load_policy().allocation_order,
             attempt_id=attempt.id, now=NOW)
    posted = -balances(db, lease_id)[OUTPUT] - output
    assert posted > 0
    with db.session() as s:
        keys_ = list(s.scalars(select(InvoiceRequestRow.key).where(InvoiceRequestRow.lease_id == lease_id,
                                                                   InvoiceRequestRow.key.like("prepayment:%"))))
    assert keys_ == [f"prepayment:{offer.id}"]
    assert invoiced_tax(db, lease_id) - invoiced == posted


@pytest.mark.parametrize("option", ["shorter_term", "lower_rent"])
def test_a_prepayment_leaves_pending_the_new_schedule_s_vat_and_taxes_the_principal_prepaid(db: Database,
                                                                                          option: str) -> None:
    lease_id = lease(db, date(2026, 1, 10))
    closes_through(db, lease_id, TODAY - timedelta(days=1))
    owed = sum(i.amount for i in instalments(db, lease_id) if i.kind == "rent" and i.due_on <= TODAY)
    SqlCollections(db).book(lease_id=lease_id, amount=owed, source="stripe", key=f"due:{uuid.uuid4()}", order=ORDER,
                            now=NOW)
    for month in ("2026-01", "2026-02"):
        recognise_month(db, month, NOW, only=[lease_id])
    before = {i.id: i for i in instalments(db, lease_id)}
    output_before = balances(db, lease_id)[OUTPUT]
    repo, collections = SqlPrepayments(db), SqlCollections(db)
    offer = repo.offer(lease_id, 2_000_000, "customer", NOW)
    repo.choose(lease_id, offer.id, option)
    key = f"prepay:{uuid.uuid4()}"
    attempt, _ = collections.start_attempt(lease_id=lease_id, amount=offer.total, channel="stripe",
                                           trigger="customer", key=key, business_date=TODAY, now=NOW,
                                           purpose=PREPAYMENT, subject_id=offer.id)
    repo.attach(offer.id, attempt.id)
    assert collections.book(lease_id=lease_id, amount=offer.total, source="stripe", key=key,
                            order=load_policy().allocation_order, attempt_id=attempt.id, now=NOW).applied == offer.total
    after = {i.id: i for i in instalments(db, lease_id)}
    moved = [i for i in after.values() if i.due_on > TODAY or i.kind == "final_rent" or i.state == "cancelled"]
    assert (option == "shorter_term") == any(i.state == "cancelled" for i in moved)
    b = balances(db, lease_id)
    # Pending: exactly the tax of the rents still to fall due, as they are now
    assert b[PENDING] == -sum(vat(i.amount) for i in after.values() if i.due_on > TODAY and i.kind in LEASE_PAYMENTS)
    # Output: the interest line's tax and the principal prepaid's, as the rents carried it before and after
    share = sum(on_principal(before[i.id].amount, before[i.id].interest) - on_principal(i.amount, i.interest)
                for i in moved)
    assert output_before - b[OUTPUT] == vat(offer.accrued_interest) + share
    assert abs(share - vat(2_000_000)) <= len(moved)  # the lump sum's tax, within a fen a rent
    assert differences(db, lease_id) == []
    assert collections.book(lease_id=lease_id, amount=offer.total, source="stripe", key=key,
                            order=load_policy().allocation_order, attempt_id=attempt.id, now=NOW).replay
    assert replayed(db, lease_id, "prepayment:") == []
    assert balances(db, lease_id) == b


# -- the end of the term ----------------------------------------------------------------------------------------------
def test_a_car_returned_on_the_term_s_last_day_takes_the_final_rent_s_vat_out_of_pending(db: Database) -> None:
    # rents in advance: the last falls due a month before the term's end, today; the final rent's tax point (today)
    # has not come with a close yet when the dealer inspects the car
    lease_id = lease(db, add_months(TODAY, -12), "advance")
    closes_through(db, lease_id, TODAY - timedelta(days=1))
    final = next(i for i in instalments(db, lease_id) if i.kind == "final_rent")
    assert final.due_on == TODAY
    eot = SqlEndOfTerm(db)
    eot.choose(lease_id, "return", by="customer", terms={}, purchase_price=0, now=NOW)
    eot.record_inspection(lease_id, Inspection(20_100, (), (), 0, 0, "", "staff", {}), NOW)
    rows = instalments(db, lease_id)
    b = balances(db, lease_id)
    assert b.get(PENDING, 0) == 0
    assert -b[OUTPUT] == sum(vat(i.amount) for i in rows if i.kind == "rent")  # never the final rent's
    assert b[INPUT] == sum(on_principal(i.amount, i.interest) for i in rows if i.kind in LEASE_PAYMENTS)
    # the car back at its principal less the principal's share of the final rent's VAT
    assert b["Assets:Vehicles:Returned"] == final.principal - on_principal(final.amount, final.interest)
    assert differences(db, lease_id) == []
    assert replayed(db, lease_id, "car_returned:") == []


def test_the_deposit_paying_the_last_rent_before_its_due_date_is_its_tax_point(db: Database) -> None:
    # a lease ending 20 days after the business date whose contract lets the car come back 30 days early; every rent
    # paid but the last (due on the term's end), the closes through yesterday; the inspection applies the deposit
    # (¥20,000 held: the lease's terms and the deposit payment, as a handover leaves them) to the last rent in full
    lease_id = lease(db, add_months(TODAY + timedelta(days=20), -12))
    rows = instalments(db, lease_id)
    last = max((i for i in rows if i.kind == "rent"), key=lambda i: i.due_on)
    assert last.due_on == TODAY + timedelta(days=20)
    SqlCollections(db).book(lease_id=lease_id, amount=sum(i.amount for i in rows if i.kind == "rent" and i is not last),
                            source="stripe", key=f"all:{uuid.uuid4()}", order=ORDER, now=NOW)
    closes_through(db, lease_id, TODAY - timedelta(days=1))
    with db.session() as s:
        row = s.get(LeaseRow, lease_id)
        assert row is not None
        row.deposit = 2_000_000
        row.terms = json.dumps({**json.loads(row.terms), "end_of_term": {"return_window_days": 30}})
        s.add(LeaseTermRow(application_id=row.application_id, dealer_id=DEALER, term_months=12,
                           starts_on=row.starts_on, ends_on=row.ends_on, delivered_at=NOW, delivered_by="sales",
                           delivered_by_label="sales", deduction=0))
        s.add(PaymentRow(id=str(uuid.uuid4()), application_id=row.application_id, dealer_id=DEALER, kind="deposit",
                         amount=2_000_000, status="succeeded", intent_id=f"pi_{uuid.uuid4().hex[:20]}",
                         captured=2_000_000, refunded=0, created_at=NOW, updated_at=NOW))
    eot = SqlEndOfTerm(db)
    eot.choose(lease_id, "return", by="customer", terms={}, purchase_price=0, now=NOW)
    eot.record_inspection(lease_id, Inspection(20_100, (), (), 0, 0, "", "staff", {}), NOW)
    rows = instalments(db, lease_id)
    assert next(i for i in rows if i.id == last.id).state == "paid"
    posted = {k: (kind, d) for k, kind, d in keys(db, lease_id)}
    assert posted[f"vat:{last.id}"] == ("vat_tax_point", TODAY)  # received before its due date
    b = balances(db, lease_id)
    assert b.get(PENDING, 0) == 0
    assert -b[OUTPUT] == sum(vat(i.amount) for i in rows if i.kind == "rent")
    assert differences(db, lease_id) == []
    assert asked(db, lease_id, last.id) == [f"rent:{last.id}"]  # taxed: its e-invoice asked for
    with db.session() as s:  # its tax point the day the deposit paid it (before its due date), the rule of that day
        request = s.scalars(select(InvoiceRequestRow).where(InvoiceRequestRow.instalment_id == last.id)).one()
    assert request.tax_point == TODAY and json.loads(request.facts)["parts"][0]["tax_point"] == TODAY.isoformat()


def test_a_final_rent_part_paid_ahead_then_offset_by_the_returned_car_taxes_the_part_paid(db: Database) -> None:
    # every rent paid, the final rent's ¥1,000 of it ahead; the car comes back before the final rent's due date: the
    # rest of it is waived, the part received is taxed on the return day (its tax point never came with a close)
    lease_id = lease(db, add_months(TODAY + timedelta(days=20), -12), residual="0.2")
    rows = instalments(db, lease_id)
    final = next(i for i in rows if i.kind == "final_rent")
    assert final.due_on > TODAY
    col = SqlCollections(db)
    for i in rows:
        if i.kind == "rent":
            col.book(lease_id=lease_id, amount=i.amount, source="stripe", key=f"r:{i.id}", order=ORDER, now=NOW,
                     instalment_id=i.id)
    col.book(lease_id=lease_id, amount=1_000_00, source="stripe", key=f"f:{final.id}", order=ORDER, now=NOW,
             instalment_id=final.id)
    closes_through(db, lease_id, TODAY - timedelta(days=1))
    with db.session() as s:
        row = s.get(LeaseRow, lease_id)
        assert row is not None
        row.terms = json.dumps({**json.loads(row.terms), "end_of_term": {"return_window_days": 30}})
    eot = SqlEndOfTerm(db)
    eot.choose(lease_id, "return", by="customer", terms={}, purchase_price=0, now=NOW)
    eot.record_inspection(lease_id, Inspection(20_100, (), (), 0, 0, "", "staff", {}), NOW)
    with db.session() as s:
        status = s.get(LeaseRow, lease_id).status  # type: ignore[union-attr]
    assert status == "ended"
    paid = next(i for i in instalments(db, lease_id) if i.id == final.id)
    part = paid.paid_principal + paid.paid_interest
    assert part == 1_000_00 and paid.state == "waived"
    b = balances(db, lease_id)
    assert b.get(PENDING, 0) == 0
    # Output: every rent's VAT and the VAT of the part of the final rent received
    assert -b[OUTPUT] == sum(vat(i.amount) for i in rows if i.kind == "rent") + vat(part)
    posted = {k: (kind, d) for k, kind, d in keys(db, lease_id)}
    assert posted[f"vat:{final.id}"] == ("vat_tax_point", TODAY)
    assert differences(db, lease_id) == []
    assert asked(db, lease_id, final.id) == [f"rent:{final.id}"]


def test_rent_1_paid_at_signing_is_taxed_and_invoiced_the_day_the_upfront_payment_was_received(db: Database) -> None:
    # rents in advance: rent 1 is in the upfront payment, captured five days before the lease starts (预收款: its tax
    # point is the day received, not the start)
    from books.origination import UpfrontParts
    from books.origination import captured

    handover = record(TODAY, timing="advance")
    first = fen(handover["schedule"][0]["payment"])
    received = TODAY - timedelta(days=5)
    app_id, payment_id = str(uuid.uuid4()), str(uuid.uuid4())
    parts = UpfrontParts(down_payment=40_000_00, fees=0, premiums=0, first_rent=first)
    with db.session() as s:
        s.add(ApplicationRow(id=app_id, dealer_id=DEALER, status="delivered", vehicle_id="v", vehicle_label="v",
                             plan_code="p", plan_json="{}", draft_enc=""))
        s.add(PaymentRow(id=payment_id, application_id=app_id, dealer_id=DEALER, kind="upfront", amount=parts.total,
                         status="succeeded", intent_id=f"pi_{uuid.uuid4().hex[:20]}", captured=parts.total,
                         refunded=0, created_at=NOW, updated_at=NOW))
        s.flush()
        books.post(s, [captured(payment_id, "upfront", parts.total, received, parts=parts, dealer_id=DEALER,
                                application_id=app_id)], NOW)
    lease_id = open_lease(SqlServicing(db), handover, app_id)
    assert lease_id is not None
    rent1 = next(i for i in instalments(db, lease_id) if i.number == 1)
    assert rent1.state == "paid" and rent1.due_on == TODAY
    posted = {k: d for k, _, d in keys(db, lease_id)}
    assert posted[f"vat:{rent1.id}"] == received
    with db.session() as s:
        request = s.scalars(select(InvoiceRequestRow).where(InvoiceRequestRow.instalment_id == rent1.id)).one()
    assert request.tax_point == received and json.loads(request.facts)["parts"][0]["tax_point"] == received.isoformat()


def test_a_final_rent_paid_off_by_a_refinancing_is_taxed_and_invoiced(db: Database) -> None:
    old = lease(db, add_months(TODAY + timedelta(days=20), -12), residual="0.2")
    eot = SqlEndOfTerm(db)
    eot.choose(old, "refinance", by="customer", terms={}, purchase_price=0, now=NOW)
    app2 = str(uuid.uuid4())
    with db.session() as s:
        s.add(ApplicationRow(id=app2, dealer_id=DEALER, status="delivered", vehicle_id="v", vehicle_label="v",
                             plan_code="p", plan_json="{}", draft_enc=""))
    assert eot.attach_refinance(old, app2, NOW)
    assert open_lease(SqlServicing(db), record(TODAY), app2) is not None
    final = next(i for i in instalments(db, old) if i.kind == "final_rent")
    posted = {k: d for k, _, d in keys(db, old)}
    assert final.state == "paid" and posted[f"vat:{final.id}"] == TODAY
    assert asked(db, old, final.id) == [f"rent:{final.id}"]


def test_a_purchase_price_is_income_net_of_its_vat_when_it_is_charged(db: Database) -> None:
    lease_id = lease(db, date(2026, 1, 10))
    SqlEndOfTerm(db).choose(lease_id, "purchase", by="customer", terms={}, purchase_price=10_000, now=NOW)
    price = next(i for i in instalments(db, lease_id) if i.kind == "purchase_price")
    with db.session() as s:
        item = books.entry_of(s, f"charge:{price.id}")
    assert item is not None
    sides = {li.account: li.debit - li.credit for li in item.lines}
    assert sides == {"Assets:Receivable:Lessees": 10_000, "Income:Other:Fees": -(10_000 - 1_150), OUTPUT: -1_150}
    assert vat(10_000) == 1_150  # 10,000 × 13/113 = 1,150.44


def test_a_purchase_price_paid_is_invoiced_with_the_vat_its_charge_posted(db: Database) -> None:
    lease_id = lease(db, date(2026, 1, 10))
    SqlEndOfTerm(db).choose(lease_id, "purchase", by="customer", terms={}, purchase_price=10_000, now=NOW)
    price = next(i for i in instalments(db, lease_id) if i.kind == "purchase_price")
    assert asked(db, lease_id, price.id) == []  # not paid yet: no invoice
    SqlCollections(db).book(lease_id=lease_id, amount=10_000, source="stripe", key=f"pp:{price.id}", order=ORDER,
                            now=NOW, instalment_id=price.id)
    assert asked(db, lease_id, price.id) == [f"charge:{price.id}"]
    assert invoiced_tax(db, lease_id) == 1_150 == -balances(db, lease_id)[OUTPUT]


# -- a lease backfilled -----------------------------------------------------------------------------------------------
def test_a_backfilled_lease_s_rents_due_before_servicing_have_their_tax_points_on_their_due_dates(db: Database) -> None:
    handover = record(date(2025, 11, 10), residual_ratio="0.2")
    application_id = str(uuid.uuid4())
    with db.session() as s:
        s.add(ApplicationRow(id=application_id, dealer_id=DEALER, status="delivered", vehicle_id="v", vehicle_label="v",
                             plan_code="p", plan_json="{}", draft_enc=""))
    through = date(2026, 3, 10)
    done = SqlLeaseBackfill(db).open(application_id, DEALER, lease_plan(handover), through, NOW)
    assert done is not None and done.collected_outside == 4
    rows = instalments(db, done.lease_id)
    posted = {k: (kind, d) for k, kind, d in keys(db, done.lease_id)}
    for i in rows:
        assert (f"vat:{i.id}" in posted) == (i.due_on <= through)
        if i.due_on <= through:
            assert posted[f"vat:{i.id}"] == ("vat_tax_point", i.due_on)
    b = balances(db, done.lease_id)
    assert -b[PENDING] == sum(vat(i.amount) for i in rows if i.due_on > through)
    assert -b[OUTPUT] == sum(vat(i.amount) for i in rows if i.due_on <= through)
    assert SqlLeaseBackfill(db).open(application_id, DEALER, lease_plan(handover), through, NOW) is None
    assert balances(db, done.lease_id) == b and differences(db, done.lease_id) == []


# -- a lease commenced before VAT -------------------------------------------------------------------------------------
def legacy_lease(db: Database, starts_on: date, paid_ahead_on: date) -> str:
    """A lease as the books held it before VAT: opened like any (its rows a normal lease's, copied under new ids), its
    commencement posted gross and no ``lease:<id>:vat``, the closes through yesterday, the months recognised with the
    interest's VAT in them (the spread of the gross interest, as the job posted it then), and its first rent due after
    today received in full ahead on ``paid_ahead_on`` (a payment movement, its receipt collected in the bank)."""
    template = lease(db, starts_on)
    lease_id, application_id = str(uuid.uuid4()), str(uuid.uuid4())
    with db.session() as s:
        s.add(ApplicationRow(id=application_id, dealer_id=DEALER, status="delivered", vehicle_id="v", vehicle_label="v",
                             plan_code="p", plan_json="{}", draft_enc=""))
        s.flush()
        columns = [c.name for c in LeaseRow.__table__.columns if c.name not in ("id", "application_id")]
        s.execute(text(f"INSERT INTO leases (id, application_id, {', '.join(columns)}) SELECT :id, :app, "
                       f"{', '.join(columns)} FROM leases WHERE id = :template"),
                  {"id": lease_id, "app": application_id, "template": template})
        columns = [c.name for c in InstalmentRow.__table__.columns if c.name not in ("id", "lease_id")]
        s.execute(text(f"INSERT INTO instalments (lease_id, {', '.join(columns)}) SELECT :id, {', '.join(columns)} "
                       "FROM instalments WHERE lease_id = :template"), {"id": lease_id, "template": template})
        s.execute(text("UPDATE leases SET closed_through = :d WHERE id = :id"),
                  {"d": TODAY - timedelta(days=1), "id": lease_id})
        s.flush()
        rows = list(s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)
                              .order_by(InstalmentRow.number)))
        ahead = next(i for i in rows if i.due_on > TODAY)
        ahead.state, ahead.settled_on = "paid", paid_ahead_on
        ahead.paid_principal, ahead.paid_interest = ahead.principal, ahead.interest
        s.add(ServicingMovementRow(lease_id=lease_id, instalment_id=ahead.id, kind="payment", value_date=paid_ahead_on,
                                   principal=-ahead.principal, interest=-ahead.interest, penalty=0,
                                   key=f"ahead:{lease_id}", booked_at=NOW, note="paid ahead"))
        s.flush()
        gross = LeaseSchedule(starts_on, add_months(starts_on, 12), "arrears",
                              tuple(Rent(i.due_on, i.interest, i.amount) for i in rows))  # no tax: gross
        months: list[Entry | None] = []
        before = 0
        for month in ("2026-01", "2026-02"):
            through = recognised_through(gross, month_end(month))
            months.append(income_entry(f"income:{lease_id}:{month}", month_end(month), through - before,
                                       "gross, before VAT", lease_id=lease_id, dealer_id=DEALER))
            before = through
        books.post(s, [commenced(lease_id, DEALER, starts_on, [Scheduled(i.kind, i.amount, i.principal, i.interest)
                                                               for i in rows]), *months,
                       collected_outside(lease_id, DEALER, ahead.number, ahead.due_on, ahead.principal,
                                         ahead.interest, paid_on=paid_ahead_on)], NOW)
    return lease_id


def test_a_lease_commenced_before_vat_has_it_brought_in_once(db: Database) -> None:
    lease_id = legacy_lease(db, date(2026, 1, 5), paid_ahead_on=date(2026, 3, 12))
    rows = [i for i in instalments(db, lease_id) if i.kind in LEASE_PAYMENTS]
    ahead = next(i for i in rows if i.state == "paid" and i.due_on > TODAY)
    gross_recognised = -balances(db, lease_id)[INTEREST]
    env = {"LEASELINE_DATABASE_URL": db.url}
    # a dry run says what it would post and posts nothing
    dry = CliRunner().invoke(main, ["books", "vat-catchup", "--lease", lease_id, "--dry-run", "--json"], env=env,
                             catch_exceptions=False)
    assert dry.exit_code == 0, dry.output
    told = json.loads(dry.stdout)
    due = [i for i in rows if i.due_on <= TODAY - timedelta(days=1) or i is ahead]  # their tax points came
    assert told["dry_run"] is True and told["leases"] == 1
    assert told["pending"] == sum(vat(i.amount) for i in rows) and told["output"] == sum(vat(i.amount) for i in due)
    assert told["entries"] == 1 + len(due) + 1  # the commencement's, the tax points, the income taken back
    assert not [k for k, _, _ in keys(db, lease_id) if k.startswith(("vat:", f"lease:{lease_id}:vat"))]
    # the run: the commencement VAT on the start, each rent's tax point on its due date, the gross income taken back
    ran = CliRunner().invoke(main, ["books", "vat-catchup", "--lease", lease_id, "--json"], env=env,
                             catch_exceptions=False)
    assert ran.exit_code == 0, ran.output
    assert {k: v for k, v in json.loads(ran.stdout).items() if k != "dry_run"} == {
        k: v for k, v in told.items() if k != "dry_run"}
    posted = {k: (kind, d) for k, kind, d in keys(db, lease_id)}
    assert posted[f"lease:{lease_id}:vat"] == ("vat_commenced", date(2026, 1, 5))
    assert all(posted[f"vat:{i.id}"] == ("vat_tax_point", i.due_on) for i in due if i is not ahead)
    assert posted[f"vat:{ahead.id}"] == ("vat_tax_point", date(2026, 3, 12))  # received in full before its due date
    assert posted[f"income:{lease_id}:vat"] == ("finance_income", TODAY)
    b = balances(db, lease_id)
    assert -b[PENDING] == sum(vat(i.amount) for i in rows if i.due_on >= TODAY and i is not ahead)
    assert -b[OUTPUT] == sum(vat(i.amount) for i in due)
    assert b[INPUT] == sum(on_principal(i.amount, i.interest) for i in rows)
    # the income now the net spread through February's end: each rent's interest less its tax, spread by day
    net = LeaseSchedule(date(2026, 1, 5), add_months(date(2026, 1, 5), 12), "arrears",
                        tuple(Rent(i.due_on, i.interest - vat(i.interest), i.amount) for i in rows))
    with db.session() as s:
        assert recognised(s, [lease_id])[lease_id] == recognised_through(net, date(2026, 2, 28))
    assert gross_recognised > recognised_through(net, date(2026, 2, 28))
    assert differences(db, lease_id) == []
    # a second run, and the next month's income: nothing twice
    again = catch_up(db, NOW, only=[lease_id])
    assert (again.leases, again.entries) == (0, 0) and balances(db, lease_id) == b
    assert month_of(TODAY) == "2026-03"
