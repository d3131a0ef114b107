"""Benchmark the contract signing layer (contract/signing/): CA, event certificates, PAdES signatures with and
without an RFC 3161 timestamp, validation, PDF growth; prints figures.

The document is a 2-page Chinese contract rendered with WeasyPrint; the TSA is the local one of the tests
(tests/common/tsa.py, pyHanko's DummyTimeStamper behind http.server on 127.0.0.1), so "with TSA" measures
an HTTP round trip on loopback, not a real TSA's latency (add ~50-300 ms for a TSA on the Internet).

    .venv/bin/python bench/contract_sign.py [--runs 20]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HTML = """<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><style>
@page { size: A4; margin: 20mm; }
body { font-family: "Noto Sans CJK SC"; font-size: 11pt; line-height: 1.6; }
.sign { page-break-before: always; }
</style></head><body><h1>汽车融资租赁合同</h1><p>出租人：领航融资租赁有限公司</p><p>承租人：王小明</p>
<p>租赁物：比亚迪汉 EV，租期 36 期，每期租金人民币 5,410.60 元。</p>
<div class="sign"><h2>签署页</h2><p>承租人（签字）：</p><p>出租人（盖章）：</p></div></body></html>"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(fn: Callable[[], Any], runs: int) -> tuple[list[float], Any]:
    result = fn()  # warm up
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        result = fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out, result


def line(label: str, ms: list[float]) -> None:
    print(f"  {label:<46} p50 {statistics.median(ms):7.1f} ms   p95 {pct(ms, 0.95):7.1f} ms   (n={len(ms)})")


def drawn_png() -> bytes:
    from PIL import Image
    from PIL import ImageDraw

    img = Image.new("RGBA", (480, 160), (0, 0, 0, 0))
    ImageDraw.Draw(img).line([(30, 110), (90, 40), (150, 120), (230, 50), (300, 115), (440, 60)],
                             fill=(20, 20, 90, 255), width=7)
    out = io.BytesIO()
    img.save(out, "PNG")
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    runs = args.runs
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    print(f"machine: {cpu} ({platform.machine()}), {os.cpu_count()} cores, Python {platform.python_version()}")

    from pyhanko.sign.timestamps import HTTPTimeStamper
    from weasyprint import HTML as WeasyHTML

    from contract.signing import FieldSpec
    from contract.signing import SigningAuthority
    from contract.signing import certify
    from contract.signing import countersign_lessor
    from contract.signing import sign_lessee
    from contract.signing import verify_pdf
    from tests.common.tsa import TsaServer

    pdf = WeasyHTML(string=HTML).write_pdf()
    png = drawn_png()
    fields = [FieldSpec("lessee", 1, (72, 560, 272, 640)), FieldSpec("lessor", 1, (320, 560, 520, 640))]

    with tempfile.TemporaryDirectory() as tmp, TsaServer() as tsa:
        directory = Path(tmp) / "signing"
        t0 = time.perf_counter()
        authority = SigningAuthority.load_or_create(directory)
        first = time.perf_counter() - t0
        print(f"CA first run (root, issuing CA, lessor certificate, stamp fonts): {first:.2f} s, once per directory")
        load_ms, _ = timed(lambda: SigningAuthority.load_or_create(directory), runs)
        line("CA load (existing directory)", load_ms)
        issue_ms, event = timed(lambda: authority.issue_event_certificate("王小明", "3f" * 32, "evt-bench"), runs * 5)
        line("issue_event_certificate (P-256 key + cert)", issue_ms)

        lessor = authority.lessor_credential()
        fonts = authority.stamp_fonts
        stamper = HTTPTimeStamper(tsa.url)
        print(f"signatures ({runs} runs each, after one warm-up):")
        results: dict[str, bytes] = {}
        for label, ts in (("B-B, no TSA", None), ("B-T, local TSA", stamper)):
            ms, certified = timed(lambda ts=ts: certify(pdf, lessor, fields, timestamper=ts), runs)
            line(f"certify ({label})", ms)
            ms, signed = timed(lambda ts=ts, c=certified: sign_lessee(c, event, "lessee", png, "王小明", ts,
                                                                       fonts=fonts), runs)
            line(f"sign_lessee ({label})", ms)
            ms, done = timed(lambda ts=ts, s=signed: countersign_lessor(s, lessor, "lessor", ts, fonts=fonts), runs)
            line(f"countersign_lessor ({label})", ms)
            results[label] = done
            if ts is not None:
                results["certified"], results["signed"] = certified, signed
        rare = authority.issue_event_certificate("张喆", "3f" * 32, "evt-rare")
        ms, _ = timed(lambda: sign_lessee(results["certified"], rare, "lessee", png, "张喆", fonts=fonts), runs)
        line("sign_lessee, name outside GB 2312 (full font)", ms)

        roots = {"trust_roots": authority.trust_roots(), "tsa_roots": [tsa.root_certificate]}
        ms, reports = timed(lambda: verify_pdf(results["B-T, local TSA"], **roots), runs)
        line("verify_pdf, 3 signatures (B-T)", ms)
        assert [r.bottom_line for r in reports] == [True, True, True], [r.summary_en for r in reports]
        ms, _ = timed(lambda: verify_pdf(results["certified"], **roots), runs)
        line("verify_pdf, 1 signature", ms)

        sizes = [("unsigned (WeasyPrint)", len(pdf)), ("certified + 2 empty fields", len(results["certified"])),
                 ("+ lessee signature (image + CJK text)", len(results["signed"])),
                 ("+ lessor countersignature", len(results["B-T, local TSA"]))]
        print("PDF size (B-T):")
        previous = None
        for label, size in sizes:
            growth = f"  (+{(size - previous) / 1024:.1f} KiB)" if previous is not None else ""
            print(f"  {label:<46} {size / 1024:8.1f} KiB{growth}")
            previous = size
        print(f"  B-B document total                             {len(results['B-B, no TSA']) / 1024:8.1f} KiB")
        print(f"TSA requests served: {tsa.requests}")


if __name__ == "__main__":
    main()
