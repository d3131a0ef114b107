"""The books of a lease's servicing events (issue 19 §1, lane 2), on the real database without pages: the month's
finance income (infra/finance_income.py) posts once per lease and month and its months add up to the schedule's
interest; an early settlement (books/settlement.py) and a partial prepayment (books/prepayment.py) post in their own
transaction, once, and leave the lease's receivable and unearned income what its instalments say, to the fen; so does a
returned car offsetting the final rent (infra/end_of_term.py, books/end_of_term.py)."""

from __future__ import annotations

import dataclasses
import json
import threading
import uuid
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
from books.income import LeaseSchedule
from books.income import Rent
from books.income import month_of
from books.income import monthly_income
from books.lease import tax_point
from infra import books
from infra.books_reconcile import lease_differences
from infra.collections import PREPAYMENT
from infra.collections import SETTLEMENT
from infra.collections import SqlCollections
from infra.db.models import ApplicationRow
from infra.db.models import DealerGroupRow
from infra.db.models import DealerRow
from infra.db.models import InstalmentRow
from infra.db.models import JournalEntryRow
from infra.db.models import JournalLineRow
from infra.db.models import LeaseRow
from infra.db.models import SettlementQuoteRow
from infra.end_of_term import Inspection
from infra.end_of_term import SqlEndOfTerm
from infra.finance_income import TASK
from infra.finance_income import defer_month
from infra.finance_income import income_key
from infra.finance_income import lock_leases
from infra.finance_income import month_entry
from infra.finance_income import recognise_month
from infra.finance_income import recognised
from infra.finance_income import schedules
from infra.lease_reads import SqlLeaseReads
from infra.prepayments import SqlPrepayments
from infra.servicing import PlannedInstalment
from infra.servicing import SqlServicing
from infra.servicing import lease_plan
from infra.settlements import SqlSettlements
from leaseline.cli import main
from plans.policy import load_policy
from plans.timeline import add_months
from tests.integration.test_servicing_close import record

RECEIVABLE, UNEARNED = "Assets:LeaseReceivable:Payments", "Assets:LeaseReceivable:Unearned"
INTEREST = "Income:Lease:Interest"
ORDER = ("penalty", "interest", "principal")


def _application(c: Any) -> str:
    """A handed-over application of a dealer of its own (the database alone: no customer, no pages)."""
    group, dealer, application_id = f"g-{uuid.uuid4().hex[:12]}", f"d-{uuid.uuid4().hex[:12]}", str(uuid.uuid4())
    with c.db.session() as s:
        s.add(DealerGroupRow(id=group, name="books group"))
        s.flush()
        s.add(DealerRow(id=dealer, group_id=group, name="books dealer", city="上海"))
        s.flush()
        s.add(ApplicationRow(id=application_id, dealer_id=dealer, status="approved", vehicle_id="v", vehicle_label="v",
                             plan_code="p", plan_json="{}", draft_enc=""))
    return application_id


def _lease(app: Any, starts_on: date, timing: str = "arrears", final_interest: int = 0) -> str:
    """A lease of 12 rents (``timing``) and a final rent (with ``final_interest`` fen of interest beside its principal:
    a contract's residual is all principal, a final rent need not be), opened as the handover's transaction opens
    it."""
    c = app.extensions["leaseline"]
    application_id = _application(c)
    plan = lease_plan(record(starts_on, timing=timing, residual_ratio="0.2"))
    if final_interest:
        *rents, final = plan.instalments
        plan = dataclasses.replace(plan, instalments=(*rents, PlannedInstalment(
            final.number, final.kind, final.due_on, final.amount + final_interest, final.principal, final_interest)))
    with c.db.session() as s:
        dealer_id = s.execute(select(ApplicationRow.dealer_id).where(ApplicationRow.id == application_id)).scalar_one()
        lease_id = SqlServicing(c.db).open_lease(s, application_id, dealer_id, plan, datetime.now(UTC))
    assert lease_id is not None
    return lease_id


def _vat(fen: int) -> int:
    """The VAT a tax-inclusive sum of a direct lease carries at 13 % (the rate in force since 2019-04-01), from the
    definition: half_up(fen × 13 / 113), halves away from zero (books/vat.py not used)."""
    return (1 if fen >= 0 else -1) * int(Fraction(abs(fen) * 13, 113) + Fraction(1, 2))


