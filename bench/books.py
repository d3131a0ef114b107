"""Benchmark the books (issue 19, Targets): posting throughput through infra.books.post on PostgreSQL, the trial
balance, and the Beancount export checked by ``bean-check``. Prints figures (not a timed test).

Targets (issue 19): posting ≥ 5,000 entries/s on PostgreSQL here; the trial balance on the 100,000-lease portfolio
≤ 30 s; the Beancount export of that portfolio's daily summary, and of a 1,000-lease portfolio in full, pass
``bean-check`` within the machine's memory.

The journal is generated per lease and month (set-up, untimed: the posters of the other lanes are not what is
measured): ``--leases`` leases of 12 to 60 monthly rents (annuities at 4–9 %, principal ¥50,000–300,000, each in force
on the business date, commenced over the last five years), each with its commencement (Dr lease payments receivable
/ Cr unearned finance income, dealers payable), the dealer paid the next day, every rent due before the business date
collected on its due date, and each month's finance income at the month end (the interest of the rents due in it):
about 2 + 2 × months in force entries a lease. They are posted in batches of ``--batch-size`` leases (the close's
batches: bff/servicing/close.py BATCH), each batch one transaction through :func:`infra.books.post` — what is timed.

Then, on that journal: the trial balance at the business date (``leaseline books trial-balance``'s reads); the export
in daily summaries (``--summary``) and, for a ledger of ``--full-leases`` leases (another database), in full; each
file read by ``bean-check`` in a subprocess: its seconds and peak memory (max RSS). The balance assertions of the
lease receivable and unearned income come from the generated schedules (a sub-ledger computed apart from the
journal), the others from the journal.

The database: a fresh one on ``BENCH_DATABASE_URL``'s (else ``TEST_DATABASE_URL``'s) server, else on an embedded
PostgreSQL with its default settings, fsync on (bench/databases.py), dropped at the end. The machine is 2 cores
shared with other work: the load average is printed before and after.

    .venv/bin/python bench/books.py [--leases 100000] [--full-leases 1000] [--batch-size 500] [--seed 19]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from collections.abc import Sequence
from datetime import UTC
from datetime import date
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PAYMENTS, UNEARNED = "Assets:LeaseReceivable:Payments", "Assets:LeaseReceivable:Unearned"
DEALERS, BANK, INTEREST = "Liabilities:Payable:Dealers", "Assets:Bank:Collections", "Income:Lease:Interest"


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} {five:.2f} {fifteen:.2f}"


def add_months(day: date, months: int) -> date:
    total = day.month - 1 + months
    return date(day.year + total // 12, total % 12 + 1, min(day.day, 28))


def month_end(day: date) -> date:
    return add_months(day.replace(day=1), 1) - timedelta(days=1)


class Generated:
    """The journal's entries, lease by lease, and what the schedules say the receivable and unearned income move by
    each month (a sub-ledger apart from the journal: ``moves[first day of the month][account]``, fen)."""

    def __init__(self, leases: int, seed: int, as_of: date) -> None:
        self.leases, self.seed, self.as_of = leases, seed, as_of
        self.moves: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))

    def lease(self, n: int, rng: random.Random) -> list[Any]:
        from books.entries import credit
        from books.entries import debit
        from books.entries import entry

        lease_id, dealer_id = f"BENCH-{n:07d}", f"DEALER-{n % 50:02d}"
        term = rng.choice((12, 24, 36, 48, 60))
        start = self.as_of - timedelta(days=rng.randint(1, min(term * 30 - 31, 5 * 365)))
        principal = rng.randint(50_000, 300_000) * 100
        rate = rng.uniform(0.04, 0.09) / 12
        rent = round(principal * rate / (1 - (1 + rate) ** -term))
        balance, rents = principal, []
        for k in range(1, term + 1):
            interest = round(balance * rate)
            part = balance if k == term else rent - interest
            balance -= part
            rents.append((add_months(start, k), part + interest, interest))
        total, unearned = sum(r[1] for r in rents), sum(r[2] for r in rents)
        made = [entry(f"lease:{lease_id}:commenced", "lease_commenced", start,
                      [debit(PAYMENTS, total), credit(UNEARNED, unearned), credit(DEALERS, principal)],
                      f"bench lease {n}", lease_id=lease_id, dealer_id=dealer_id),
                entry(f"transfer:{lease_id}", "dealer_transfer", start + timedelta(days=1),
                      [debit(DEALERS, principal), credit(BANK, principal)], lease_id=lease_id, dealer_id=dealer_id)]
        moves = self.moves
        moves[start.replace(day=1)][PAYMENTS] += total
        moves[start.replace(day=1)][UNEARNED] -= unearned
        income: dict[date, int] = defaultdict(int)
        for k, (due, amount, interest) in enumerate(rents, start=1):
            if due >= self.as_of:
                break
            made.append(entry(f"receipt:{lease_id}:{k}", "receipt", due, [debit(BANK, amount),
                                                                          credit(PAYMENTS, amount)],
                              lease_id=lease_id, dealer_id=dealer_id))
            moves[due.replace(day=1)][PAYMENTS] -= amount
            income[month_end(due)] += interest
        for end, interest in income.items():
            if end < self.as_of:
                made.append(entry(f"income:{lease_id}:{end:%Y-%m}", "finance_income", end,
                                  [debit(UNEARNED, interest), credit(INTEREST, interest)], lease_id=lease_id,
                                  dealer_id=dealer_id))
                moves[end.replace(day=1)][UNEARNED] += interest
        return [m for m in made if m is not None]

    def batches(self, size: int) -> Iterator[list[Any]]:
        rng = random.Random(self.seed)
        for first in range(0, self.leases, size):
            batch: list[Any] = []
            for n in range(first, min(first + size, self.leases)):
                batch.extend(self.lease(n, rng))
            yield batch

    def subledger(self) -> Any:
        """The receivable and unearned income at the start of each day, summed from the schedules' monthly moves."""
        from infra.books_export import SubLedger

        def balances(_conn: Any, days: Sequence[date]) -> dict[date, dict[str, int]]:
            answer = {}
            for day in days:
                answer[day] = {account: sum(m[account] for month, m in self.moves.items() if month < day)
                               for account in (PAYMENTS, UNEARNED)}
            return answer

        return SubLedger("generated schedules", (PAYMENTS, UNEARNED), balances)


