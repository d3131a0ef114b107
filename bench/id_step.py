"""The whole ID-card step as the server does it (issue 17 §3: "the ID step ≤ 2 s p95 on this machine"), both sides
of one card per run, p50/p95 over the cards, and how many names, ID numbers and addresses came out exact.

One run is what the server does between the upload and the answer the phone polls for, without the network and
the object store: the request decodes both photos (at most ID_CARD_SIDE px) and re-encodes them for storage
(bff/applications/kyc.py ``_load`` and ``_jpeg``: ``upload_id_card``), and the ``kyc.check`` job decodes the
stored JPEGs and runs ``KycService._read_card`` itself (finding each card in its photo, the side checks, the reads
of both sides, the validity, the portrait's face detection), with storage and the database left out (the portrait
is not stored, the draft not written).

Decks (fresh people: names and seeds used nowhere in the tests or in tuning; a real face on each card):

- ``cropped``: the card alone, as the capture frame crops it (kyc/specimens.py, every other one blurred, noisy and
  JPEG q40 as bench/ocr_compare.py's), uploaded as JPEG q90;
- ``photo 4000×3000``: the same card photographed (tests/common/card_photos.py: 4:3, the card 60–90 % of the
  width, turned ±3°, a little perspective, a textured table, uneven light, noise, JPEG q85): the camera's file;
- ``photo 1280×960``: the copy of that photo the page makes (pwa/static/js/id-card.js: 1280 px, JPEG 0.9).

    .venv/bin/python bench/id_step.py [--cards 20] [--decks cropped,photo-4000,photo-1280]
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import random
import statistics
import sys
import time
from dataclasses import dataclass
from dataclasses import replace
from datetime import date
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bff.applications.kyc import ID_CARD_SIDE  # noqa: E402  (after the path above: runs from a checkout)
from bff.applications.kyc import KycService  # noqa: E402
from bff.applications.kyc import _jpeg  # noqa: E402
from bff.applications.kyc import _load  # noqa: E402
from kyc import faces as kyc_faces  # noqa: E402
from kyc import specimens  # noqa: E402
from tests.common import card_photos  # noqa: E402
from tests.common import faces  # noqa: E402

NAMES = ("施雅琴", "潘国栋", "蒋丽华", "田家豪", "龚晓梅", "黎明辉", "白若溪", "崔永强", "邱慧敏", "秦书瑶",
         "陆昊天", "姚佩玲", "曾凡宇", "任婉婷", "欧阳子轩", "贺建平", "汪雪莲", "毛俊熙", "段美玲", "雷振宇")
ADDRESSES = ("河南省郑州市金水区花园路39号", "陕西省西安市雁塔区小寨东路126号",
             "辽宁省大连市中山区人民路55号", "云南省昆明市五华区东风西路11号院3栋")
ETHNICITIES = ("汉", "汉", "回", "满", "汉", "壮")
SEED = 2_417_903  # this bench's people and photos: no test or tuning used these seeds
FACES = ("obama.jpg", "biden.jpg", "astronaut")


@dataclass(frozen=True)
class Upload:
    data: specimens.CardData
    front: bytes
    back: bytes


def jpeg(image: Image.Image, quality: int) -> bytes:
    out = io.BytesIO()
    image.convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def decks(count: int, wanted: set[str]) -> dict[str, list[Upload]]:
    portraits = [faces.id_portrait(faces.photo(name), size=(250, 306)) for name in FACES]
    rng = random.Random(SEED)
    out: dict[str, list[Upload]] = {name: [] for name in ("cropped", "photo-4000", "photo-1280") if name in wanted}
    for i in range(count):
        person = specimens.person(name=NAMES[i % len(NAMES)], seed=SEED + i)
        data = replace(person, address=ADDRESSES[i % len(ADDRESSES)], ethnicity=ETHNICITIES[i % len(ETHNICITIES)])
        front, back = specimens.front(data, portraits[i % len(portraits)]), specimens.back(data)
        if "cropped" in out:
            shown = (specimens.degrade(front, seed=SEED + i), specimens.degrade(back, seed=SEED + i)) if i % 2 else (
                front, back)
            out["cropped"].append(Upload(data, jpeg(shown[0], 90), jpeg(shown[1], 90)))
        if "photo-4000" in out or "photo-1280" in out:
            camera = card_photos.photographed(front, rng), card_photos.photographed(back, rng)
            if "photo-4000" in out:
                out["photo-4000"].append(Upload(data, *camera))
            if "photo-1280" in out:
                out["photo-1280"].append(Upload(data, *(card_photos.reduced(photo) for photo in camera)))
    return out


def job_service() -> KycService:
    """The KYC service with only what ``_read_card`` uses: no storage (the portrait is not kept), no database (the
    draft's OCR values are handed back instead of written)."""
    service = KycService.__new__(KycService)
    service.today = date.today
    service._keep = lambda *args, **kwargs: SimpleNamespace(id="portrait")  # type: ignore[method-assign]
    service._merge_ocr = lambda app_id, found, confidence, documents: found  # type: ignore[method-assign]
    return service


def step(service: KycService, upload: Upload) -> tuple[float, float, str, dict[str, str], dict[str, Any]]:
    """One run: (request seconds, job seconds, outcome, the fields read, the job's detail)."""
    started = time.perf_counter()
    stored = [_jpeg(_load(field, data, min_side=300, longest=ID_CARD_SIDE))
              for field, data in (("id_front", upload.front), ("id_back", upload.back))]
    uploaded = time.perf_counter()
    front, back = (Image.open(io.BytesIO(data)).convert("RGB") for data in stored)
    outcome, detail, apply = service._read_card(
        "bench", SimpleNamespace(id="bench"), front, back,  # type: ignore[arg-type]
        [SimpleNamespace(id="front"), SimpleNamespace(id="back")])  # type: ignore[list-item]
    found = apply() if apply is not None else {}
    done = time.perf_counter()
    return uploaded - started, done - uploaded, outcome, found or {}, detail


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cards", type=int, default=20)
    parser.add_argument("--decks", default="cropped,photo-4000,photo-1280")
    args = parser.parse_args()
    kyc_faces.api()  # (imported as the worker does it: its one known warning filtered)
    made = time.perf_counter()
    all_decks = decks(args.cards, {name.strip() for name in args.decks.split(",")})
    made = time.perf_counter() - made
    service = job_service()
    warm = time.perf_counter()
    step(service, next(iter(all_decks.values()))[0])  # the models loaded (the worker does it before its first job)
    warm = time.perf_counter() - warm
    print(f"ID step, {args.cards} cards per deck (both sides each), {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, load average {load()} (decks made in {made:.0f} s, warm-up {warm:.1f} s)")
    for name, deck in all_decks.items():
        totals, requests, jobs, cpu = [], [], [], []
        names = numbers = addresses = validity = ok = portraits = 0
        misread: list[str] = []
        for upload in deck:
            cpu_started = time.process_time()
            request_s, job_s, outcome, found, detail = step(service, upload)
            cpu.append(time.process_time() - cpu_started)
            requests.append(request_s)
            jobs.append(job_s)
            totals.append(request_s + job_s)
            ok += outcome == "ok"
            portraits += detail.get("portrait_faces") == 1
            names += found.get("name") == upload.data.name
            numbers += found.get("id_number") == upload.data.id_number
            addresses += found.get("address") == upload.data.address
            valid_to = upload.data.valid_to.isoformat() if upload.data.valid_to else "长期"
            validity += found.get("id_valid_to") == valid_to
            if found.get("name") != upload.data.name or found.get("id_number") != upload.data.id_number:
                misread.append(f"{upload.data.name}/{upload.data.id_number[-4:]}→{found.get('name') or '∅'}/"
                               f"{(found.get('id_number') or '∅')[-4:]} ({outcome})")
            elif found.get("address") != upload.data.address:
                misread.append(f"{upload.data.address}→{found.get('address') or '∅'} ({outcome})")
        n = len(deck)
        size = Image.open(io.BytesIO(deck[0].front)).size
        kb = statistics.mean(len(u.front) + len(u.back) for u in deck) / 1024
        print(f"  {name:<10} {size[0]}×{size[1]} {kb:5.0f} KB a pair  step p50 {statistics.median(totals):.2f} s "
              f"p95 {pct(totals, 0.95):.2f} s max {max(totals):.2f} s  (request p50 {statistics.median(requests):.2f}"
              f" s, job p50 {statistics.median(jobs):.2f} s p95 {pct(jobs, 0.95):.2f} s; CPU p50 "
              f"{statistics.median(cpu):.2f} s)")
        print(f"  {'':<10} names {names}/{n}  ID numbers {numbers}/{n}  addresses {addresses}/{n}  valid to "
              f"{validity}/{n}  accepted {ok}/{n}  portrait face {portraits}/{n}")
        if misread:
            print(f"  {'':<10} misread: {', '.join(misread)}")
    print(f"  load average at the end {load()}")


if __name__ == "__main__":
    main()
