"""Benchmark KYC: face match latency, liveness with and without the same-person check, OCR time per card,
face distances with FAR/FRR and the same-person distances of the challenge frames; prints figures.

Face photos are fetched like the tests do (tests/common/faces.py: the face-recognition 1.3.0 sdist from
PyPI, cached; scikit-image's astronaut). Cards are the synthetic ones of tests/common/idcards.py.

    .venv/bin/python bench/kyc.py [--runs 20]
"""

from __future__ import annotations

import argparse
import itertools
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def timed(fn: Callable[[], Any], runs: int) -> list[float]:
    fn()  # warm up
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000)
    return out


def line(label: str, ms: list[float]) -> None:
    print(f"  {label:<46} p50 {statistics.median(ms):7.1f} ms   p95 {pct(ms, 0.95):7.1f} ms   (n={len(ms)})")


def bench_match(runs: int) -> None:
    from kyc import faces
    from kyc import liveness
    from tests.common.faces import id_portrait
    from tests.common.faces import padded
    from tests.common.faces import photo

    t0 = time.perf_counter()
    faces.api()
    print(f"face_recognition import + model load: {time.perf_counter() - t0:.2f} s (once per process)")
    selfie = padded(photo("obama.jpg"), (1280, 960))
    portrait = id_portrait(photo("obama2.jpg"))
    result = faces.match(portrait, selfie)
    print(f"face match, 1280×960 selfie (obama) vs 180×220 ID portrait (obama2): {result.outcome}, "
          f"distance {result.distance}")
    line("match() end to end", timed(lambda: faces.match(portrait, selfie), runs))
    small = faces.downscale(selfie)
    line(f"detect() on the downscaled selfie {small.width}×{small.height}", timed(lambda: faces.detect(small), runs))
    line("detect() on the full 1280×960 (no upsampling)", timed(lambda: faces.detect(selfie), runs))
    frame = padded(photo("obama.jpg"), (640, 480))
    line("liveness analyse_frame() 640×480", timed(lambda: liveness.analyse_frame(frame), runs))
    box = faces.detect(frame)[0]
    line("encode() one face, box known, 640×480", timed(lambda: faces.encode(frame, box), runs))
    # a whole face check's liveness as face.js sends it: 1 neutral + 4 frames × 3 steps (the camera's poses)
    steps, order = camera_session()
    reference = faces.match(id_portrait(photo("obama.jpg")), steps["neutral"][0]).selfie_encoding
    without = timed(lambda: liveness.verify(steps, order), max(3, runs // 4))
    with_same = timed(lambda: liveness.verify(steps, order, reference=reference), max(3, runs // 4))
    line("liveness verify(), 13 frames 480×640", without)
    line("  + same person (3 sampled frames encoded)", with_same)
    print(f"  same-person check adds {statistics.median(with_same) - statistics.median(without):.0f} ms (p50) "
          "per face check")


def camera_session(poses: dict[str, Any] | None = None) -> tuple[dict[str, list[Any]], tuple[str, ...]]:
    """The e2e camera's poses (tests/common/camera.py) as the BFF receives them: JPEG q90, 4 frames a step."""
    from kyc.images import load_image
    from tests.common import camera
    from tests.common.faces import encode

    frames = poses or camera.person().frames
    sent = {step: load_image(encode(image, "JPEG", quality=90)) for step, image in frames.items()}
    order = ("turn_right", "blink", "turn_left")
    return {"neutral": [sent["neutral"]], **{step: [sent[step]] * 4 for step in order}}, order


def bench_ocr() -> None:
    from kyc import ocr
    from kyc import specimens as idcards

    variants: dict[str, Callable[[Any], Any]] = {"clean": lambda im: im, "degraded": idcards.degrade,
                                                 "half-size": idcards.half_size}
    fields = ("name", "sex", "ethnicity", "birth_date", "address", "id_number")
    print("OCR, synthetic cards (front + back, RapidOCR per-field lines; bench/ocr_compare.py: vs Tesseract):")
    ocr.read_back(idcards.back())  # warm up (page cache)
    for label, make in variants.items():
        times, right, total = [], 0, 0
        for data in idcards.SAMPLES:
            front, back = make(idcards.front(data)), make(idcards.back(data))
            t0 = time.perf_counter()
            f, b = ocr.read_front(front), ocr.read_back(back)
            times.append((time.perf_counter() - t0) * 1000)
            expected = {"name": data.name, "sex": data.sex, "ethnicity": data.ethnicity, "birth_date": data.birth,
                        "address": data.address, "id_number": data.id_number}
            right += sum(getattr(f, k) == expected[k] for k in fields)
            right += (b.authority == data.authority) + (b.valid_from == data.valid_from) + (b.valid_to == data.valid_to)
            total += len(fields) + 3
        print(f"  {label:<10} {right}/{total} fields right   per card p50 {statistics.median(times):6.0f} ms, "
              f"max {max(times):6.0f} ms")
    t0 = time.perf_counter()
    sides = [ocr.card_side(idcards.front(idcards.SAMPLES[0])), ocr.card_side(idcards.back()),
             ocr.card_side(idcards.blank())]
    print(f"  card_side front/back/blank → {'/'.join(sides)} in {(time.perf_counter() - t0) * 1000 / 3:.0f} ms each")


def bench_distances() -> None:
    from kyc import faces
    from tests.common.faces import id_portrait
    from tests.common.faces import photo

    names = ["obama.jpg", "obama2.jpg", "obama3.jpg", "biden.jpg", "astronaut"]
    person = {n: n.split(".")[0].rstrip("0123456789") for n in names}
    images = {n: photo(n) for n in names}
    portraits = {n: id_portrait(images[n]) for n in names}
    threshold, margin = faces.DEFAULT_THRESHOLD, faces.DEFAULT_REVIEW_MARGIN
    same: list[float] = []
    other: list[float] = []
    print(f"face distances, ID portrait (180×220) of A vs photo of B (threshold {threshold}, review ≤ "
          f"{threshold + margin:.2f}):")
    print(f"  {'portrait':<12} {'selfie':<12} {'same?':<6} {'distance':>8}  outcome")
    for a, b in itertools.permutations(names, 2):
        r = faces.match(portraits[a], images[b])
        assert r.distance is not None
        (same if person[a] == person[b] else other).append(r.distance)
        print(f"  {a:<12} {b:<12} {'yes' if person[a] == person[b] else 'no':<6} {r.distance:8.3f}  {r.outcome}")
    print(f"  same person:      n={len(same):2}  min {min(same):.3f}  max {max(same):.3f}")
    print(f"  different people: n={len(other):2}  min {min(other):.3f}  max {max(other):.3f}")
    for label, limit in (("pass", threshold), ("pass or review", threshold + margin)):
        far = sum(d <= limit for d in other) / len(other)
        frr = sum(d > limit for d in same) / len(same)
        print(f"  at {label:<15} (d ≤ {limit:.2f}): FAR {far:.1%}  FRR {frr:.1%}")
    print("  (3 people, 5 photos: too few for real error rates; no East-Asian faces in the set)")


def bench_same_person() -> None:
    from kyc import faces
    from kyc import liveness
    from tests.common import camera
    from tests.common.faces import id_portrait
    from tests.common.faces import padded
    from tests.common.faces import photo

    holder = camera.person().frames
    biden = padded(photo("biden.jpg"), camera.SIZE)
    sessions = {"card holder (obama, obama2 turned, mirrored, closed eyes)": holder,
                "accomplice does every step (biden)": {"neutral": holder["neutral"], "blink": camera.closed_eyes(biden),
                                                        "turn_left": biden, "turn_right": biden},
                "accomplice blinks only": {**holder, "blink": camera.closed_eyes(biden)}}
    threshold, margin = faces.DEFAULT_THRESHOLD, faces.DEFAULT_REVIEW_MARGIN
    print(f"same person throughout: each step's sampled frame vs the selfie (obama straight; threshold {threshold}, "
          f"review ≤ {threshold + margin:.2f}):")
    for label, poses in sessions.items():
        steps, order = camera_session(poses)
        reference = faces.match(id_portrait(photo("obama.jpg")), steps["neutral"][0]).selfie_encoding
        result = liveness.verify(steps, order, reference=reference)
        shown = "  ".join(f"{step} {d:.3f}" if d is not None else f"{step} –" for step, d in result.distances.items())
        print(f"  {label:<58} {shown}  → {result.outcome}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() else ""
    print(f"machine: {cpu} ({platform.machine()}), {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"{platform.platform()}")
    bench_match(args.runs)
    bench_ocr()
    bench_distances()
    bench_same_person()


if __name__ == "__main__":
    main()
