"""Benchmark the contract service over HTTP, end to end: per contract, create (render the draft, store it,
log it), the first page image, the final text (no DRAFT watermark) rendered in the background after the
draft is answered (the customer reads the pages meanwhile; timed from the draft's answer), sign (certify,
the customer's signature, the lessor's countersignature, each time-stamped, then store under Object Lock
and log) and the public verification of the signed PDF; then the evidence log's public reads (checkpoint,
inclusion proof). Prints p50/p95. Appends and proofs at a million entries: bench/ledger_store.py.

Started as the integration tests start it (tests/common/contract.py): in process, werkzeug threaded (not
gunicorn), a fresh PostgreSQL database (on ``BENCH_DATABASE_URL``'s, else ``TEST_DATABASE_URL``'s server when
set, else an embedded PostgreSQL in a temporary directory with its default settings, fsync on:
bench/databases.py), the SeaweedFS S3 server in a temporary directory, the local RFC 3161 TSA
(tests/common/tsa.py: a loopback round trip, not a real TSA's 50-300 ms), a real service token. One
untimed contract first warms the renderer's fonts and the signing keys; its figures are printed apart.

    .venv/bin/python bench/contract.py [--contracts 10] [--ledger-calls 200]
"""

from __future__ import annotations

import argparse
import base64
import io
import os
import platform
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TIMEOUT = 120
STEPS = ("create", "first page image", "final text ready (background)", "sign", "verification")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def line(label: str, ms: list[float]) -> None:
    print(f"  {label:<44} p50 {statistics.median(ms):8.1f} ms   p95 {pct(ms, 0.95):8.1f} ms   (n={len(ms)})")


def machine() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    cpu = next((ln.split(":", 1)[1].strip() for ln in cpuinfo.read_text().splitlines()
                if ln.startswith("model name")), platform.processor()) if cpuinfo.exists() else platform.processor()
    return (f"machine: {cpu or 'unknown CPU'} ({platform.machine()}), {os.cpu_count()} cores, "
            f"Python {platform.python_version()}, {platform.platform()}")


def signature_png() -> bytes:
    from PIL import Image
    from PIL import ImageDraw

    image = Image.new("RGBA", (400, 160), (255, 255, 255, 0))
    ImageDraw.Draw(image).line([(20, 120), (120, 30), (220, 130), (380, 40)], fill=(10, 10, 60, 255), width=6)
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


