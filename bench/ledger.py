"""Benchmark the evidence log's Merkle tree at contract scale; prints figures (not a timed test).

Target: a log of ~100,000 entries answers roots and proofs in O(log n) after an O(n) build.

    .venv/bin/python bench/ledger.py [--size 100000] [--proofs 10000]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if TYPE_CHECKING:
    from contract.ledger import MerkleTree


def per_call_us(timings: list[float]) -> str:
    ordered = sorted(timings)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(timings):.1f} µs, p95 {p95:.1f} µs, max {max(timings):.1f} µs"


def bench(size: int, proofs: int) -> None:
    from contract.ledger import MerkleTree
    from contract.ledger import encode_entry
    from contract.ledger import leaf_hash
    from contract.ledger import verify_consistency
    from contract.ledger import verify_inclusion

    start = datetime(2025, 1, 1, tzinfo=UTC)
    t0 = time.perf_counter()
    entries = [encode_entry("payment", f"app-{i}", {"amount": f"{i}.00", "currency": "CNY"},
                            start + timedelta(seconds=i)) for i in range(size)]
    encoded = time.perf_counter() - t0
    t0 = time.perf_counter()
    leaves = [leaf_hash(entry) for entry in entries]
    hashed = time.perf_counter() - t0
    t0 = time.perf_counter()
    tree = MerkleTree(leaves)
    built = time.perf_counter() - t0
    t0 = time.perf_counter()
    grown = MerkleTree()
    for value in leaves:
        grown.append(value)
    appended = time.perf_counter() - t0
    assert grown.root() == tree.root()
    print(f"log of {size:,} entries:")
    print(f"  encode entries (canonical JSON): {encoded * 1000:.0f} ms; leaf hashes: {hashed * 1000:.0f} ms")
    print(f"  build MerkleTree from leaf hashes: {built * 1000:.0f} ms")
    print(f"  grow by append, one leaf at a time: {appended * 1000:.0f} ms ({appended / size * 1e6:.2f} µs per append)")

    rng = random.Random(6962)
    root = tree.root()
    timings: list[float] = []
    for index in (rng.randrange(size) for _ in range(proofs)):
        t0 = time.perf_counter()
        proof = tree.inclusion_proof(index)
        timings.append((time.perf_counter() - t0) * 1e6)
        assert verify_inclusion(leaves[index], index, size, proof, root)
    print(f"  inclusion proof at size {size:,} ({proofs:,} random leaves): {per_call_us(timings)}")
    timings = []
    for first in (rng.randrange(1, size) for _ in range(proofs)):
        t0 = time.perf_counter()
        proof = tree.consistency_proof(first)
        timings.append((time.perf_counter() - t0) * 1e6)
        assert verify_consistency(first, size, tree.root(first), root, proof)
    print(f"  consistency proof m → {size:,} ({proofs:,} random m): {per_call_us(timings)}")
    timings = []
    for earlier in (rng.randrange(size + 1) for _ in range(proofs)):
        t0 = time.perf_counter()
        tree.root(earlier)
        timings.append((time.perf_counter() - t0) * 1e6)
    print(f"  root at a random earlier size: {per_call_us(timings)}")
    bench_audit(entries, leaves, tree)


def bench_audit(entries: list[bytes], leaves: list[bytes], tree: MerkleTree) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from contract.ledger import Checkpoint
    from contract.ledger import sign
    from contract.ledger import verify_log

    key = Ed25519PrivateKey.generate()
    now = datetime(2025, 1, 1, tzinfo=UTC)
    sizes = [len(entries) * part // 4 for part in range(1, 5)]
    checkpoints = [sign(Checkpoint("bench.leaseline/evidence", size, tree.root(size), now), key) for size in sizes]
    t0 = time.perf_counter()
    report = verify_log(entries, leaves, checkpoints, key.public_key())
    elapsed = time.perf_counter() - t0
    assert report.ok, report.problems
    print(f"  verify_log over {len(entries):,} entries and {len(checkpoints)} checkpoints: {elapsed * 1000:.0f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--proofs", type=int, default=10_000)
    args = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    print(f"machine: {cpu} ({platform.machine()}), {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}")
    bench(args.size, args.proofs)


if __name__ == "__main__":
    main()
