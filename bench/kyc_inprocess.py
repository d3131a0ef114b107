"""The KYC checks' own work done in the bench's process, as a worker's ``kyc.check`` job does it once it has its
images (bff/applications/kyc.py ``KycService.run_check``): the same-run baseline that bench/journey.py sets beside
the queue's figures (issue 15: the face check's end-to-end time through the queue no worse than +10 % vs
in-process).

The images are those the journey posted, as the BFF stored them (``load_image``, re-encoded JPEG q90: ``_jpeg``)
and as the job reads them back (``Image.open(...).convert("RGB")``). Timed, for each check:

* face (``KycService._match``): decoding the stored selfie, frames and ID portrait, ``kyc.faces.match`` and
  ``kyc.liveness.verify`` of the frames by step with the selfie's encoding as reference, the BFF's thresholds;
* ID card (``KycService._read_card``): decoding both sides, ``side_reason`` of each, ``read_front``,
  ``read_back``, ``validity_reason``, the portrait cut, its faces counted and re-encoded for storage.

Not timed (the job does them, around that work): its S3 reads and the portrait's put, the database (the check's
row and documents, start, claim and finish), the draft's OCR merge and the application's status change.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from PIL import Image

from bff.applications.kyc import MAX_UPLOAD_BYTES
from bff.applications.kyc import _jpeg  # the very encoding the BFF stores an upload with
from bff.config import Settings
from kyc import faces
from kyc import liveness
from kyc import ocr
from kyc.images import load_image

#: the BFF's defaults, which the bench's services run with (no LEASELINE_FACE_* in their environment)
THRESHOLD, REVIEW_MARGIN = Settings.face_threshold, Settings.face_review_margin


class BaselineFailed(RuntimeError):
    """The in-process work did not give the outcome the journey's job gave: its time would not be comparable."""


@dataclass(frozen=True)
class CardImages:
    """Both sides of an ID card as stored (JPEG bytes)."""

    front: bytes
    back: bytes


@dataclass(frozen=True)
class FaceImages:
    """A face check's images as stored (JPEG bytes): the ID portrait, the selfie, the frames in the order posted
    with their step, and the challenge the page asked for."""

    portrait: bytes
    selfie: bytes
    frames: tuple[tuple[str, bytes], ...]
    challenge: tuple[str, ...]


def stored(data: bytes, min_side: int) -> bytes:
    """An upload as the BFF keeps it (``KycService.upload_*``: decoded upright, re-encoded)."""
    return _jpeg(load_image(data, max_bytes=MAX_UPLOAD_BYTES, min_side=min_side))


def decoded(data: bytes) -> Image.Image:
    """A stored image as the job reads it (``KycService._image``)."""
    return Image.open(io.BytesIO(data)).convert("RGB")


def card_images(front: bytes, back: bytes) -> CardImages:
    return CardImages(stored(front, 300), stored(back, 300))


def face_images(card: CardImages, selfie: bytes, frames: Mapping[str, Sequence[bytes]],
                challenge: Sequence[str]) -> FaceImages:
    """What the face job reads: the portrait the ID job cut from the stored front (and stored), the selfie, and the
    frames as face.js posts them (one neutral, then each step's in the order the page asked)."""
    posted = [("neutral", frames["neutral"][0]), *((step, f) for step in challenge for f in frames[step])]
    return FaceImages(_jpeg(ocr.portrait(decoded(card.front))), stored(selfie, 240),
                      tuple((step, stored(data, 160)) for step, data in posted), tuple(challenge))


def face_check(images: FaceImages) -> str:
    """The face job's work on its images; its outcome as ``KycService._match`` decides it."""
    selfie = decoded(images.selfie)
    steps: dict[str, list[Image.Image]] = {}
    for step, data in images.frames:
        steps.setdefault(step, []).append(decoded(data))
    match = faces.match(decoded(images.portrait), selfie, threshold=THRESHOLD, review_margin=REVIEW_MARGIN)
    live = liveness.verify(steps, images.challenge, reference=match.selfie_encoding, threshold=THRESHOLD,
                           review_margin=REVIEW_MARGIN)
    if "fail" in (match.outcome, live.outcome):
        return "fail"
    return "pass" if match.outcome == live.outcome == "pass" else "review"


def id_card_check(images: CardImages, today: date | None = None) -> str:
    """The ID job's work on its images; ``ok`` or ``refused`` as ``KycService._read_card`` decides it."""
    front, back = decoded(images.front), decoded(images.back)
    if ocr.side_reason(front, "front") is not None or ocr.side_reason(back, "back") is not None:
        return "refused"
    ocr.read_front(front)
    if ocr.validity_reason(ocr.read_back(back), today or date.today()) is not None:
        return "refused"
    portrait = ocr.portrait(front)
    if len(faces.detect(portrait)) != 1:
        return "refused"
    _jpeg(portrait)  # as the job's _keep encodes it before its put
    return "ok"


def timed(work: Callable[[int], str], runs: int, expected: str) -> list[float]:
    """Seconds of ``work(n)`` for n in 0..runs-1, after one untimed ``work(0)`` (models loaded, caches warm); each
    must give ``expected``, the outcome the journey's jobs gave."""

    def once(n: int) -> float:
        began = time.perf_counter()
        outcome = work(n)
        took = time.perf_counter() - began
        if outcome != expected:
            raise BaselineFailed(f"in-process outcome {outcome!r}, the journey's jobs gave {expected!r}")
        return took

    once(0)
    return [once(n) for n in range(runs)]
