"""Benchmark the risk service over HTTP: assessments per second, latency p50/p99, and the auto-decision rate
over a realistic mix of applicants and sandbox personas.

Starts ``leaseline serve risk`` (gunicorn gthread, 2 workers × its default threads, like production) on a free
port with a temporary var dir and a fresh PostgreSQL database (``--database-url``, else a new one on
``BENCH_DATABASE_URL``'s, else ``TEST_DATABASE_URL``'s server when set, else on an embedded PostgreSQL started in
a temporary directory with its default settings, fsync on: bench/databases.py), mints a real service token
with the embedded issuer's key, and drives it from ``--concurrency`` client threads (keep-alive connections).
The client runs on the same cores, so the CPU it spends is reported beside the server's (Linux: from /proc);
the machine's figure includes the database server's.

    .venv/bin/python bench/risk.py [--requests 3000] [--concurrency 8] [--workers 2] [--threads N]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from kyc.idnumber import check_digit  # noqa: E402 — after the path set-up, like bench/kyc.py

#: share of each sandbox persona in the mix (the rest are clean files); a bureau that times out holds the
#: request for the provider timeout (0.5 s), so it is kept rare, as in real life
MIX = {"thin_file": 0.04, "delinquent": 0.03, "past_arrears": 0.03, "judicial_hit": 0.01, "gray_list": 0.01,
       "high_velocity": 0.02, "income_mismatch": 0.02, "slow_bureau": 0.003, "bureau_error": 0.002}


REGIONS = ("110105", "310115", "440305", "330106", "510107", "320102", "420106", "370202")
DEALERS = tuple(f"dealer-{i:02d}" for i in range(20))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unique_id_number(rng: random.Random, persona: str, seen: set[str]) -> str:
    """A valid ID number of ``persona`` not used before in this run (one applicant, one application)."""
    from tests.common.risk import PERSONA_DIGITS
    from tests.common.risk import id_number

    while True:
        birth = f"{rng.randint(1966, 2002)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        number = id_number(persona, birth=birth, region=rng.choice(REGIONS), serial=rng.randint(0, 9))
        if persona == "clean_file":  # any digits 16-17 outside the persona range are a clean file
            first17 = number[:15] + f"{rng.randint(0, 90):02d}"
            number = first17 + check_digit(first17)
            assert number[15:17] not in PERSONA_DIGITS.values() or number[15:17] == "12"
        if number not in seen:
            seen.add(number)
            return number


def applicant(rng: random.Random, seen: set[str]) -> dict[str, Any]:
    """One application: persona by the mix; income first, then a car and a plan that fit such an income
    (financed amount 3-12 months of income, as dealers sell), drawn from plausible ranges."""
    from tests.common.risk import snapshot

    roll, persona = rng.random(), "clean_file"
    for name, share in MIX.items():
        if roll < share:
            persona = name
            break
        roll -= share
    income = rng.choice([8000, 12000, 15000, 18000, 22000, 28000, 35000, 50000, 80000])
    down_ratio = rng.choice([0.15, 0.2, 0.3, 0.4])
    target = income * rng.uniform(3, 12) / (1 - down_ratio)
    price = min((89800, 129800, 159800, 219800, 259800, 329800, 459800), key=lambda p: abs(p - target))
    down = round(price * down_ratio, 2)
    financed = round(price - down, 2)
    term = rng.choice([12, 24, 36, 36, 48, 60])
    rate = 0.0599 / 12
    rent = round(financed * rate / (1 - (1 + rate) ** -term), 2)
    data = snapshot(
        persona,
        applicant__id_number=unique_id_number(rng, persona, seen),
        dealer_id=rng.choice(DEALERS),
        applicant__age=rng.randint(22, 58), applicant__monthly_income=f"{income:.2f}",
        applicant__employment=rng.choices(["employed", "self_employed", "civil_servant", "other"],
                                          [0.6, 0.25, 0.1, 0.05])[0],
        applicant__employment_years=rng.choice([0, 1, 2, 3, 5, 8, 12]),
        applicant__housing=rng.choice(["own_outright", "mortgage", "mortgage", "rent", "family"]),
        applicant__existing_loans=rng.choice([0, 0, 0, 1, 2]),
        applicant__monthly_repayments=rng.choice(["0.00", "0.00", "1500.00", "3000.00"]),
        vehicle__price=f"{price:.2f}", plan__term=term, plan__down_payment=f"{down:.2f}",
        plan__financed_amount=f"{financed:.2f}", plan__monthly_payment=f"{rent:.2f}",
        plan__deposit_free=rng.random() < 0.4,
    )
    status = rng.choices(["healthy", "low_balance", "overdrawn", None], [0.5, 0.2, 0.05, 0.25])[0]
    if status:
        data["bank_account"] = {"status": status}
    return data


def start_server(port: int, workers: int, threads: int | None, var: Path,
                 database_url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "LEASELINE_VAR_DIR": str(var), "LEASELINE_RISK_DATABASE_URL": database_url}
    log = open(var / "server.log", "wb")  # noqa: SIM115 — closed with the process
    command = [sys.executable, "-m", "leaseline", "serve", "risk", "--port", str(port), "--workers", str(workers)]
    if threads:
        command += ["--threads", str(threads)]
    proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/api/v1/openapi.json")
            if conn.getresponse().status == 200:
                return proc
        except OSError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit(f"the risk service did not start; see {var / 'server.log'}")


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and its children alive now (the gunicorn master and workers; the
    embedded PostgreSQL's postmaster and backends), with the children they reaped (PostgreSQL's autovacuum
    workers come and go); 0 where /proc is not there."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total, pids = 0.0, [pid]
    try:
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return 0.0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rpartition(")")[2].split()
        except OSError:  # a child that ended meanwhile: its time is in its parent's cutime from now on
            continue
        total += sum(int(v) for v in fields[11:15]) / tick  # utime, stime, cutime, cstime
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, from /proc/stat (every process, other users' too)."""
    try:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return 0.0, 0.0
    tick = os.sysconf("SC_CLK_TCK")
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values) - idle) / tick, sum(values) / tick


