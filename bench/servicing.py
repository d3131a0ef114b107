"""Benchmark the lease in force on a synthetic portfolio (issue 18, Targets): the daily close of business and early
settlement quotes. Prints figures (not a timed test).

Targets (issue 18): the close of business for 100,000 active leases (≈ 3.6 M instalments) ≤ 60 s on this machine;
a settlement quote ≤ 20 ms p95.

Set-up (untimed, its time printed apart): ``--leases`` synthetic leases (infra/synthetic_portfolio.py, the loader
of ``leaseline demo portfolio``), as the closes through the day before the business date left them. Then:

1. the close of ``--days`` business dates one after the other (default 2: the business date is the new database's,
   today, and some days turn no rent overdue — on a Monday the rents due at the weekend are still payable — while
   the next does), each by bff.servicing.close.CloseOfBusiness as the worker and ``leaseline servicing close`` run
   it, with their hooks (reminders deferred, arrears and the M3 flag kept, automatic collections started:
   bff/servicing/arrears.py, bff/servicing/collect.py; ``--no-hooks``: the close's own work alone), in batches of
   ``--batch-size`` leases: leases, instalments, seconds, leases/s and what it did (rents due, overdue, late charges);
2. the same date again, as a second worker or a replay by hand does: it must answer at once and change nothing
   (checked: every instalment and movement figure before and after);
3. ``--quotes`` settlement quotes on the business date for random leases, each reading the lease and its
   instalments from the database (SqlServicing.lease) and computing servicing.settlement_quote_on with the lease's
   terms, its arrears, late charges and deposit: p50, p95.

The database is PostgreSQL: ``--database-url`` (an empty database of the bench's own), else a fresh one on
``BENCH_DATABASE_URL``'s (else ``TEST_DATABASE_URL``'s) server when set, else on an embedded PostgreSQL started in a
temporary directory with its default settings, fsync on (bench/databases.py), dropped at the end. The machine is
2 cores shared with other work: the load average is printed before and after.

    .venv/bin/python bench/servicing.py [--leases 100000] [--quotes 2000] [--batch-size N] [--no-hooks]
                                        [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def fingerprint(db: Any) -> tuple[Any, ...]:
    """Every figure the close touches, summed: equal before and after a replay that changes nothing."""
    from sqlalchemy import text

    with db.session() as session:
        instalments = session.execute(text(
            "SELECT state, count(*), sum(penalty_accrued), sum(hashtext(coalesce(penalty_through::text, '') || "
            "coalesce(overdue_since::text, '') || updated_at::text)::bigint) FROM instalments GROUP BY state "
            "ORDER BY state")).all()
        movements = session.execute(text("SELECT count(*), sum(penalty), max(id) FROM servicing_movements")).one()
        leases = session.execute(text("SELECT closed_through, count(*) FROM leases GROUP BY 1 ORDER BY 1")).all()
    return tuple(map(tuple, instalments)), tuple(movements), tuple(map(tuple, leases))


def charged(db: Any, day: Any) -> int:
    """How many rents the close of ``day`` charged a late charge on."""
    from sqlalchemy import func
    from sqlalchemy import select

    from infra.db.models import ServicingMovementRow

    with db.session() as session:
        return int(session.execute(select(func.count()).select_from(ServicingMovementRow).where(
            ServicingMovementRow.kind == "late_charge", ServicingMovementRow.value_date == day)).scalar_one())


def quote_for(repo: Any, application_id: str, on: Any) -> Any:
    """The lease's early-settlement quote on ``on``, read from the database as the customer's page would."""
    from infra.servicing import OPEN
    from infra.servicing import RENT
    from infra.servicing import yuan
    from plans.product import EarlySettlement
    from servicing.instalments import DatedSchedule
    from servicing.instalments import Instalment
    from servicing.settlement import settlement_quote_on

    found = repo.lease(application_id)
    assert found is not None
    lease, rows = found
    balance, rents = lease.financed_amount, []
    for row in rows:
        if row.kind == RENT:
            balance -= row.principal
            rents.append(Instalment(row.number, row.due_on, yuan(row.amount), yuan(row.principal), yuan(row.interest),
                                    yuan(balance)))
    schedule = DatedSchedule(lease.starts_on, lease.ends_on, lease.timing, lease.nominal_rate,  # type: ignore[arg-type]
                             yuan(lease.financed_amount), yuan(lease.residual), tuple(rents))
    arrears = sum(r.amount - r.paid_principal - r.paid_interest - r.waived for r in rows if r.state in OPEN)
    penalties = sum(r.penalty_accrued - r.paid_penalty for r in rows)
    terms = EarlySettlement(fee_rate=lease.settlement_fee_rate, day_count=lease.settlement_day_count,
                            notice_working_days=lease.settlement_notice_working_days)
    return settlement_quote_on(schedule, on, terms=terms, deposit=yuan(lease.deposit), arrears=yuan(max(0, arrears)),
                               penalties=yuan(max(0, penalties)))


def worker_hooks(db: Any) -> list[Any]:
    """The hooks the worker's close runs (bff/servicing/hooks.py: as bff/worker.py, leaseline/servicing_cli.py)."""
    from bff.servicing.hooks import servicing_hooks
    from plans.policy import load_policy

    return servicing_hooks(db, load_policy())


