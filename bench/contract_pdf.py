"""Benchmark the contract PDF: cold import, warm renders of a 36-month contract, page images; prints figures.

The contract is made from a real quote (the unit tests' snapshot builder). Each measurement runs in this
process, after :func:`contract.document.render.warm_up` for the warm figures.

    .venv/bin/python bench/contract_pdf.py [--renders 20] [--term 36] [--dpi 110]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--term", type=int, default=36)
    parser.add_argument("--dpi", type=int, default=110)
    args = parser.parse_args()
    print(f"python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs")

    t0 = time.perf_counter()
    import weasyprint  # noqa: F401  (the cold import is the figure)

    import_s = time.perf_counter() - t0
    from contract.document import render as rendering

    t0 = time.perf_counter()
    rendering.warm_up()
    warm_up_s = time.perf_counter() - t0
    print(f"cold import of WeasyPrint: {import_s * 1000:.0f} ms; warm_up (stylesheet, CJK fonts): "
          f"{warm_up_s * 1000:.0f} ms")

    from contract.document.model import from_snapshot
    from tests.unit.test_contract_document import make_quote
    from tests.unit.test_contract_document import snapshot_from

    vehicle, quote = make_quote(args.term)
    data = from_snapshot(snapshot_from(vehicle, quote))
    t0 = time.perf_counter()
    first = rendering.render(data)
    print(f"first render after warm-up: {(time.perf_counter() - t0) * 1000:.0f} ms")

    times: list[float] = []
    html_times: list[float] = []
    for _ in range(args.renders):
        t0 = time.perf_counter()
        rendering.render_html(data)
        html_times.append((time.perf_counter() - t0) * 1000)
        t0 = time.perf_counter()
        result = rendering.render(data)
        times.append((time.perf_counter() - t0) * 1000)
        assert result.pdf == first.pdf  # the same data gives the same bytes
    print(f"warm render of a {args.term}-month contract × {args.renders}: p50 {statistics.median(times):.0f} ms, "
          f"p95 {pct(times, 0.95):.0f} ms, max {max(times):.0f} ms (of which Jinja p50 "
          f"{statistics.median(html_times):.1f} ms)")
    print(f"  {first.pages} pages, {len(first.pdf) / 1024:.0f} KiB; signature boxes: "
          + ", ".join(f"{k} p{b.page + 1} {tuple(round(v) for v in b.box)}" for k, b in first.signature_boxes.items()))

    image_times: list[float] = []
    for _ in range(3):
        t0 = time.perf_counter()
        images = rendering.page_images(first.pdf, dpi=args.dpi)
        image_times.append((time.perf_counter() - t0) * 1000)
    sizes = sum(len(i) for i in images)
    print(f"page_images at {args.dpi} dpi: {len(images)} PNGs, {sizes / 1024:.0f} KiB in all; "
          f"p50 {statistics.median(image_times):.0f} ms over {len(image_times)} runs")


if __name__ == "__main__":
    main()
