"""Benchmark the job queue (procrastinate on PostgreSQL, infra/jobs.py, bff/worker.py) with real ``leaseline worker``
processes. Prints figures (not a timed test):

* defers per second: one job per transaction (as a web request defers its job with its change), and many jobs in
  one transaction;
* trivial jobs per second through the queue, with 1 worker and with 2 (each ``--concurrency`` 4): from the moment
  ``--jobs`` due jobs are committed to the last one done (a ``risk.send`` of an application that does not exist:
  the task's look-up and nothing else);
* the latency from defer to start, p50 and p95, for jobs deferred one at a time (every 50 ms) to an idle worker:
  what LISTEN/NOTIFY gives (the workers' polling interval is the sweep tick, 5 s by default, 1 s here).

Targets (issue 15): >= 200 trivial jobs/s, p95 defer-to-start <= 100 ms.

The database is PostgreSQL: ``--database-url`` (an empty database of the bench's own), else a fresh one on
``BENCH_DATABASE_URL``'s (else ``TEST_DATABASE_URL``'s) server when set, else on an embedded PostgreSQL started in a
temporary directory with its default settings, fsync on (bench/databases.py), dropped at the end.

    .venv/bin/python bench/jobs.py [--jobs 1000] [--latency-jobs 100] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def workers(url: str, n: int, concurrency: int, var: str) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "LEASELINE_ENV": "test", "LEASELINE_DATABASE_URL": url, "LEASELINE_VAR_DIR": var,
           "LEASELINE_JOBS_TICK_SECONDS": "1"}
    return [subprocess.Popen([sys.executable, "-m", "leaseline", "worker", "--queues", "risk", "--concurrency",
                              str(concurrency)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(n)]


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()


def wait_ready(queue: object, db: object, timeout: float = 60) -> None:
    """Until a worker has registered (its heartbeat row), so that start-up is not counted."""
    from sqlalchemy import text

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with db.session() as session:  # type: ignore[attr-defined]
            if session.execute(text("SELECT count(*) FROM procrastinate_workers")).scalar_one():
                time.sleep(0.5)
                return
        time.sleep(0.1)
    raise SystemExit("no worker registered within a minute")


def main() -> None:
    from sqlalchemy import text

    from bench.databases import fresh_databases
    from infra.db import Database
    from infra.db.migrate import upgrade
    from infra.jobs import JobQueue

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--latency-jobs", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores; python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as var, fresh_databases("jobs", given=args.database_url) as databases:
        os.environ["LEASELINE_VAR_DIR"] = var
        (url,) = databases.urls
        print(f"database: {databases.where}")
        upgrade(url)
        db = Database(url)
        queue = JobQueue(db)
        n = args.jobs

        def due() -> int:
            with db.session() as session:
                return int(session.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE queue_name = 'risk' "
                                                "AND status IN ('todo', 'doing')")).scalar_one())

        # -- defers --------------------------------------------------------------------------------------------
        started = time.perf_counter()
        for i in range(200):
            with db.transaction():
                queue.defer("risk.send", {"application_id": f"one-{i}"}, queue="bench-idle")
        one = 200 / (time.perf_counter() - started)
        started = time.perf_counter()
        with db.transaction():
            for i in range(n):
                queue.defer("risk.send", {"application_id": f"batch-{i}"}, queue="bench-idle")
        batched = n / (time.perf_counter() - started)
        print(f"defer, one job per transaction:  {one:8.0f} jobs/s (200 jobs)")
        print(f"defer, {n} in one transaction: {batched:8.0f} jobs/s")

        # -- throughput ------------------------------------------------------------------------------------------
        for count in (1, 2):
            procs = workers(url, count, args.concurrency, var)
            try:
                wait_ready(queue, db)
                with db.transaction():
                    for i in range(n):
                        queue.defer("risk.send", {"application_id": f"w{count}-{i}"}, queue="risk")
                started = time.perf_counter()
                while due():
                    time.sleep(0.05)
                seconds = time.perf_counter() - started
            finally:
                stop(procs)
            with db.session() as session:
                session.execute(text("DELETE FROM procrastinate_workers"))
            print(f"{count} worker(s) × concurrency {args.concurrency}: {n} trivial jobs in {seconds:6.2f} s = "
                  f"{n / seconds:6.0f} jobs/s")

        # -- latency ---------------------------------------------------------------------------------------------
        procs = workers(url, 1, args.concurrency, var)
        try:
            wait_ready(queue, db)
            ids = []
            for i in range(args.latency_jobs):
                with db.transaction():
                    ids.append(queue.defer("risk.send", {"application_id": f"lat-{i}"}, queue="risk"))
                time.sleep(0.05)
            while due():
                time.sleep(0.05)
        finally:
            stop(procs)
        with db.session() as session:
            rows = session.execute(text(
                "SELECT d.at, s.at FROM procrastinate_events d JOIN procrastinate_events s ON s.job_id = d.job_id "
                "WHERE d.type = 'deferred' AND s.type = 'started' AND d.job_id = ANY(:ids)"), {"ids": ids}).all()
        waits = [(s - d).total_seconds() * 1000 for d, s in rows]
        print(f"defer → start, idle worker ({len(waits)} jobs, one every 50 ms): p50 {pct(waits, 0.5):6.1f} ms, "
              f"p95 {pct(waits, 0.95):6.1f} ms, max {max(waits):6.1f} ms")
        db.dispose()


if __name__ == "__main__":
    main()