def _tax_points(c: Any, lease_id: str, through: date) -> None:
    """The tax points of the lease's rents due by ``through``, as the closes of those days post them
    (books/lease.py ``tax_point``, ``vat:<instalment>``; the tax from the definition): a lease opened here in the past
    was never closed."""
    rows = [i for i in _instalments(c, lease_id) if i.kind in ("rent", "final_rent") and i.due_on <= through]
    with c.db.session() as s:
        dealer_id = s.execute(select(LeaseRow.dealer_id).where(LeaseRow.id == lease_id)).scalar_one()
        books.post(s, [tax_point(i.id, lease_id, dealer_id, i.due_on, _vat(i.amount)) for i in rows],
                   datetime.now(UTC))


def _balances(c: Any, lease_id: str) -> dict[str, int]:
    """The lease's balances by account (debit − credit, fen)."""
    with c.db.session() as s:
        return {account: int(total) for account, total in s.execute(
            select(JournalLineRow.account, func.sum(JournalLineRow.debit - JournalLineRow.credit))
            .where(JournalLineRow.lease_id == lease_id).group_by(JournalLineRow.account))}


def _entries(c: Any, lease_id: str) -> list[tuple[str, str]]:
    with c.db.session() as s:
        return sorted((k, kind) for k, kind in s.execute(
            select(JournalEntryRow.key, JournalEntryRow.kind).where(JournalEntryRow.lease_id == lease_id)))


def _instalments(c: Any, lease_id: str) -> list[InstalmentRow]:
    with c.db.session() as s:
        return list(s.scalars(select(InstalmentRow).where(InstalmentRow.lease_id == lease_id)
                              .order_by(InstalmentRow.number)))


def _schedule(c: Any, lease_id: str) -> LeaseSchedule:
    with c.db.session() as s:
        lease = s.get(LeaseRow, lease_id)
        assert lease is not None
        # each rent with its VAT (13 %, from the definition): the spread earns the interest net of it
        rents = tuple(Rent(i.due_on, earned, i.amount, _vat(i.amount), _vat(earned))
                      for i in _instalments(c, lease_id) if i.state != "cancelled" and i.kind in ("rent", "final_rent")
                      for earned in [i.interest if i.state != "settled" else 0])
        return LeaseSchedule(lease.starts_on, lease.ends_on, lease.timing, rents)


def _closed_months(starts_on: date, today: date) -> list[str]:
    """The months from the lease's start whose last day is before the business date."""
    months, day = [], starts_on.replace(day=1)
    while True:
        end = (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        if end >= today:
            return months
        months.append(month_of(day))
        day = end + timedelta(days=1)


def _pay_due(c: Any, lease_id: str, today: date) -> None:
    """The rents fallen due paid by a receipt (the ledger's own way: books/lease.py ``receipt``)."""
    owed = sum(i.amount - i.paid_principal - i.paid_interest for i in _instalments(c, lease_id)
               if i.due_on <= today and i.kind == "rent")
    SqlCollections(c.db).book(lease_id=lease_id, amount=owed, source="stripe", key=f"due:{uuid.uuid4()}",
                              order=ORDER, now=datetime.now(UTC))


def test_the_month_s_income_posts_once_per_lease_and_month_and_the_months_add_up(app: Any) -> None:
    c = app.extensions["leaseline"]
    today = SqlServicing(c.db).business_date()
    lease_id = _lease(app, today - timedelta(days=100))
    months = _closed_months(today - timedelta(days=100), today)
    assert len(months) >= 3
    now = datetime.now(UTC)
    for month in months:
        first = recognise_month(c.db, month, now, only=[lease_id])
        again = recognise_month(c.db, month, now, only=[lease_id])
        assert (first.posted, again.posted, again.amount) == (1, 0, 0), month
    with c.db.session() as s:
        posted = {k: (int(d), v) for k, d, v in s.execute(
            select(JournalEntryRow.key, JournalLineRow.debit, JournalEntryRow.value_date)
            .join(JournalLineRow, JournalLineRow.entry_id == JournalEntryRow.id)
            .where(JournalEntryRow.kind == "finance_income", JournalEntryRow.lease_id == lease_id,
                   JournalLineRow.account == UNEARNED))}
    expected = {m.month: m.amount for m in monthly_income(_schedule(c, lease_id))}
    assert {k: v[0] for k, v in posted.items()} == {income_key(lease_id, m): expected[m] for m in months}
    assert all(v[1].day >= 28 and (v[1] + timedelta(days=1)).day == 1 for v in posted.values())  # month ends
    assert sum(expected.values()) == sum(i.interest - _vat(i.interest) for i in _instalments(c, lease_id))
    # a month not closed yet is refused
    try:
        recognise_month(c.db, month_of(today), now, only=[lease_id])
        raise AssertionError("an open month was recognised")
    except ValueError as exc:
        assert "not closed" in str(exc)
    # by hand: `leaseline books income --month` (this lease only: its months posted already, nothing more)
    env = {"LEASELINE_DATABASE_URL": c.db.url}
    by_hand = CliRunner().invoke(main, ["books", "income", "--month", months[-1], "--lease", lease_id, "--json"],
                                 env=env, catch_exceptions=False)
    assert by_hand.exit_code == 0, by_hand.output
    assert json.loads(by_hand.stdout) == {"month": months[-1], "leases": 1, "posted": 0, "amount": "0.00",
                                          "difference": "0.00"}
    assert len([k for k in _entries(c, lease_id) if k[1] == "finance_income"]) == len(months)
    refused = CliRunner().invoke(main, ["books", "income", "--month", month_of(today)], env=env)
    assert refused.exit_code == 2 and f"{month_of(today)} has not ended by the business date" in refused.stderr
    assert CliRunner().invoke(main, ["books", "income", "--month", "2026-13"], env=env).exit_code == 2
    # the close of a month's last day defers the month's job, once while one waits (its queueing lock)
    # and the months' jobs run one at a time (their procrastinate lock: a catching-up close defers several)
    with c.db.sessions() as s, s.begin():
        defer_month(s, "2099-01")
        defer_month(s, "2099-01")
        defer_month(s, "2099-02")
        assert s.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE queueing_lock = :lock"),
                         {"lock": f"{TASK}:2099-01"}).scalar_one() == 1
        assert set(s.scalars(text("SELECT lock FROM procrastinate_jobs WHERE queueing_lock LIKE :locks"),
                             {"locks": f"{TASK}:2099-0%"})) == {TASK}
        s.rollback()