class Bench:
    def __init__(self, server: Any) -> None:
        import requests

        self.server = server
        self.http = requests.Session()  # keep-alive, as the BFF's ServiceClient
        self.png = base64.b64encode(signature_png()).decode()

    def timed(self, call: Callable[[], Any]) -> tuple[float, Any]:
        t0 = time.perf_counter()
        response = call()
        elapsed = (time.perf_counter() - t0) * 1000
        if response.status_code >= 300:
            raise SystemExit(f"{response.request.method} {response.url}: {response.status_code} {response.text[:500]}")
        return elapsed, response

    def contract(self, n: int) -> dict[str, float]:
        """One contract through its life; the milliseconds of each step."""
        from tests.unit.test_contract_document import LESSEE_NAME
        from tests.unit.test_contract_document import example_snapshot

        url = self.server.url
        body = {"application_id": f"bench-{n}-{secrets.token_hex(4)}", "dealer_id": "dealer-bench",
                **{k: v for k, v in example_snapshot().items()
                   if k not in ("number", "generated_at", "signed", "lessor")}}
        ms: dict[str, float] = {}
        self.write = self.server.headers("contract:write")  # a fresh token per contract (they live 5 minutes)
        ms["create"], r = self.timed(lambda: self.http.post(f"{url}/api/v1/contracts", json=body, headers=self.write,
                                                            timeout=TIMEOUT))
        contract_id = r.json()["id"]
        created = time.perf_counter()
        ms["first page image"], _ = self.timed(lambda: self.http.get(
            f"{url}/api/v1/contracts/{contract_id}/pages/1", headers=self.write, timeout=TIMEOUT))
        # the customer reads the pages before signing; meanwhile the service renders the final text
        ms["final text ready (background)"] = self.wait_final(contract_id, created)
        sign: dict[str, Any] = {"signer_name": LESSEE_NAME, "signature_png": self.png,
                "identity": {"method": "sms_otp", "reference": f"bench-{n}",
                             "verified_at": datetime.now(UTC).isoformat()}}
        ms["sign"], _ = self.timed(lambda: self.http.post(f"{url}/api/v1/contracts/{contract_id}/signatures",
                                                          json=sign, headers=self.write, timeout=TIMEOUT))
        pdf = self.http.get(f"{url}/api/v1/contracts/{contract_id}/document", headers=self.write,
                            timeout=TIMEOUT).content
        ms["verification"], r = self.timed(lambda: self.http.post(
            f"{url}/api/v1/verification", data=pdf, headers={"Content-Type": "application/pdf"}, timeout=TIMEOUT))
        verdict = r.json()
        if not verdict["all_valid"] or verdict["contract"] is None:
            raise SystemExit(f"contract {n} does not verify: {verdict}")
        self.pdf_size = len(pdf)
        return ms

    def wait_final(self, contract_id: str, since: float) -> float:
        """Milliseconds from the draft's answer until the final text rendered ahead is stored."""
        from contract.db.models import ContractRow

        db = self.server.components.db
        while True:
            with db.session() as session:
                row = session.get(ContractRow, contract_id)
                if row is not None and row.final_key:
                    return (time.perf_counter() - since) * 1000
            time.sleep(0.02)

    def ledger(self, calls: int) -> dict[str, list[float]]:
        url = f"{self.server.url}/api/v1/ledger"
        size = self.http.get(f"{url}/checkpoint", timeout=TIMEOUT).json()["tree_size"]
        rng = random.Random(7)
        out: dict[str, list[float]] = {"checkpoint": [], "inclusion proof": []}
        for _ in range(calls):
            elapsed, _r = self.timed(lambda: self.http.get(f"{url}/checkpoint", timeout=TIMEOUT))
            out["checkpoint"].append(elapsed)
            params = {"index": str(rng.randrange(size)), "tree_size": str(size)}

            def proof(p: dict[str, str] = params) -> Any:
                return self.http.get(f"{url}/proof/inclusion", params=p, timeout=TIMEOUT)

            elapsed, _r = self.timed(proof)
            out["inclusion proof"].append(elapsed)
        self.tree_size = size
        return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contracts", type=int, default=10)
    parser.add_argument("--ledger-calls", type=int, default=200)
    args = parser.parse_args()
    print(machine())

    from bench.databases import fresh_databases

    with (tempfile.TemporaryDirectory(prefix="leaseline-bench-") as tmp,
          fresh_databases("contract") as databases):
        var = Path(tmp)
        print(f"database: {databases.where}")
        os.environ["LEASELINE_VAR_DIR"] = str(var)  # generated keys stay in the temporary directory

        from infra.peers import SeaweedS3
        from tests.common.contract import ContractServer
        from tests.common.tsa import TsaServer

        t0 = time.perf_counter()
        s3 = SeaweedS3(var / "seaweedfs", access_key=f"bench{secrets.token_hex(6)}",
                       secret_key=secrets.token_urlsafe(32))
        with s3, TsaServer() as tsa, ContractServer(databases.urls[0], var, s3, tsa) as server:
            print(f"started SeaweedFS, the TSA and the contract service in {time.perf_counter() - t0:.1f} s")
            bench = Bench(server)
            t0 = time.perf_counter()
            cold = bench.contract(0)
            print(f"warm-up contract ({time.perf_counter() - t0:.1f} s): "
                  + ", ".join(f"{step} {cold[step]:.0f} ms" for step in STEPS))
            runs = [bench.contract(n) for n in range(1, args.contracts + 1)]
            print(f"{args.contracts} contracts (HTTP round trips on loopback; signed PDF {bench.pdf_size / 1024:.0f} "
                  f"KiB, 3 signatures, B-T):")
            for step in STEPS:
                line(step, [r[step] for r in runs])
            calls = bench.ledger(args.ledger_calls)
            print(f"evidence log, {args.ledger_calls} calls each (tree size {bench.tree_size}):")
            for name, ms in calls.items():
                line(name, ms)
            print(f"TSA requests served: {tsa.requests}")


if __name__ == "__main__":
    main()
