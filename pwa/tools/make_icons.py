#!/usr/bin/env python3
"""Generate the Leaseline (租程) PWA icons.

Pure Pillow: shapes only, no fonts, no downloads.  The output is deterministic
for a given Pillow version (no timestamps or random numbers; PNGs are written
without metadata chunks).

Motif: a road drawn as the letter "L" whose foot sweeps upward to the right
(a lease "line" going up), white on the brand blue, with an accent-coloured
dashed centre line and an accent "destination" dot at the end of the road.

Usage (from the repo root):

    .venv/bin/python pwa/tools/make_icons.py [OUTPUT_DIR]

OUTPUT_DIR defaults to pwa/static/icons next to this script's parent.
"""

from __future__ import annotations

import math
import sys
from pathlib import Path
from typing import cast

from PIL import Image
from PIL import ImageDraw

PRIMARY = (0x0B, 0x5C, 0xAD)  # #0b5cad deep blue
ACCENT = (0xF5, 0xA6, 0x23)  # #f5a623
ROAD = (0xFF, 0xFF, 0xFF)

SUPERSAMPLE = 4  # draw big, then downsample with LANCZOS for anti-aliasing

Point = tuple[float, float]

# The road's centre line in unit coordinates of the motif box (0..1, y down):
# a vertical stem, then a smooth sweep to the bottom and up to the right.
STEM_TOP: Point = (0.14, 0.08)
STEM_BOTTOM: Point = (0.14, 0.62)
SWEEP: list[tuple[Point, Point, Point]] = [
    # (control 1, control 2, end) cubic Bézier segments
    ((0.14, 0.86), (0.30, 0.92), (0.52, 0.86)),
    ((0.68, 0.82), (0.80, 0.72), (0.88, 0.56)),
]
END_DOT_RADIUS = 0.11  # accent dot at the far end of the road
ROAD_WIDTH = 0.17  # stroke width of the road
DASH_WIDTH = 0.035  # stroke width of the centre dashes
DASH_ON = 0.07  # dash length, in unit lengths along the road
DASH_OFF = 0.06


def _cubic(p0: Point, p1: Point, p2: Point, p3: Point, t: float) -> Point:
    u = 1.0 - t
    a, b, c, d = u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t
    return (
        a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0],
        a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1],
    )


def road_polyline(steps: int = 400) -> list[Point]:
    """Densely sampled centre line of the road (unit coordinates)."""
    pts: list[Point] = []
    n = steps // 4
    for i in range(n):
        t = i / n
        pts.append(
            (
                STEM_TOP[0] + (STEM_BOTTOM[0] - STEM_TOP[0]) * t,
                STEM_TOP[1] + (STEM_BOTTOM[1] - STEM_TOP[1]) * t,
            )
        )
    start = STEM_BOTTOM
    for c1, c2, end in SWEEP:
        for i in range(steps):
            pts.append(_cubic(start, c1, c2, end, i / steps))
        start = end
    pts.append(start)
    return pts


def _stroke(
    draw: ImageDraw.ImageDraw,
    pts: list[tuple[float, float]],
    width: float,
    fill: tuple[int, int, int],
) -> None:
    """Stroke a polyline with round joins and caps by stamping discs."""
    r = width / 2
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        seg = math.hypot(x1 - x0, y1 - y0)
        n = max(1, int(seg / max(r / 4, 0.5)))
        for i in range(n + 1):
            x = x0 + (x1 - x0) * i / n
            y = y0 + (y1 - y0) * i / n
            draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)