def bench(url: str, leases: int, seed: int, quotes: int, batch_size: int, days: int, hooks: bool) -> None:
    from sqlalchemy import func
    from sqlalchemy import select

    from bff.servicing.close import CloseOfBusiness
    from infra.db import Database
    from infra.db.migrate import upgrade
    from infra.db.models import InstalmentRow
    from infra.db.models import LeaseRow
    from infra.servicing import SqlServicing
    from infra.synthetic_portfolio import load_portfolio

    upgrade(url)
    db = Database(url)
    now = datetime.now(UTC)
    print(f"loading {leases:,} synthetic leases (set-up, untimed) …", flush=True)
    loaded = load_portfolio(db, leases, seed, now)
    print(f"  set-up: {loaded.seconds:.1f} s — {loaded.leases:,} leases, {loaded.instalments:,} instalments, "
          f"{loaded.movements:,} movements; {loaded.overdue:,} rents overdue, {loaded.partly_paid:,} partly paid; "
          f"business date {loaded.as_of.isoformat()}")
    repo = SqlServicing(db)
    with db.session() as session:
        instalments = session.execute(select(func.count()).select_from(InstalmentRow)).scalar_one()
    day = repo.business_date()
    close = CloseOfBusiness(repo, batch_size=batch_size, hooks=worker_hooks(db) if hooks else ())
    print(f"  {load()}", flush=True)

    hooked = "with the worker's hooks" if hooks else "no hook"
    for _ in range(days):
        t0 = time.perf_counter()
        outcome = close.close(day)
        seconds = time.perf_counter() - t0
        run = outcome.run
        assert outcome.done and not outcome.already and run.leases == leases
        print(f"close of business {day.isoformat()} ({day:%a}): {run.leases:,} leases, {instalments:,} instalments "
              f"in {seconds:.2f} s = {run.leases / seconds:,.0f} leases/s ({hooked}, batches of {batch_size}: "
              f"{run.batches}; "
              f"{run.marked_due:,} rents due, {run.marked_overdue:,} overdue, late charges on {charged(db, day):,} "
              f"rents, {run.penalty / 100:,.2f} yuan) — target ≤ 60 s for 100,000 leases", flush=True)
        day = repo.business_date()
    day = outcome.business_date

    before = fingerprint(db)
    t0 = time.perf_counter()
    again = close.close(day)
    replay = time.perf_counter() - t0
    assert again.already and fingerprint(db) == before, "the replay changed something"
    print(f"the same date again: {replay * 1000:.1f} ms, already closed, nothing changed (every instalment's "
          f"state, late charge and dates, every movement compared)")

    on = repo.business_date()
    with db.session() as session:
        ids = list(session.scalars(select(LeaseRow.application_id).where(LeaseRow.ends_on >= on)))
    rng = random.Random(seed)
    timings, due = [], Decimal(0)
    for application_id in (rng.choice(ids) for _ in range(quotes)):
        t0 = time.perf_counter()
        quote = quote_for(repo, application_id, on)
        timings.append((time.perf_counter() - t0) * 1000)
        due += quote.amount_due
    print(f"settlement quote on {on.isoformat()} ({quotes:,} random leases, each read from the database and "
          f"quoted): p50 {statistics.median(timings):.2f} ms, p95 {pct(timings, 0.95):.2f} ms, max "
          f"{max(timings):.2f} ms — target p95 ≤ 20 ms")
    print(f"  {load()}")
    db.dispose()


def main() -> None:
    from bench.contract import machine
    from bench.databases import fresh_databases
    from bff.servicing.close import BATCH

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leases", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=18)
    parser.add_argument("--quotes", type=int, default=2_000)
    parser.add_argument("--batch-size", type=int, default=BATCH)
    parser.add_argument("--days", type=int, default=2, help="business dates closed one after the other")
    parser.add_argument("--hooks", action=argparse.BooleanOptionalAction, default=True,
                        help="run the worker's close hooks (reminders, arrears, collections), as the worker does")
    parser.add_argument("--database-url", default="",
                        help="an empty PostgreSQL database of its own (default: a fresh one, see above)")
    args = parser.parse_args()
    print(machine())
    print(load())
    with fresh_databases("servicing", given=args.database_url) as databases:
        print(f"database: {databases.where}")
        bench(databases.urls[0], args.leases, args.seed, args.quotes, args.batch_size, args.days, args.hooks)


if __name__ == "__main__":
    main()