def post_all(db: Any, generated: Generated, batch_size: int) -> tuple[int, int, float]:
    """Post the generated journal batch by batch; (entries, lines, seconds spent in post and commit)."""
    from infra.books import post

    now = datetime.now(UTC)
    entries = lines = 0
    spent = 0.0
    for i, batch in enumerate(generated.batches(batch_size)):
        t0 = time.perf_counter()
        with db.session() as session:
            posted = post(session, batch, now)
        spent += time.perf_counter() - t0
        assert len(posted) == len(batch)
        entries += len(batch)
        lines += sum(len(e.lines) for e in batch)
        if i % 20 == 19:
            print(f"    … {entries:,} entries posted, {entries / spent:,.0f} entries/s", flush=True)
    return entries, lines, spent


def bean_check(path: Path) -> tuple[int, float, float, str]:
    """(exit code, seconds, peak memory in MB, the first line it printed) of bean-check on ``path``."""
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(Path(sys.executable).with_name("bean-check")), str(path)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    output = proc.stdout.read()
    _pid, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - t0, usage.ru_maxrss / 1024, (output.strip().splitlines() or [""])[0]


def export_and_check(db: Any, generated: Generated, folder: Path, name: str, summary: bool) -> None:
    from infra.books_export import export
    from infra.books_export import snapshot

    path = folder / f"{name}.beancount"
    with snapshot(db) as conn, path.open("w", encoding="utf-8") as out:
        done = export(conn, out, generated.as_of, summary=summary, subledgers=[generated.subledger()])
    kind = "daily summaries" if summary else "entries"
    print(f"export ({'summary' if summary else 'full'}, {generated.leases:,} leases): {done.entries:,} {kind}, "
          f"{done.assertions:,} balance assertions ({done.assertions - done.from_journal:,} from the schedules) in "
          f"{done.seconds:.2f} s, {path.stat().st_size / 1e6:.1f} MB", flush=True)
    code, seconds, rss, first = bean_check(path)
    print(f"  bean-check: exit {code} in {seconds:.1f} s, peak memory {rss:,.0f} MB"
          + (f" — {first}" if code else "") + f"; {load()}", flush=True)
    path.unlink()


def bench(url: str, leases: int, seed: int, batch_size: int, folder: Path, full: bool) -> None:
    from books.chart import load_chart
    from books.trial_balance import trial_balance
    from infra.books_export import balances_through
    from infra.books_export import snapshot
    from infra.db import Database
    from infra.db.migrate import upgrade

    upgrade(url)
    db = Database(url)
    as_of = (datetime.now(UTC) + timedelta(hours=8)).date() - timedelta(days=1)
    generated = Generated(leases, seed, as_of)
    print(f"posting the journal of {leases:,} leases through {as_of.isoformat()} (batches of {batch_size} leases, "
          f"one transaction each) …", flush=True)
    entries, lines, spent = post_all(db, generated, batch_size)
    print(f"posting: {entries:,} entries ({lines:,} lines) in {spent:.1f} s = {entries / spent:,.0f} entries/s, "
          f"{lines / spent:,.0f} lines/s — target ≥ 5,000 entries/s; {load()}", flush=True)
    with db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("ANALYZE journal_entries, journal_lines")

    t0 = time.perf_counter()
    with snapshot(db) as conn:
        report = trial_balance(load_chart(), balances_through(conn, as_of))
    seconds = time.perf_counter() - t0
    assert report["total_debit"] == report["total_credit"]
    print(f"trial balance at {as_of.isoformat()}: {len(report['accounts'])} accounts, total ¥{report['total_debit']} "
          f"each side, in {seconds:.2f} s ({seconds * 100_000 / leases:.1f} s per 100,000 leases, linear) — target "
          f"≤ 30 s for 100,000 leases", flush=True)
    export_and_check(db, generated, folder, "summary", summary=True)
    if full:
        export_and_check(db, generated, folder, "full", summary=False)
    db.dispose()


def main() -> None:
    from bench.contract import machine
    from bench.databases import fresh_databases
    from bff.servicing.close import BATCH

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--leases", type=int, default=100_000)
    parser.add_argument("--full-leases", type=int, default=1_000,
                        help="the ledger exported in full (and in summary), on a database of its own")
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--batch-size", type=int, default=BATCH)
    args = parser.parse_args()
    print(machine())
    print(load())
    with fresh_databases("books_full", "books") as databases, tempfile.TemporaryDirectory() as folder:
        print(f"database: {databases.where}")
        print(f"— a ledger of {args.full_leases:,} leases, exported in full —")
        bench(databases.urls[0], args.full_leases, args.seed, args.batch_size, Path(folder), full=True)
        print(f"— the {args.leases:,}-lease ledger, exported in daily summaries —")
        bench(databases.urls[1], args.leases, args.seed, args.batch_size, Path(folder), full=False)


if __name__ == "__main__":
    main()
