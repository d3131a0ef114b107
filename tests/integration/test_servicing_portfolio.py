"""The set-based close of business on a varied synthetic portfolio (issue 18, Targets): over 90 days with payments in
full and in part, its late charges are servicing.penalty's to the fen, day by day and in a catch-up over several days;
and ``leaseline demo portfolio`` loads a portfolio as the closes leave one, refuses a second, and drops it whole, with
what the close's hooks kept about it. On a real PostgreSQL database of its own."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy import text

from bff.servicing.arrears import close_hooks
from bff.servicing.close import CloseOfBusiness
from bff.servicing.collect import collection_hook
from infra.books_reconcile import lease_differences
from infra.collections import SqlCollections
from infra.db import Database
from infra.db.models import ApplicationRow
from infra.db.models import InstalmentRow
from infra.db.models import LeaseRow
from infra.db.models import ServicingMovementRow
from infra.db.models import UserRow
from infra.servicing import SqlServicing
from infra.synthetic_portfolio import DEALER
from infra.synthetic_portfolio import drop_portfolio
from infra.synthetic_portfolio import load_portfolio
from leaseline.cli import main
from plans.policy import load_policy
from servicing.penalty import PenaltyTerms
from servicing.penalty import penalty_for_day
from tests.conftest import postgres_database

pytestmark = pytest.mark.db
NOW = datetime(2026, 1, 4, 4, 0, tzinfo=UTC)
START = date(2026, 1, 5)  # 90 days through the Spring Festival break (15–23 February 2026) and the Qingming holiday
DAYS = 90


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    from infra.db.migrate import upgrade

    for found in postgres_database("leaseline_portfolio"):
        upgrade(found)
        yield found


@pytest.fixture
def db(url: str) -> Iterator[Database]:
    database = Database(url)
    drop_portfolio(database)
    with database.session() as s:
        s.execute(text("TRUNCATE close_runs"))
    SqlServicing(database).start_business_date(START, NOW)
    yield database
    database.dispose()


def pay(s: Any, row: Any, day: date, part: int | None = None) -> None:
    """A payment booked on ``day`` as the rent collection books one (infra/collections.py): interest first, a movement
    dated the business date, the rent paid (or, in part, partly paid; an overdue rent stays overdue)."""
    left_i, left_p = row.interest - row.paid_interest, row.principal - row.paid_principal
    amount = left_i + left_p if part is None else part
    interest = min(left_i, amount)
    principal = amount - interest
    s.execute(text("INSERT INTO servicing_movements (lease_id, instalment_id, kind, value_date, principal, interest, "
                   "penalty, key, note, booked_at) VALUES (:lease, :id, 'payment', :day, :p, :i, 0, :key, '', :now)"),
              {"lease": row.lease_id, "id": row.id, "day": day, "p": -principal, "i": -interest,
               "key": f"test:{row.id}:{day}", "now": NOW})
    full = interest == left_i and principal == left_p
    s.execute(text("UPDATE instalments SET paid_principal = paid_principal + :p, paid_interest = paid_interest + :i, "
                   "state = CASE WHEN :full THEN 'paid' WHEN state = 'due' THEN 'partly_paid' ELSE state END, "
                   "settled_on = CASE WHEN :full THEN CAST(:day AS date) END WHERE id = :id"),
              {"p": principal, "i": interest, "full": full, "day": day, "id": row.id})


def reference(inst: Any, terms: PenaltyTerms, moves: list[tuple[date, int, int]], day: date) -> int:
    """servicing.penalty's late charge of ``day`` in fen, on what was left unpaid at its end (movements dated that day
    or before: a payment counts for the day it is made on)."""
    rent = inst.amount + sum(p + i for d, p, i in moves if d <= day)
    principal = inst.principal + sum(p for d, p, _ in moves if d <= day)
    if rent <= 0:
        return 0
    charge = penalty_for_day(day, due_on=inst.overdue_since - timedelta(days=1), unpaid_rent=Decimal(rent) / 100,
                             unpaid_principal=Decimal(max(0, min(principal, rent))) / 100, terms=terms)
    return int(charge * 100)


def test_the_close_s_late_charges_are_servicing_penalty_s_to_the_fen_over_90_days(db: Database) -> None:
    loaded = load_portfolio(db, 200, 5, NOW)
    assert loaded.as_of == START and loaded.overdue > 10 and loaded.partly_paid > 2
    repo = SqlServicing(db)
    close = CloseOfBusiness(repo, clock=lambda: NOW)
    calendar = repo.calendar()
    with db.session() as s:
        leases = {r.id: r for r in s.scalars(select(LeaseRow))}
        accrued_before = dict(s.execute(select(InstalmentRow.id, InstalmentRow.penalty_accrued)).all())
    terms = {lease_id: PenaltyTerms(rate=r.late_fee_daily_rate, base="principal" if r.late_fee_base == "principal"
                                    else "overdue_rent", nominal_rate=r.nominal_rate, cost_cap=r.default_cost_cap)
             for lease_id, r in leases.items()}
    rng = random.Random(90)
    expected: dict[int, int] = defaultdict(int)  # instalment → fen the closes must have accrued in the 90 days
    behind: set[int] = set()
    held: list[int] = []
    day = START
    for n in range(DAYS):
        with db.session() as s:
            for inst in list(s.scalars(select(InstalmentRow).where(InstalmentRow.state.in_(
                    ("due", "partly_paid", "overdue", "pending")), InstalmentRow.due_on <= day))):
                draw = rng.random()
                if inst.due_on == day and inst.state == "pending":  # falls due today: most pay on the day
                    if draw < 0.8:
                        pay(s, inst, day)
                    elif draw < 0.88:
                        pay(s, inst, day, inst.amount * rng.randint(20, 80) // 100)
                elif inst.state != "pending" and draw < 0.03:
                    pay(s, inst, day)
                elif inst.state != "pending" and draw < 0.08:
                    pay(s, inst, day, (inst.amount - inst.paid_principal - inst.paid_interest) * rng.randint(10, 60)
                        // 100)
            held = []
            if n == 45:  # five overdue rents paid in part lately whose late charges were not accrued for a week (a
                # lease held back from its closes): the next close charges the week at once, stretch by stretch
                held = list(s.execute(text(
                    "SELECT i.id FROM instalments AS i WHERE i.state = 'overdue' AND i.overdue_since < :week AND "
                    "EXISTS (SELECT 1 FROM servicing_movements AS m WHERE m.instalment_id = i.id AND m.kind = "
                    "'payment' AND m.value_date BETWEEN :week AND :yesterday) ORDER BY i.id LIMIT 5"),
                    {"week": day - timedelta(days=7), "yesterday": day - timedelta(days=1)}).scalars())
                assert len(held) == 5
                for inst_id in held:
                    undone = s.execute(text(
                        "DELETE FROM servicing_movements WHERE instalment_id = :id AND kind = 'late_charge' AND "
                        "value_date >= :since RETURNING penalty"), {"id": inst_id, "since": day - timedelta(days=7)}
                    ).scalars().all()
                    s.execute(text("UPDATE instalments SET penalty_accrued = penalty_accrued - :undone, "
                                   "penalty_through = :through WHERE id = :id"),
                              {"undone": sum(undone), "through": day - timedelta(days=8), "id": inst_id})
                    expected[inst_id] -= sum(undone)
        outcome = close.close(day)
        assert outcome.done and outcome.run.leases == 200
        with db.session() as s:
            overdue = list(s.execute(select(InstalmentRow).where(InstalmentRow.state == "overdue")).scalars())
            moves: dict[int, list[tuple[date, int, int]]] = defaultdict(list)
            for inst_id, value_date, p, i in s.execute(select(
                    ServicingMovementRow.instalment_id, ServicingMovementRow.value_date,
                    ServicingMovementRow.principal, ServicingMovementRow.interest).where(
                    ServicingMovementRow.instalment_id.in_([i.id for i in overdue]),
                    ServicingMovementRow.kind != "late_charge")):
                moves[inst_id].append((value_date, p, i))
            booked = dict(s.execute(select(ServicingMovementRow.instalment_id, ServicingMovementRow.penalty).where(
                ServicingMovementRow.kind == "late_charge", ServicingMovementRow.value_date == day)).all())
        wanted: dict[int, int] = {}
        for inst in overdue:
            lease = leases[inst.lease_id]
            assert inst.overdue_since == calendar.last_day_to_pay(inst.due_on, lease.grace_days) + timedelta(days=1)
            assert inst.penalty_through == day
            # each close charges its day (the load accrued the days before the first); the held rents, the week
            first = day - timedelta(days=7) if inst.id in held else day
            charge = sum(reference(inst, terms[inst.lease_id], moves[inst.id], first + timedelta(days=k))
                         for k in range((day - first).days + 1))
            if charge:
                wanted[inst.id] = charge
            expected[inst.id] += charge
            behind.add(inst.id)
        assert booked == wanted, day
        assert outcome.run.penalty == sum(wanted.values())
        day += timedelta(days=1)
    with db.session() as s:
        accrued = dict(s.execute(select(InstalmentRow.id, InstalmentRow.penalty_accrued).where(
            InstalmentRow.id.in_(list(behind)))).all())
    assert {i: accrued[i] - accrued_before[i] for i in behind} == {i: expected[i] for i in behind}
    # the portfolio was varied where it matters: late charges on the rent and on the principal, within the cost cap
    # and without one, capped below the stated rate, with grace days, on partly paid rents and on a 7-day catch-up
    late = set(_lease_of(db, [i for i in behind if expected[i]]))
    kinds = {(leases[i].late_fee_base, leases[i].default_cost_cap is None, leases[i].grace_days > 0,
              leases[i].late_fee_daily_rate > Decimal("0.0005")) for i in late}
    assert {k[0] for k in kinds} == {"overdue_amount", "principal"} and {k[1] for k in kinds} == {True, False}
    assert any(k[2] for k in kinds) and any(k[3] for k in kinds)


def _lease_of(db: Database, instalment_ids: list[int]) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(InstalmentRow.lease_id).where(InstalmentRow.id.in_(instalment_ids))))


def test_leaseline_demo_portfolio_loads_a_serviced_portfolio_apart_and_drops_it_whole(db: Database, url: str) -> None:
    def cli(*args: str) -> Any:
        return CliRunner().invoke(main, ["demo", "portfolio", *args], env={"LEASELINE_DATABASE_URL": url},
                                  catch_exceptions=False)

    loaded = cli("--leases", "60", "--seed", "3")
    assert loaded.exit_code == 0 and "loaded 60 synthetic leases" in loaded.stdout, loaded.output
    with db.session() as s:
        leases = list(s.scalars(select(LeaseRow)))
        rows = list(s.scalars(select(InstalmentRow).order_by(InstalmentRow.lease_id, InstalmentRow.number)))
        charges = dict(s.execute(select(ServicingMovementRow.instalment_id, func.sum(ServicingMovementRow.penalty))
                                 .group_by(ServicingMovementRow.instalment_id)).all())
        paid = dict(s.execute(select(ServicingMovementRow.instalment_id, -func.sum(
            ServicingMovementRow.principal + ServicingMovementRow.interest)).group_by(
            ServicingMovementRow.instalment_id)).all())
        assert s.execute(select(func.count()).select_from(UserRow).where(UserRow.dealer_id == DEALER)).scalar_one() == 0
        assert {a.customer_name[:4] for a in s.scalars(select(ApplicationRow))} == {"合成客户"}
    assert len(leases) == 60 and {lease.dealer_id for lease in leases} == {DEALER}
    assert all(lease.contract_number.startswith("SYN-") and lease.closed_through == START - timedelta(days=1)
               for lease in leases)
    assert {lease.term for lease in leases} <= {12, 24, 36, 48, 60} and {lease.timing for lease in leases} == {
        "advance", "arrears"}
    by_lease: dict[str, list[InstalmentRow]] = defaultdict(list)
    for row in rows:
        by_lease[row.lease_id].append(row)
    for lease in leases:
        mine = by_lease[lease.id]
        assert sum(r.principal for r in mine) == lease.financed_amount and lease.starts_on < START < lease.ends_on
        assert [r.number for r in mine] == list(range(1, lease.term + 1 + (lease.residual > 0)))
        for r in mine:  # as the closes through yesterday left it
            assert (r.state == "pending") == (r.due_on >= START)
            assert paid.get(r.id, 0) == r.paid_principal + r.paid_interest
            assert r.state != "paid" or r.paid_principal + r.paid_interest == r.amount
            assert charges.get(r.id, 0) == r.penalty_accrued and (r.penalty_accrued > 0) <= (r.state == "overdue")
    assert {r.state for r in rows} >= {"paid", "pending", "overdue"}
    books(db, [lease.id for lease in leases])
    again = cli("--leases", "5")
    assert again.exit_code == 2 and "loaded already" in again.stderr and again.stdout == ""
    assert cli().exit_code == 2
    # closed once with the worker's hooks (reminders, arrears, collections keep rows about the leases), then dropped
    hooks = [*close_hooks(db, load_policy().reminders), collection_hook(SqlCollections(db))]
    CloseOfBusiness(SqlServicing(db), clock=lambda: NOW, hooks=hooks).close(START)
    with db.session() as s:
        assert s.execute(text("SELECT count(*) FROM lease_arrears")).scalar_one() > 0
    dropped = cli("--drop")
    assert dropped.exit_code == 0 and "60 leases" in dropped.stdout, dropped.output
    with db.session() as s:
        for table in ("leases", "instalments", "servicing_movements", "lease_arrears", "applications"):
            assert s.execute(text(f"SELECT count(*) FROM {table}")).scalar_one() == 0, table
    # the journal keeps the dropped leases' entries (append-only): a reload of the same seed draws the same portfolio
    # (as of the business date the close moved on) under new lease ids, whose books are its own
    assert cli("--leases", "60", "--seed", "3").exit_code == 0
    with db.session() as s:
        reloaded = list(s.scalars(select(LeaseRow)))
    assert not {lease.id for lease in reloaded} & {lease.id for lease in leases}
    assert sorted((r.contract_number, r.term, r.financed_amount) for r in reloaded) == sorted(
        (r.contract_number, r.term, r.financed_amount) for r in leases)
    books(db, [lease.id for lease in reloaded])
    assert cli("--drop").exit_code == 0
    with db.session() as s:  # each drop reversed its portfolio's entries on the business date: nothing left of them
        day = SqlServicing(db).business_date()
        dropped_ids = [lease.id for lease in [*leases, *reloaded]]
        assert lease_differences(s, dropped_ids, on=day) == []
        assert s.execute(text("SELECT count(*) FROM journal_lines WHERE lease_id = ANY(:ids) "
                              "GROUP BY account, lease_id HAVING SUM(debit - credit) <> 0"),
                         {"ids": dropped_ids}).all() == []


def books(db: Database, lease_ids: list[str]) -> None:
    """The synthetic leases' books: each one's commencement, its dealer paid for the car and the rents marked paid
    posted, so that the lease sub-ledger reconciles at the business date and at a month end before it."""
    from books.lease import DEALERS

    with db.session() as s:
        for day in (START - timedelta(days=1), date(2025, 6, 30)):
            assert lease_differences(s, lease_ids, on=day) == [], day
        kinds = dict(s.execute(text("SELECT kind, count(*) FROM journal_entries WHERE lease_id = ANY(:ids) "
                                    "GROUP BY kind"), {"ids": lease_ids}).all())
        assert kinds["lease_commenced"] == kinds["dealer_funded"] == len(lease_ids) and kinds["collected_outside"] > 60
        assert s.execute(text("SELECT COALESCE(SUM(credit - debit), 0) FROM journal_lines WHERE account = :dealers "
                              "AND lease_id = ANY(:ids)"), {"dealers": DEALERS, "ids": lease_ids}).scalar_one() == 0
