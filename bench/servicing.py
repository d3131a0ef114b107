"""Benchmark the lease in force on a synthetic portfolio (issue 18, Targets): the daily close of business and early
settlement quotes. Prints figures (not a timed test).

Targets (issue 18): the close of business for 100,000 active leases (≈ 3.6 M instalments) ≤ 60 s on this machine;
a settlement quote ≤ 20 ms p95.

Set-up (untimed, its time printed apart): ``--leases`` synthetic leases (infra/synthetic_portfolio.py, the loader
of ``leaseline demo portfolio``), as the closes through the day before the business date left them. Then:

1. the close of ``--days`` business dates one after the other (default 2: the business date is the new database's,
   today, and some days turn no rent overdue — on a Monday the rents due at the weekend are still payable — while
   the next does), each by bff.servicing.close.CloseOfBusiness as the worker and ``leaseline servicing close`` run
   it, with their hooks (reminders deferred, arrears and the M3 flag kept, automatic collections started and failed
   ones tried again, credit-report notices and the month's report asked for, quotes expired:
   bff/servicing/hooks.py; ``--no-hooks``: the close's own work alone), in batches of ``--batch-size`` leases:
   leases, instalments, seconds, leases/s, what it did (rents due, overdue, late charges) and each hook's seconds;
   ``--mandates`` (default 0.5) of the leases have a direct-debit mandate with automatic collection on (the sandbox
   bank's, added after the load, untimed), so that each close starts the debits of the rents due the next day and
   tries failed ones again;
   with ``--calendar`` (the default) the portfolio is loaded on the business date ``--days`` before the month's
   credit-report notice day (its last day − 7: servicing/credit_report.py ``notice_day``) and the closes go on,
   day by day, through the notice day (a notice and its job for each lease with a rent overdue) and the first of the
   next month (the month's report asked for), each close labelled (ordinary day, notice day, 1st of month), and the
   hooked close of each kind of day printed side by side at the end, per 100,000 leases;
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
                                        [--mandates 0.5] [--no-calendar] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
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


class TimedHooks:
    """The hooks the worker's close runs (bff/servicing/hooks.py: as bff/worker.py, leaseline/servicing_cli.py), each
    timed: :meth:`take` answers the seconds each spent since it was last asked."""

    NAMES = {"end_of_term_hook": "end of term", "arrears_hook": "reminders+arrears", "hook": "collections",
             "credit_hook": "credit reports", "close_hook": "quotes expired"}

    def __init__(self, db: Any) -> None:
        from bff.servicing.hooks import servicing_hooks
        from plans.policy import load_policy

        self.hooks = servicing_hooks(db, load_policy())
        self.names = [self.NAMES.get(h.__name__, h.__name__) for h in self.hooks]
        self.spent = dict.fromkeys(self.names, 0.0)

    def timed(self) -> list[Any]:
        def wrap(name: str, hook: Any) -> Any:
            def run(events: Any) -> None:
                t0 = time.perf_counter()
                hook(events)
                self.spent[name] += time.perf_counter() - t0

            return run

        return [wrap(n, h) for n, h in zip(self.names, self.hooks, strict=True)]

    def take(self) -> dict[str, float]:
        spent, self.spent = self.spent, dict.fromkeys(self.names, 0.0)
        return spent


def add_mandates(db: Any, share: float, seed: int, now: datetime) -> int:
    """Give ``share`` of the leases (drawn by ``seed``) a direct-debit mandate of the sandbox bank with automatic
    collection on (agreement numbers ending 0–5: the debit succeeds), as customers who accepted it at signing."""
    import uuid

    from sqlalchemy import insert
    from sqlalchemy import select
    from sqlalchemy import text

    from infra.db.models import CollectionMandateRow
    from infra.db.models import LeaseRow

    if share <= 0:
        return 0
    rng = random.Random(seed)
    with db.session() as session:
        apps = sorted(session.scalars(select(LeaseRow.application_id)))
        chosen = [a for a in apps if rng.random() < share]
        for i in range(0, len(chosen), 5_000):
            session.execute(insert(CollectionMandateRow), [
                {"id": str(uuid.uuid4()), "application_id": a, "kind": "direct_debit", "status": "active",
                 "auto_collect": True, "agreement_no": f"SYN{n:09d}{n % 6}", "bank": "沙箱银行",
                 "account_last4": f"{n % 10_000:04d}", "text_version": "bench", "text_sha256": "0" * 64,
                 "language": "zh", "accepted_at": now, "created_at": now, "updated_at": now}
                for n, a in enumerate(chosen[i:i + 5_000], start=i)])
    with db.engine.connect() as conn:  # as the loader leaves its tables: the planner knows them
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE collection_mandates"))
    return len(chosen)


def day_kind(day: Any) -> str:
    from servicing.credit_report import Period
    from servicing.credit_report import notice_day

    if day == notice_day(Period.of(day)):
        return "notice day"
    return "1st of month" if day.day == 1 else "ordinary day"


def jobs_made(db: Any) -> dict[str, int]:
    """Jobs waiting, by task (what the hooks deferred)."""
    from sqlalchemy import text

    with db.session() as session:
        return {t: int(n) for t, n in session.execute(text(
            "SELECT task_name, count(*) FROM procrastinate_jobs GROUP BY task_name ORDER BY task_name"))}


def bench(url: str, leases: int, seed: int, quotes: int, batch_size: int, days: int, hooks: bool,
          mandates: float = 0.0, calendar: bool = False) -> None:
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
    repo = SqlServicing(db)
    if calendar:  # --days ordinary dates, then the month's notice day, then on to the 1st of the next month
        from servicing.credit_report import Period
        from servicing.credit_report import notice_day

        repo.start_business_date(notice_day(Period.of(now.date())) - timedelta(days=days), now)
    print(f"loading {leases:,} synthetic leases (set-up, untimed) …", flush=True)
    loaded = load_portfolio(db, leases, seed, now)
    print(f"  set-up: {loaded.seconds:.1f} s — {loaded.leases:,} leases, {loaded.instalments:,} instalments, "
          f"{loaded.movements:,} movements; {loaded.overdue:,} rents overdue, {loaded.partly_paid:,} partly paid; "
          f"business date {loaded.as_of.isoformat()}")
    given = add_mandates(db, mandates, seed, now)
    print(f"  {given:,} leases ({mandates:.0%}) with a direct-debit mandate, automatic collection on")
    with db.session() as session:
        instalments = session.execute(select(func.count()).select_from(InstalmentRow)).scalar_one()
    day = repo.business_date()
    timed = TimedHooks(db) if hooks else None
    close = CloseOfBusiness(repo, batch_size=batch_size, hooks=timed.timed() if timed else ())
    print(f"  {load()}", flush=True)

    hooked = "with the worker's hooks" if hooks else "no hook"
    last = (date(day.year + day.month // 12, day.month % 12 + 1, 1) if calendar and day.day > 1 else None)
    by_kind: dict[str, list[float]] = {}
    closed = 0
    while closed < days or (last is not None and day <= last):
        jobs_before = jobs_made(db)
        t0 = time.perf_counter()
        outcome = close.close(day)
        seconds = time.perf_counter() - t0
        run = outcome.run
        assert outcome.done and not outcome.already and run.leases == leases
        kind = day_kind(day)
        by_kind.setdefault(kind, []).append(seconds)
        print(f"close of business {day.isoformat()} ({day:%a}, {kind}): {run.leases:,} leases, {instalments:,} "
              f"instalments in {seconds:.2f} s = {run.leases / seconds:,.0f} leases/s ({hooked}, batches of "
              f"{batch_size}: {run.batches}; "
              f"{run.marked_due:,} rents due, {run.marked_overdue:,} overdue, late charges on {charged(db, day):,} "
              f"rents, {run.penalty / 100:,.2f} yuan) — target ≤ 60 s for 100,000 leases", flush=True)
        if timed is not None:
            made = {t: n - jobs_before.get(t, 0) for t, n in jobs_made(db).items() if n > jobs_before.get(t, 0)}
            print("  hooks: " + ", ".join(f"{n} {s:.2f} s" for n, s in timed.take().items())
                  + "; jobs deferred: " + (", ".join(f"{t} {n:,}" for t, n in made.items()) or "none"), flush=True)
        closed += 1
        day = repo.business_date()
    day = outcome.business_date
    if len(by_kind) > 1:
        print("hooked close by kind of day (its closes' median, and the slowest), × 100,000 / leases: " + "; ".join(
            f"{k} {statistics.median(v):.2f} s → {statistics.median(v) * 100_000 / leases:.0f} s (slowest "
            f"{max(v):.2f} s → {max(v) * 100_000 / leases:.0f} s)" for k, v in by_kind.items())
            + f" — target ≤ 60 s; {load()}")

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
    parser.add_argument("--mandates", type=float, default=0.5,
                        help="share of the leases with a direct-debit mandate, automatic collection on (0–1)")
    parser.add_argument("--calendar", action=argparse.BooleanOptionalAction, default=True,
                        help="start --days before the month's credit-report notice day and close on through the "
                             "1st of the next month")
    parser.add_argument("--database-url", default="",
                        help="an empty PostgreSQL database of its own (default: a fresh one, see above)")
    args = parser.parse_args()
    print(machine())
    print(load())
    with fresh_databases("servicing", given=args.database_url) as databases:
        print(f"database: {databases.where}")
        bench(databases.urls[0], args.leases, args.seed, args.quotes, args.batch_size, args.days, args.hooks,
              args.mandates, args.calendar)


if __name__ == "__main__":
    main()
