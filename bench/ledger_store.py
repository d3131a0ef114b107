"""Benchmark the evidence log as the contract service runs it (contract.evidence.EvidenceLog on a real database)
at a million entries: appends per second, one at a time and in batches, and inclusion proofs. Prints figures
(not a timed test).

Targets (issue 6): at 1,000,000 entries, >= 2,000 appends/s and an inclusion proof in <= 5 ms.

The log is started (its signed start statement at index 0), then filled to ``--size`` entries by a bulk
insert of real encoded entries, each committed with its own salt (public leaf + private opening; untimed
set-up, the figure is printed apart); then a fresh EvidenceLog catches its in-memory tree up from the table
(the cost a process pays once at start), and the measured appends go through the real code: an
idempotency-key look-up, the salted commitment, the leaf and opening inserts, the commit, a new signed
checkpoint (Ed25519) stored and written to the file anchor. The S3 anchor of the running service is left out
(one PUT per checkpoint; the service anchors per batch too).

The database is PostgreSQL: ``--database-url`` (an empty database of the bench's own), else a fresh one on
``BENCH_DATABASE_URL``'s (else ``TEST_DATABASE_URL``'s) server when set, else on an embedded PostgreSQL started
in a temporary directory with its default settings, fsync on (bench/databases.py), dropped at the end.

    .venv/bin/python bench/ledger_store.py [--size 1000000] [--database-url postgresql://...]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def fill(url: str, size: int) -> float:
    """Insert ``size`` committed entries after the start statement directly (set-up); returns the seconds."""
    from sqlalchemy import insert

    from contract.db.models import LeafRow
    from contract.db.models import OpeningRow
    from contract.ledger import encode_entry
    from contract.ledger import leaf_hash
    from contract.ledger.commitments import Opening
    from contract.ledger.commitments import new_salt
    from infra.db.engine import make_engine

    engine = make_engine(url)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    t0 = time.perf_counter()
    chunk = 20_000
    with engine.begin() as connection:
        for first in range(1, size + 1, chunk):
            leaves, openings = [], []
            for i in range(first, min(size + 1, first + chunk)):
                raw = encode_entry("payment", f"app-{i % 50_000}", {"amount": f"{i % 100_000}.00",
                                                                    "currency": "CNY"}, start + timedelta(seconds=i))
                opening = Opening(raw, new_salt())
                leaf = opening.leaf()
                leaves.append({"idx": i, "leaf": leaf, "leaf_hash": leaf_hash(leaf), "created_at": start})
                openings.append({"idx": i, "entry": raw, "salt": opening.salt, "kind": "payment",
                                 "subject": f"app-{i % 50_000}", "idempotency_key": f"fill-{i}", "legacy_idx": None})
            connection.execute(insert(LeafRow), leaves)
            connection.execute(insert(OpeningRow), openings)
    # the statistics a log that grew to this size has (autovacuum keeps them); right after a bulk load there
    # are none, and the planner scans the whole table for "idx >= n" instead of using the key
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("ANALYZE contract_evidence_leaves")
        connection.exec_driver_sql("ANALYZE contract_evidence_openings")
    engine.dispose()
    return time.perf_counter() - t0


def bench(url: str, size: int, singles: int, batches: int, batch_size: int, proofs: int, var: Path) -> None:
    from sqlalchemy import func
    from sqlalchemy import select

    from contract.db.migrate import upgrade
    from contract.db.models import LeafRow
    from contract.evidence import EvidenceLog
    from contract.evidence import FileAnchor
    from contract.evidence import NewEntry
    from contract.evidence import load_or_create_key
    from contract.ledger import verify_inclusion
    from infra.db import Database

    upgrade(url)
    probe = Database(url)
    with probe.session() as session:
        if session.scalar(select(func.count()).select_from(LeafRow)):
            raise SystemExit("the evidence log in this database is not empty: give the bench a database of its own")
    EvidenceLog(probe, load_or_create_key(var / "ledger.pem"), "bench.leaseline.cn/evidence/v2").start()
    probe.dispose()
    print(f"filling the log with {size:,} entries (bulk insert, set-up) …", flush=True)
    print(f"  set-up: {fill(url, size):.1f} s")
    db = Database(url)
    log = EvidenceLog(db, load_or_create_key(var / "ledger.pem"), "bench.leaseline.cn/evidence/v2",
                      [FileAnchor(var / "checkpoints.jsonl")])
    t0 = time.perf_counter()
    assert log.size() == size + 1  # the start statement and the entries
    print(f"  a new process catches its tree up from the table: {time.perf_counter() - t0:.2f} s "
          f"({size + 1:,} leaf hashes)")
    log.checkpoint()

    t0 = time.perf_counter()
    for n in range(singles):
        log.append("consent_given", f"app-b{n}", {"purpose": "credit_check", "text_sha256": "ab" * 32},
                   idempotency_key=f"single-{n}")
    elapsed = time.perf_counter() - t0
    print(f"  one at a time ({singles:,} appends, each committed and checkpointed): "
          f"{singles / elapsed:,.0f} appends/s ({elapsed / singles * 1000:.2f} ms each)")

    t0 = time.perf_counter()
    for b in range(batches):
        log.append_many([NewEntry("payment", f"app-c{b}", {"amount": f"{n}.00", "currency": "CNY"},
                                  idempotency_key=f"batch-{b}-{n}") for n in range(batch_size)])
    elapsed = time.perf_counter() - t0
    total = batches * batch_size
    print(f"  in batches of {batch_size} ({total:,} appends, one commit and checkpoint per batch): "
          f"{total / elapsed:,.0f} appends/s")

    final = log.size()
    checkpoint = log.checkpoint()
    rng = random.Random(6962)
    timings = []
    for index in (rng.randrange(final) for _ in range(proofs)):
        t0 = time.perf_counter()
        path = log.inclusion(index, final)
        timings.append((time.perf_counter() - t0) * 1000)
        _, leaf = log.entry(index)
        assert verify_inclusion(leaf, index, final, path, checkpoint.checkpoint.root_hash)
    print(f"  inclusion proof at {final:,} entries ({proofs:,} random leaves, through EvidenceLog.inclusion, "
          f"which first looks for new rows): p50 {statistics.median(timings):.3f} ms, "
          f"p95 {pct(timings, 0.95):.3f} ms, max {max(timings):.3f} ms")
    db.dispose()


def main() -> None:
    from bench.contract import machine
    from bench.databases import fresh_databases

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--singles", type=int, default=1_000)
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--proofs", type=int, default=2_000)
    parser.add_argument("--database-url", default="",
                        help="an empty PostgreSQL database of its own (default: a fresh one, see above)")
    args = parser.parse_args()
    print(machine())
    with (tempfile.TemporaryDirectory(prefix="leaseline-ledger-") as tmp,
          fresh_databases("ledger", given=args.database_url) as databases):
        print(f"database: {databases.where}")
        bench(databases.urls[0], args.size, args.singles, args.batches, args.batch_size, args.proofs, Path(tmp))


if __name__ == "__main__":
    main()