def test_two_runs_at_once_recognise_a_lease_s_income_once(app: Any) -> None:
    """Month M+1's run beside month M's (a close catching up, the command by hand beside the job, a settlement's
    income beside a batch): the second waits for the lease's lock and reads what the first recognised."""
    c = app.extensions["leaseline"]
    today = SqlServicing(c.db).business_date()
    lease_id = _lease(app, today - timedelta(days=100))
    first, second, third = _closed_months(today - timedelta(days=100), today)[:3]
    recognise_month(c.db, first, datetime.now(UTC), only=[lease_id])
    done: list[Any] = []
    with c.db.session() as s:  # month M's run, between its read of what was recognised and its commit
        lock_leases(s, [lease_id])
        lease = s.get(LeaseRow, lease_id)
        assert lease is not None
        item, _ = month_entry(lease, schedules(s, [lease])[lease_id], second, recognised(s, [lease_id])[lease_id])
        assert item is not None and books.post(s, [item], datetime.now(UTC))
        run = threading.Thread(target=lambda: done.append(recognise_month(c.db, third, datetime.now(UTC),
                                                                          only=[lease_id])))
        run.start()
        run.join(timeout=1.0)
        assert run.is_alive() and not done  # month M+1 waits for the lease
    run.join(timeout=30)
    assert done and done[0].posted == 1
    with c.db.session() as s:
        assert recognised(s, [lease_id])[lease_id] == sum(
            m.amount for m in monthly_income(_schedule(c, lease_id)) if m.month <= third)


