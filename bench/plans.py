"""Benchmark the plan generator and the quote fragment over HTTP; prints figures (not a timed test).

Targets (issue 2): ≥ 200,000 plans evaluated per second on one core; one vehicle's full matrix ≤ 5 ms;
quote fragment over HTTP on loopback p95 ≤ 30 ms.

The quote fragment is served by the BFF (werkzeug, threaded) on a fresh PostgreSQL database with the demo
catalogue: on ``BENCH_DATABASE_URL``'s (else ``TEST_DATABASE_URL``'s) server when set, else on an embedded
PostgreSQL started in a temporary directory (bench/databases.py).

    .venv/bin/python bench/plans.py [--rounds 50] [--requests 400]
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def bench_generator(rounds: int) -> None:
    from bff.demo import demo_vehicles
    from plans.generator import evaluate_matrix
    from plans.generator import generate
    from plans.policy import load_policy
    from plans.product import load_product

    product, policy = load_product(), load_policy()
    vehicles = demo_vehicles()
    for v in vehicles:  # warm up
        evaluate_matrix(v, product, policy)
    per_matrix: list[float] = []
    plans = 0
    started = time.perf_counter()
    for _ in range(rounds):
        for v in vehicles:
            t0 = time.perf_counter()
            m = evaluate_matrix(v, product, policy)
            per_matrix.append((time.perf_counter() - t0) * 1000)
            plans += m.size
    elapsed = time.perf_counter() - started
    print(f"generator: {len(vehicles)} vehicles × {rounds} rounds, {plans // (len(vehicles) * rounds)} "
          f"combinations per vehicle")
    print(f"  plans evaluated per second (one thread): {plans / elapsed:,.0f}")
    print(f"  full matrix per vehicle: p50 {statistics.median(per_matrix):.2f} ms, "
          f"p95 {pct(per_matrix, 0.95):.2f} ms, max {max(per_matrix):.2f} ms")
    search: list[float] = []
    for _ in range(rounds):
        for v in vehicles:
            t0 = time.perf_counter()
            generate(v, product, policy, limit=20)
            search.append((time.perf_counter() - t0) * 1000)
    print(f"  generate (matrix + filter + rank + top 20): p50 {statistics.median(search):.2f} ms, "
          f"p95 {pct(search, 0.95):.2f} ms")


def bench_http(requests_count: int) -> None:
    import logging

    from bench.databases import fresh_databases

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory(prefix="leaseline-bench-") as tmp, fresh_databases("plans") as databases:
        os.environ["LEASELINE_VAR_DIR"] = tmp  # generated keys stay in the temporary directory
        print(f"database: {databases.where}")
        serve_quotes(databases.urls[0], requests_count)


def serve_quotes(url: str, requests_count: int) -> None:
    import requests
    from werkzeug.serving import make_server

    from bff import create_app
    from bff.demo import demo_vehicles
    from infra.catalogue import SqlCatalogue
    from infra.db.migrate import upgrade

    upgrade(url)
    app = create_app({"database_url": url, "env": "production", "secret_key": "x" * 40})
    SqlCatalogue(app.extensions["leaseline"].db).upsert(demo_vehicles())
    server = make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    rng = random.Random(7)
    ids = [v.id for v in demo_vehicles()]
    timings: list[float] = []
    with requests.Session() as session:
        for i in range(requests_count + 20):
            params = {"down": rng.choice(range(10, 60, 5)), "term": rng.choice([12, 24, 36, 48, 60]),
                      "residual": rng.choice([0, 10, 20, 30]), "deposit": rng.choice(["deposit", "free"])}
            t0 = time.perf_counter()
            r = session.get(f"{base}/plans/{rng.choice(ids)}", params=params, headers={"HX-Request": "true"})
            dt = (time.perf_counter() - t0) * 1000
            assert r.status_code == 200, r.status_code
            if i >= 20:
                timings.append(dt)
    server.shutdown()
    app.extensions["leaseline"].db.dispose()
    print(f"quote fragment over HTTP (werkzeug, loopback, {requests_count} sequential requests):")
    print(f"  p50 {statistics.median(timings):.1f} ms, p95 {pct(timings, 0.95):.1f} ms, max {max(timings):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--requests", type=int, default=400)
    args = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    print(f"machine: {cpu} ({platform.machine()}), {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}")
    bench_generator(args.rounds)
    bench_http(args.requests)


if __name__ == "__main__":
    main()