def run(port: int, token: str, bodies: list[bytes], concurrency: int) -> tuple[list[float], Counter[str], list[dict]]:
    latencies: list[float] = []
    statuses: Counter[str] = Counter()
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    queue = iter(enumerate(bodies))
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def worker() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while True:
            with lock:
                item = next(queue, None)
            if item is None:
                break
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/assessments", body=item[1], headers=headers)
                response = conn.getresponse()
                payload = response.read()
            except (OSError, http.client.HTTPException) as exc:  # counted, not a dead client thread
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                with lock:
                    statuses[type(exc).__name__] += 1
                continue
            elapsed = (time.perf_counter() - t0) * 1000
            with lock:
                latencies.append(elapsed)
                statuses[str(response.status)] += 1
                if response.status in (200, 201):
                    results.append(json.loads(payload))
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return latencies, statuses, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="gunicorn threads per worker (default: the "
                        "service's own)")
    parser.add_argument("--database-url", default=None,
                        help="an empty PostgreSQL database (default: a fresh one, see above)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()

    from bench.databases import fresh_databases
    from infra.service_tokens import TokenIssuer
    from infra.service_tokens import load_or_create_signing_key

    rng = random.Random(args.seed)
    var = Path(tempfile.mkdtemp(prefix="risk-bench-"))
    key = load_or_create_signing_key(var / "service_signing_key.pem")
    token = TokenIssuer(key, "leaseline").issue("bench", "leaseline-risk", ["risk:assess"], ttl=3600)
    seen: set[str] = set()
    warm = [json.dumps(applicant(rng, seen)).encode() for _ in range(200)]
    bodies = [json.dumps(applicant(rng, seen)).encode() for _ in range(args.requests)]
    port = free_port()
    threads = args.threads or "default"
    print(f"risk service: `leaseline serve risk` (gunicorn gthread, {args.workers} workers × {threads} threads) on "
          f"127.0.0.1:{port}")
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}; client: {args.concurrency} keep-alive threads in this process")
    with fresh_databases("risk", given=args.database_url) as databases:
        print(f"database: {databases.where}")
        proc = start_server(port, args.workers, args.threads, var, databases.urls[0])
        try:
            run(port, token, warm, args.concurrency)
            server0, client0, machine0 = process_cpu(proc.pid), time.process_time(), machine_busy()
            database0 = process_cpu(databases.server_pid) if databases.server_pid is not None else None
            t0 = time.perf_counter()
            latencies, statuses, results = run(port, token, bodies, args.concurrency)
            wall = time.perf_counter() - t0
            server = process_cpu(proc.pid) - server0
            database = (process_cpu(databases.server_pid) - database0
                        if databases.server_pid is not None and database0 is not None else None)
            client = time.process_time() - client0
            busy, total = (b - a for a, b in zip(machine0, machine_busy(), strict=True))
        finally:
            proc.terminate()
            proc.wait(15)
    print(f"\n{len(latencies)} assessments in {wall:.2f} s: {len(latencies) / wall:.0f} assessments/s; "
          f"statuses {dict(statuses)}")
    print(f"latency p50 {statistics.median(latencies):.1f} ms, p90 {pct(latencies, 0.90):.1f} ms, "
          f"p99 {pct(latencies, 0.99):.1f} ms, max {max(latencies):.1f} ms")
    n = max(len(latencies), 1)
    own = f"embedded PostgreSQL {database / n * 1000:.2f} ms, " if database is not None else ""
    print(f"CPU per assessment: server {server / n * 1000:.2f} ms, {own}client {client / n * 1000:.2f} ms, "
          f"whole machine {busy / n * 1000:.2f} ms (database and other processes included); machine busy "
          f"{busy / max(total, 1e-9):.0%} of {os.cpu_count()} cores")
    outcomes = Counter(r["outcome"] for r in results)
    tiers = Counter(r["tier"] for r in results if r["outcome"] == "refer")
    auto = outcomes["approve"] + outcomes["decline"]
    print(f"outcomes {dict(outcomes)}; referrals by tier {dict(tiers)}")
    print(f"auto-decision rate {auto / max(len(results), 1):.1%} (target ≥ 85%); approval rate "
          f"{outcomes['approve'] / max(len(results), 1):.1%}")
    reasons = Counter(r["reasons"][0]["code"] for r in results if r["outcome"] == "refer")
    print(f"first reason of referrals: {dict(reasons.most_common(8))}")


if __name__ == "__main__":
    main()