@pytest.mark.parametrize("timing", ["arrears", "advance"])
def test_a_settled_lease_s_books_balance_to_the_fen_and_post_once(app: Any, timing: str) -> None:
    c = app.extensions["leaseline"]
    servicing = SqlServicing(c.db)
    today, calendar = servicing.business_date(), servicing.calendar()
    starts_on = today - timedelta(days=70)
    lease_id = _lease(app, starts_on, timing)
    _pay_due(c, lease_id, today - timedelta(days=40))  # rent 1 paid; rent 2 fell due and is unpaid (arrears)
    for month in _closed_months(starts_on, today):
        recognise_month(c.db, month, datetime.now(UTC), only=[lease_id])
    snap = SqlLeaseReads(c.db).snapshot(lease_id)
    assert snap is not None
    on = settlement_dates(snap.lease, snap.instalments, today, calendar).earliest
    assert on is not None
    quote_id = SqlSettlements(c.db).offer(lease_id, quote(snap.lease, snap.instalments, on, calendar),
                                          requested_by="customer", now=datetime.now(UTC))
    with c.db.session() as s:
        q = s.get(SettlementQuoteRow, quote_id)
        assert q is not None and q.arrears > 0
        amount, accrued, fee, deposit = q.amount_due, q.accrued_interest, q.early_settlement_fee, q.deposit_offset
        principal = q.outstanding_principal
    collections, key = SqlCollections(c.db), f"settle:{uuid.uuid4()}"
    attempt, _ = collections.start_attempt(lease_id=lease_id, amount=amount, channel="stripe", trigger="customer",
                                           key=key, business_date=today, now=datetime.now(UTC), purpose=SETTLEMENT,
                                           subject_id=quote_id)
    receipt = collections.book(lease_id=lease_id, amount=amount, source="stripe", key=key, order=ORDER,
                               attempt_id=attempt.id, now=datetime.now(UTC))
    assert receipt.applied > 0
    rows = _instalments(c, lease_id)
    kept = sum(i.interest - _vat(i.interest) for i in rows if i.state != "settled")  # net of its VAT
    # the quote's principal less the replaced rents' (nothing was paid ahead): in advance rent K's interest for the
    # days after the settlement day, given back (the quote charges interest from rent K's day on its base instead)
    difference = principal - sum(i.principal for i in rows if i.state == "settled")
    rent_k = max((i for i in rows if i.kind == "rent" and i.due_on <= on), key=lambda i: i.due_on)
    assert difference == (0 if timing == "arrears" else -rent_k.interest)
    entries = _entries(c, lease_id)
    assert (f"settlement:{quote_id}", "settlement") in entries
    # the lease's income made final (the months recognised part of a replaced rent's period, or not all of the kept)
    assert (f"income:{lease_id}:settlement:{quote_id}", "finance_income") in entries
    balances = _balances(c, lease_id)
    # the lease owes nothing and holds no unearned income: its finance income is the kept rents' interest and the
    # interest to the settlement day (in advance less rent K's interest given back), each net of its VAT
    assert balances.get(RECEIVABLE, 0) == 0
    assert balances.get(UNEARNED, 0) == 0
    assert -balances[INTEREST] == kept + accrued + difference - _vat(accrued + difference)
    assert -balances["Income:Other:Fees"] == fee - _vat(fee)
    assert balances["Liabilities:Deposits:Lessees"] == deposit
    # a replayed payment, a replayed posting, the month's job after it: nothing more
    replay = collections.book(lease_id=lease_id, amount=amount, source="stripe", key=key, order=ORDER,
                              attempt_id=attempt.id, now=datetime.now(UTC))
    assert replay.replay
    with c.db.session() as s:
        settled = [books.entry_of(s, k) for k, _ in entries if "settlement:" in k]
        assert books.post(s, [e for e in settled if e is not None], datetime.now(UTC)) == []
    months = _closed_months(starts_on, on + timedelta(days=62))
    assert recognise_month(c.db, months[0], datetime.now(UTC), only=[lease_id]).posted == 0
    assert _entries(c, lease_id) == entries and _balances(c, lease_id) == balances


