"""How long the ID card's side check takes (issue 17 §10: POST /applications/<id>/id-card/side, kyc/side_check.py):
decoding the photo as the endpoint does (kyc.images.load_image) and telling its side, per kind of photo, p50/p95
over N runs each after a warm-up. The page sends a copy reduced to 1280 px (pwa/static/js/id-card.js); a browser
that cannot reduce it sends the camera's file, measured apart as a 12 MP JPEG.

Kinds: a card filling the picture (front, back: told at the fixed places), a card lying small on a table (told by
its labels: the text detector over the whole photo), a blank picture, a blurred card (nothing read: both looks).

    .venv/bin/python bench/side_check.py [--runs 20]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from PIL import Image
from PIL import ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from kyc import side_check  # noqa: E402  (after the path above: runs from a checkout)
from kyc import specimens  # noqa: E402
from kyc.images import load_image  # noqa: E402

TABLE = (96, 72, 52)


def portrait() -> Image.Image:
    """A grey stand-in for the card's portrait (the side check reads print, not faces)."""
    from PIL import ImageDraw

    image = Image.new("RGB", (180, 220), (235, 235, 235))
    draw = ImageDraw.Draw(image)
    draw.ellipse((50, 30, 130, 130), fill=(120, 120, 120))
    draw.ellipse((20, 140, 160, 300), fill=(80, 80, 80))
    return image


def photo(card: Image.Image, size: tuple[int, int], width: float, turn: float = 0.0) -> Image.Image:
    """``card`` photographed: ``width`` of the picture's width, turned ``turn`` degrees, on a table."""
    turned = card.rotate(turn, expand=True, resample=Image.Resampling.BICUBIC, fillcolor=TABLE) if turn else card
    scale = size[0] * width / card.width
    turned = turned.resize((round(turned.width * scale), round(turned.height * scale)), Image.Resampling.LANCZOS)
    out = Image.new("RGB", size, TABLE)
    out.paste(turned, ((size[0] - turned.width) // 2, (size[1] - turned.height) // 2))
    return out


def jpeg(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    runs = parser.parse_args().runs
    data = specimens.person(name="钱思远", seed=2026)
    front, back = specimens.front(data, portrait()), specimens.back(data)
    reduced, camera = (1280, 960), (4000, 3000)
    kinds: dict[str, tuple[bytes, str]] = {
        "front, filling the picture": (jpeg(photo(front, reduced, 0.97)), "front"),
        "back, filling the picture": (jpeg(photo(back, reduced, 0.97)), "back"),
        "front, small on a table, turned 3°": (jpeg(photo(front, reduced, 0.55, 3)), "front"),
        "blank picture": (jpeg(Image.new("RGB", reduced, (200, 200, 196))), "unknown"),
        "blurred front": (jpeg(photo(front, reduced, 0.97).filter(ImageFilter.GaussianBlur(14))), "unknown"),
        "front, 12 MP camera file": (jpeg(photo(front, camera, 0.97)), "front"),
    }
    reader = side_check.side_reader()
    check: Callable[[bytes], side_check.SideVerdict] = lambda data: side_check.classify(  # noqa: E731
        load_image(data, min_side=300), reader)
    check(kinds["front, filling the picture"][0])  # warm-up: the models loaded, the first run's allocations made
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"side check, {runs} runs each, {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {load:.1f}")
    for kind, (photo_bytes, expected) in kinds.items():
        times, sides = [], set()
        for _ in range(runs):
            started = time.perf_counter()
            verdict = check(photo_bytes)
            times.append(time.perf_counter() - started)
            sides.add(verdict.side)
        times.sort()
        p95 = times[min(len(times) - 1, round(0.95 * (len(times) - 1)))]
        print(f"  {kind:38} {len(photo_bytes) / 1024:7.0f} KB  side {'/'.join(sorted(sides)):8} "
              f"(expected {expected:7})  p50 {statistics.median(times) * 1000:5.0f} ms  p95 {p95 * 1000:5.0f} ms")


if __name__ == "__main__":
    main()