def _dashes(pts: list[Point], on: float, off: float) -> list[list[Point]]:
    """Split a polyline into dash runs by arc length (centred along it)."""
    lengths = [0.0]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:], strict=False):
        lengths.append(lengths[-1] + math.hypot(x1 - x0, y1 - y0))
    total = lengths[-1]
    period = on + off
    # Centre the dash pattern so both ends look the same.
    count = int((total + off) // period)
    offset = (total - (count * period - off)) / 2
    runs: list[list[Point]] = []
    for k in range(count):
        a = offset + k * period
        b = a + on
        runs.append([p for p, s in zip(pts, lengths, strict=True) if a <= s <= b])
    return [r for r in runs if len(r) >= 2]


def draw_motif(
    draw: ImageDraw.ImageDraw,
    box: tuple[float, float, float, float],
    *,
    dashes: bool,
    road_width: float = ROAD_WIDTH,
) -> None:
    """Draw the road motif into ``box`` (x0, y0, x1, y1) in pixel coordinates."""
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0

    def px(p: Point) -> tuple[float, float]:
        return (x0 + p[0] * w, y0 + p[1] * h)

    line = road_polyline()
    _stroke(draw, [px(p) for p in line], road_width * w, ROAD)
    if dashes:
        # Leave the last stretch free for the destination dot.
        for run in _dashes(line[:-90], DASH_ON, DASH_OFF):
            _stroke(draw, [px(p) for p in run], DASH_WIDTH * w, ACCENT)
    cx, cy = px(line[-1])
    r = END_DOT_RADIUS * w
    draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=ACCENT)


def make_icon(
    size: int,
    *,
    rounded: bool,
    motif_fraction: float,
    dashes: bool = True,
    road_width: float = ROAD_WIDTH,
) -> Image.Image:
    """Render one icon.

    rounded: transparent corners (purpose "any"); otherwise full-bleed square.
    motif_fraction: edge of the motif box relative to the icon size.
    """
    big = size * SUPERSAMPLE
    mode = "RGBA" if rounded else "RGB"
    bg = (0, 0, 0, 0) if rounded else PRIMARY
    img = Image.new(mode, (big, big), bg)
    draw = ImageDraw.Draw(img)
    if rounded:
        draw.rounded_rectangle((0, 0, big - 1, big - 1), radius=round(big * 0.22), fill=PRIMARY)
    m = big * motif_fraction
    off = (big - m) / 2
    draw_motif(draw, (off, off, off + m, off + m), dashes=dashes, road_width=road_width)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def _quantize(img: Image.Image) -> Image.Image:
    """Reduce to a palette (keeps files tiny; the art is flat anyway)."""
    if img.mode == "RGBA":
        return img.quantize(colors=64, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    return img.quantize(colors=64, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)


def save(img: Image.Image, path: Path) -> None:
    _quantize(img).save(path, format="PNG", optimize=True)


# name -> (size, rounded, motif_fraction, dashes, road_width)
ICONS: dict[str, tuple[int, bool, float, bool, float]] = {
    "icon-192.png": (192, True, 0.66, True, ROAD_WIDTH),
    "icon-512.png": (512, True, 0.66, True, ROAD_WIDTH),
    # Maskable: full-bleed background; the motif must stay inside the central
    # safe-zone circle of radius 40% of the size (checked below).
    "maskable-512.png": (512, False, 0.58, True, ROAD_WIDTH),
    # iOS masks the icon itself and shows transparency as black: full-bleed.
    "apple-touch-icon.png": (180, False, 0.62, True, ROAD_WIDTH),
    # Too small for dashes; a slightly bolder road reads better at 32 px.
    "favicon-32.png": (32, True, 0.70, False, 0.20),
}


def check_safe_zone(img: Image.Image) -> float:
    """Max distance of any non-background pixel from the centre, as a fraction
    of the size.  Must be <= 0.40 for maskable icons."""
    rgb = img.convert("RGB")
    w, h = rgb.size
    cx, cy = (w - 1) / 2, (h - 1) / 2
    px = rgb.load()
    assert px is not None
    worst = 0.0
    for y in range(h):
        for x in range(w):
            r, g, b = cast(tuple[int, int, int], px[x, y])
            if abs(r - PRIMARY[0]) + abs(g - PRIMARY[1]) + abs(b - PRIMARY[2]) > 24:
                worst = max(worst, math.hypot(x - cx, y - cy) / w)
    return worst


def main(argv: list[str]) -> int:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent.parent / "static" / "icons"
    out.mkdir(parents=True, exist_ok=True)
    for name, (size, rounded, frac, dashes, road_width) in ICONS.items():
        img = make_icon(size, rounded=rounded, motif_fraction=frac, dashes=dashes, road_width=road_width)
        if name.startswith("maskable"):
            reach = check_safe_zone(img)
            if reach > 0.40:
                raise SystemExit(f"{name}: motif reaches {reach:.3f} of size, outside the 40% safe zone")
        path = out / name
        save(img, path)
        print(f"{path}  {size}x{size}  {path.stat().st_size} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