@pytest.mark.parametrize("timing", ["arrears", "advance"])
def test_a_prepaid_lease_s_books_balance_to_the_fen_and_post_once(app: Any, timing: str) -> None:
    c = app.extensions["leaseline"]
    today = SqlServicing(c.db).business_date()
    starts_on = today - timedelta(days=40)
    lease_id = _lease(app, starts_on, timing)  # rent 1 fell due (in advance rent 2 too)
    _pay_due(c, lease_id, today)
    for month in _closed_months(starts_on, today):
        recognise_month(c.db, month, datetime.now(UTC), only=[lease_id])
    interest_before = sum(i.interest for i in _instalments(c, lease_id))
    unapplied = _balances(c, lease_id).get("Liabilities:Unapplied:Lessees", 0)  # in advance: rent 1 at signing
    repo, collections, now = SqlPrepayments(c.db), SqlCollections(c.db), datetime.now(UTC)
    offer = repo.offer(lease_id, 2_000_000, "customer", now)
    repo.choose(lease_id, offer.id, "shorter_term")
    key = f"prepay:{uuid.uuid4()}"
    attempt, _ = collections.start_attempt(lease_id=lease_id, amount=offer.total, channel="stripe",
                                           trigger="customer", key=key, business_date=today, now=now,
                                           purpose=PREPAYMENT, subject_id=offer.id)
    repo.attach(offer.id, attempt.id)
    receipt = collections.book(lease_id=lease_id, amount=offer.total, source="stripe", key=key,
                               order=load_policy().allocation_order, attempt_id=attempt.id, now=now)
    assert receipt.applied == offer.total
    rows = _instalments(c, lease_id)
    assert any(i.state == "cancelled" for i in rows)
    interest_after = sum(i.interest for i in rows)
    assert interest_after < interest_before
    balances = _balances(c, lease_id)
    # the interest line is income net of its VAT; the unearned income holds the schedule's interest net of its VAT
    recognised = -balances.get(INTEREST, 0) - (offer.accrued_interest - _vat(offer.accrued_interest))
    # the receivable is what the instalments still owe; the unearned income the schedule's interest not recognised
    assert balances[RECEIVABLE] == sum(i.amount - i.paid_principal - i.paid_interest for i in rows)
    assert -balances[UNEARNED] == sum(i.interest - _vat(i.interest) for i in rows) - recognised
    assert balances.get("Liabilities:Unapplied:Lessees", 0) == unapplied  # the payment held, then applied
    entries = _entries(c, lease_id)
    assert (f"prepayment:{offer.id}", "prepayment") in entries
    replay = collections.book(lease_id=lease_id, amount=offer.total, source="stripe", key=key,
                              order=load_policy().allocation_order, attempt_id=attempt.id, now=now)
    assert replay.replay
    with c.db.session() as s:
        again = [books.entry_of(s, k) for k, _ in entries if "prepayment:" in k]
        assert books.post(s, [e for e in again if e is not None], now) == []
    assert _entries(c, lease_id) == entries and _balances(c, lease_id) == balances


def test_a_returned_car_takes_the_final_rent_off_the_receivable_and_its_interest_is_never_income(app: Any) -> None:
    c = app.extensions["leaseline"]
    today = SqlServicing(c.db).business_date()
    starts_on = add_months(today, -13) - timedelta(days=5)
    lease_id = _lease(app, starts_on, final_interest=30_000)  # the term ended over a month ago
    _tax_points(c, lease_id, today - timedelta(days=1))  # the closes passed every due date: the final rent's too
    final = next(i for i in _instalments(c, lease_id) if i.kind == "final_rent")
    # the kept rents' interest net of its VAT (the commencement left Unearned net)
    kept = sum(i.interest - _vat(i.interest) for i in _instalments(c, lease_id) if i.kind == "rent")
    months = _closed_months(starts_on, today)
    for month in months:  # the months before the term's end: part of the final rent's period recognised
        if month < month_of(final.due_on):
            recognise_month(c.db, month, datetime.now(UTC), only=[lease_id])

    def differences() -> list[Any]:
        with c.db.session() as s:
            return lease_differences(s, [lease_id], on=today)

    assert differences() == []
    eot, now = SqlEndOfTerm(c.db), datetime.now(UTC)
    eot.choose(lease_id, "return", by="customer", terms={}, purchase_price=0, now=now)
    eot.record_inspection(lease_id, Inspection(20_100, (), (), 0, 0, "", "staff", {}), now)
    assert differences() == []
    entries = _entries(c, lease_id)
    assert (f"car_returned:{lease_id}:{final.id}", "car_returned") in entries
    assert (f"income:{lease_id}:car_returned:{final.id}", "finance_income") in entries
    balances = _balances(c, lease_id)
    # the car back in the lessor's hands at its carrying amount — its principal less the principal's share of the VAT
    # the final rent carried (the car's cost without the VAT deducted); no unearned income left, the income the kept
    # rents'; the final rent's VAT, taxed at its due date, given back; Pending empty
    assert balances["Assets:Vehicles:Returned"] == final.principal - (_vat(final.amount) - _vat(final.interest))
    assert balances.get("Liabilities:Tax:VAT:Pending", 0) == 0
    assert -balances["Liabilities:Tax:VAT:Output"] == sum(_vat(i.amount) for i in _instalments(c, lease_id)
                                                          if i.kind == "rent")
    assert balances.get(UNEARNED, 0) == 0 and -balances[INTEREST] == kept
    assert balances[RECEIVABLE] == sum(i.amount for i in _instalments(c, lease_id) if i.kind == "rent")
    # the months after it (and a replay of those before) recognise nothing more: the waived interest is never earned
    for month in months:
        assert recognise_month(c.db, month, datetime.now(UTC), only=[lease_id]).posted == 0, month
    assert _entries(c, lease_id) == entries and _balances(c, lease_id) == balances and differences() == []
