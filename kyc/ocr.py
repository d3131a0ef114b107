"""Reading a second-generation resident ID card (居民身份证), field by field, each field with a confidence.

The port is :class:`CardReader`; the engine is RapidOCR (PP-OCRv4 Chinese recognition, ONNX Runtime: the models
ship inside the ``rapidocr-onnxruntime`` wheel, nothing is downloaded at run time), in kyc/ocr_rapid.py. The
Tesseract reader (kyc/ocr_tesseract.py) is kept only as bench/ocr_compare.py's baseline: on 30 fresh specimen
cards it read 18 names of 30, RapidOCR 29 (README "ID card").

A phone photo is first turned into the card alone (:func:`card_in`, the reader's ``locate``: the card's outline
found and its perspective undone, else the card placed by its printed labels; kyc/locate.py). The side check and
the reads take the card alone, roughly upright; it is resized to the standard 856×540 (85.6×54 mm at 10 px/mm)
and each field is read from its fixed place on the card (GA 450). The reader places the card by its printed labels
first (a photo turned a few degrees, a few per cent off in size and some pixels off: kyc/ocr_rapid.py). Limits: a
card turned a quarter or upside down is not read; the chip (the authoritative data) is not read.

A confidence is the recogniser's own (0–1), lowered where the card contradicts itself: an ID number whose check
digit fails, a sex or birth date that its number does not give, a name shorter than two characters. The
recogniser's score is the mean over the characters it kept, so a dropped character never lowers it (王建 read
for 王建国): the name's ink is measured too, printed at a fixed size, and a name whose ink holds more or fewer
characters than were read is doubtful; an address line with print that was left out for its low score caps the
address's confidence at that score. Limits: the ink is print darker than a fixed grey (INK_LEVEL), so a dark or
unevenly lit photo may measure wrong; the pitch was measured on kyc/specimens.py's cards, not real ones. The
customer confirms the fields lowest confidence first (bff/applications/kyc.py).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from datetime import date
from typing import Any
from typing import Literal
from typing import Protocol

import numpy as np
from PIL import Image
from PIL import ImageOps

from kyc.idnumber import check_id_number
from kyc.reasons import Reason

CARD_SIZE = (856, 540)
Box = tuple[int, int, int, int]  # left, top, right, bottom in the 856×540 card

FRONT: dict[str, Box] = {
    "name": (150, 36, 540, 100),
    "sex": (150, 102, 240, 162),
    "ethnicity": (350, 102, 540, 162),
    "birth_date": (150, 168, 540, 228),
    "address": (150, 234, 540, 392),
    "id_number": (280, 425, 840, 495),
}
#: the address's three printed lines inside FRONT["address"] (46 px apart, as kyc/specimens.py and GA 450 print)
ADDRESS_LINES: tuple[Box, ...] = tuple((150, 238 + i * 46, 540, 286 + i * 46) for i in range(3))
PORTRAIT: Box = (550, 40, 840, 400)
BACK: dict[str, Box] = {
    "title": (230, 50, 840, 260),
    "authority": (300, 380, 840, 440),
    "validity": (300, 440, 840, 500),
}
#: the back's title, one line each (中华人民共和国 / 居民身份证): a line recogniser reads one line at a time
TITLE_LINES: tuple[Box, ...] = ((240, 56, 840, 136), (260, 146, 840, 246))
#: where each field of the application's form is printed: (side, box) for the staff's crop of a mismatch
FORM_FIELDS: dict[str, tuple[Literal["front", "back"], Box]] = {
    "name": ("front", FRONT["name"]), "id_number": ("front", FRONT["id_number"]),
    "address": ("front", FRONT["address"]), "sex": ("front", FRONT["sex"]),
    "ethnicity": ("front", FRONT["ethnicity"]), "id_valid_to": ("back", BACK["validity"]),
}

_ID = re.compile(r"\d{17}[\dX]")
_DATE = re.compile(r"(\d{4})\D{0,2}(\d{1,2})\D{0,2}(\d{1,2})")
TITLE_WORDS = ("中华", "人民", "共和国", "居民", "身份证")
#: below this a field is shown to the customer as doubtful (the strongest 请核对)
DOUBTFUL = 0.9
#: the advance of one printed character of a field's value on the normalised card (the name and address are
#: printed at one fixed size: kyc/specimens.py draws them 34 px wide, its CJK font at size 34), and the side
#: bearings the ink of a line lacks against ``n × pitch`` (measured: 2 characters 63–65 px of ink, 3 characters
#: 84–97, 4 characters 130, on clean, degraded and half-size specimen cards)
CHAR_PITCH = 34
INK_BEARING = 4
#: darker than this (0–255 grey) is print, not the card's pale guilloche pattern (about 225)
INK_LEVEL = 110
#: a name whose ink is this many characters wider or narrower than its reading is doubtful: a reader that
#: drops a character keeps its score high (the mean over the characters it kept: 王建 for 王建国)
INK_TOLERANCE = 0.5
#: the confidence of a name whose ink disagrees with its length
INK_DISAGREES = 0.5

Side = Literal["front", "back", "unreadable"]


@dataclass(frozen=True)
class IdFront:
    name: str
    sex: str
    ethnicity: str
    birth_date: date | None
    address: str
    id_number: str
    portrait_box: Box
    #: field → 0–1 (name, sex, ethnicity, birth_date, address, id_number); empty when the engine gives none
    confidence: Mapping[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sex": self.sex, "ethnicity": self.ethnicity,
                "birth_date": self.birth_date.isoformat() if self.birth_date else None, "address": self.address,
                "id_number": self.id_number, "portrait_box": list(self.portrait_box),
                "confidence": dict(self.confidence)}


@dataclass(frozen=True)
class IdBack:
    authority: str
    valid_from: date | None
    valid_to: date | None
    long_term: bool
    #: field → 0–1 (authority, validity)
    confidence: Mapping[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"authority": self.authority, "valid_from": self.valid_from.isoformat() if self.valid_from else None,
                "valid_to": self.valid_to.isoformat() if self.valid_to else None, "long_term": self.long_term,
                "confidence": dict(self.confidence)}


@dataclass(frozen=True)
class Mismatch:
    """A field where what the person typed differs from what the card shows."""

    field: str
    ocr: str
    typed: str


class CardReader(Protocol):
    """An OCR engine for ID cards (the port): kyc/ocr_rapid.py ``RapidOcrReader`` (the service's),
    kyc/ocr_tesseract.py ``TesseractReader`` (the bench's baseline)."""

    def read_front(self, image: Image.Image) -> IdFront:
        """The printed fields of the front (photo side), each with its confidence; unread fields are ''/None."""
        ...

    def read_back(self, image: Image.Image) -> IdBack:
        """The issuing authority and the validity period (``2020.05.18-2040.05.18`` or ``…-长期``)."""
        ...

    def card_side(self, image: Image.Image) -> Side:
        """``front`` when an ID number is printed at its place, ``back`` when the title is, else ``unreadable``."""
        ...

    def locate(self, image: Image.Image) -> Image.Image:
        """The card alone, flat and upright, found in a photo (kyc/locate.py); ``image`` itself when it is already
        the card alone, or when no card is found in it (the side check then says so)."""
        ...


_reader: CardReader | None = None
_reader_lock = threading.Lock()


class ReaderMissing(RuntimeError):
    """The recogniser's package (or one it needs) is not installed: rapidocr-onnxruntime is installed apart,
    without its declared dependencies (it asks for opencv-python, which needs libGL), from
    requirements-nodeps.lock, which a plain ``pip install -e .`` does not read."""


def reader() -> CardReader:
    """The process's reader, its models loaded once (a worker calls this before its first job: bff/worker.py).
    Under a lock: threads asking for it at the same time first (the web server's threads) would otherwise each
    build an engine, each loading its models."""
    global _reader  # one engine per process, built on first use
    with _reader_lock:
        if _reader is None:
            from kyc.ocr_rapid import RapidOcrReader

            try:
                _reader = RapidOcrReader()
            except ImportError as exc:
                raise ReaderMissing(f"the ID card reader cannot load ({exc.name or exc}): install "
                                    "rapidocr-onnxruntime from requirements-nodeps.lock (make install)") from exc
        return _reader


def card(image: Image.Image) -> Image.Image:
    """The card as 856×540 greyscale (OCR needs no colour)."""
    return ImageOps.grayscale(image).resize(CARD_SIZE, Image.Resampling.LANCZOS)


def chinese(text: str) -> str:
    """Words only: an engine may put spaces between CJK characters and add stray punctuation."""
    return re.sub(r"[\s\W_]+", "", text)


def id_number_in(text: str) -> str:
    """The 18-character number in ``text``, or whatever digits were read ('' when none)."""
    text = re.sub(r"\s", "", text).upper()
    found = _ID.search(text)
    return found.group(0) if found else text


def parse_date(text: str) -> date | None:
    m = _DATE.search(text)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def validity(text: str) -> tuple[date | None, date | None, bool]:
    """``(valid_from, valid_to, long_term)`` of the back's validity line."""
    text = re.sub(r"\s", "", text)
    dates = [parse_date(m.group(0)) for m in re.finditer(r"\d{4}\D?\d{2}\D?\d{2}", text)]
    long_term = "长期" in text
    valid_from = dates[0] if dates else None
    valid_to = None if long_term else (dates[1] if len(dates) > 1 else None)
    return valid_from, valid_to, long_term


def card_in(image: Image.Image) -> Image.Image:
    """The card found in a photo, cropped and straightened, by the process's reader: what the side check, the
    reads, the portrait and a field's crop take (the card alone, upright)."""
    return reader().locate(image)


def read_front(image: Image.Image) -> IdFront:
    """The printed fields of the front (photo side), by the process's reader."""
    return reader().read_front(image)


def read_back(image: Image.Image) -> IdBack:
    """Issuing authority and validity period, by the process's reader."""
    return reader().read_back(image)


def card_side(image: Image.Image) -> Side:
    """Which side this is (``unreadable`` for a blank or featureless picture), by the process's reader."""
    return reader().card_side(image)


def blank(image: Image.Image) -> bool:
    """Uniform: blank paper, lens covered, overexposed (no engine needs to look)."""
    return float(np.asarray(card(image)).std()) < 8


def scaled(image: Image.Image, box: Box) -> Box:
    """``box`` (in the 856×540 card) in ``image``'s own pixels."""
    sx, sy = image.width / CARD_SIZE[0], image.height / CARD_SIZE[1]
    left, top, right, bottom = box
    return round(left * sx), round(top * sy), round(right * sx), round(bottom * sy)


def portrait_box(image: Image.Image) -> Box:
    """The portrait's place in ``image``'s own pixels."""
    return scaled(image, PORTRAIT)


def portrait(front_image: Image.Image) -> Image.Image:
    """The portrait cut from the front, in colour, for the face match."""
    return front_image.convert("RGB").crop(portrait_box(front_image))


def field_crop(side_image: Image.Image, form_field: str) -> Image.Image:
    """Where ``form_field`` (a field of the application's form: FORM_FIELDS) is printed on its side of the card,
    cut from that side's photo: what a reviewer compares the typed and the read value with."""
    _side, box = FORM_FIELDS[form_field]
    return side_image.convert("RGB").crop(scaled(side_image, box))


def ink_width(normal: Image.Image, box: Box) -> int:
    """The width in pixels from the first to the last column of print inside ``box`` of the normalised card (0:
    no print): what a line's characters cover, whatever a recogniser made of them."""
    left, top, right, bottom = box
    dark = np.asarray(ImageOps.grayscale(normal).crop((left, top, right, bottom))) < INK_LEVEL
    columns = np.flatnonzero(dark.sum(axis=0) >= 2)  # (a lone dark pixel is noise)
    return int(columns[-1] - columns[0] + 1) if columns.size else 0


def ink_agrees(text: str, width: int) -> bool:
    """Whether ``width`` pixels of ink hold ``len(text)`` characters printed at the card's fixed size."""
    printed = (width + INK_BEARING) / CHAR_PITCH
    return abs(printed - len(text)) <= INK_TOLERANCE


def expired(back: IdBack, today: date) -> bool:
    """True when the card's validity has ended before ``today`` (a long-term card never expires)."""
    return not back.long_term and back.valid_to is not None and back.valid_to < today


def validity_reason(back: IdBack, today: date) -> Reason | None:
    """Why the back cannot be accepted: expired, or its validity period could not be read."""
    if expired(back, today):
        assert back.valid_to is not None
        return Reason("id_expired", f"身份证已于 {back.valid_to.isoformat()} 过期，请使用有效证件",
                      f"This ID card expired on {back.valid_to.isoformat()}: use a valid card")
    if not back.long_term and back.valid_to is None:
        return Reason("id_validity_unreadable", "无法识别有效期限：请在光线充足处重新拍摄身份证背面",
                      "The validity period could not be read: photograph the back of the card again in good light")
    return None


def side_reason(image: Image.Image, expected: Literal["front", "back"]) -> Reason | None:
    """A reason to refuse the upload when it is not the ``expected`` side of an ID card."""
    side = card_side(image)
    if side == expected:
        return None
    if side == "unreadable":
        return Reason("id_card_unreadable", "未识别到身份证：请将证件放在取景框内，避免反光后重新拍摄",
                      "No ID card could be read: fit the card in the frame, avoid glare and take it again")
    if expected == "front":
        return Reason("id_wrong_side", "这是身份证背面（国徽面），请上传人像面",
                      "This is the back of the card (emblem side): upload the front with the photo")
    return Reason("id_wrong_side", "这是身份证人像面，请上传背面（国徽面）",
                  "This is the front of the card (photo side): upload the back with the emblem")


def cross_checked(fields: Mapping[str, str | date | None], scores: Mapping[str, float]) -> dict[str, float]:
    """The engine's ``scores`` lowered where the card contradicts itself (the number is the best-checked field:
    GB 11643's check digit): a number whose check digit fails, a sex or birth date the number does not give, a
    name shorter than two characters, an empty field (0)."""
    out = {name: round(max(0.0, min(1.0, score)), 3) for name, score in scores.items()}
    number = str(fields.get("id_number") or "")
    checked = check_id_number(number)
    if "id_number" in out and not checked.valid:
        out["id_number"] = min(out["id_number"], 0.4)
    if checked.valid:
        if "sex" in out and fields.get("sex") != ("男" if int(number[16]) % 2 else "女"):
            out["sex"] = min(out["sex"], 0.3)
        if "birth_date" in out and fields.get("birth_date") != checked.birth_date:
            out["birth_date"] = min(out["birth_date"], 0.3)
    if "name" in out and len(str(fields.get("name") or "")) < 2:
        out["name"] = min(out["name"], 0.3)
    for name in out:
        if not fields.get(name):
            out[name] = 0.0
    return out


def compare(ocr: IdFront, typed: Mapping[str, str]) -> tuple[Mismatch, ...]:
    """Fields the person typed that differ from the card (spaces ignored; ID number case-insensitive)."""
    mismatches = []
    for name, value in typed.items():
        if name not in ("name", "sex", "ethnicity", "address", "id_number"):
            continue
        read = str(getattr(ocr, name))
        if _norm(read) != _norm(value):
            mismatches.append(Mismatch(name, read, value))
    return tuple(mismatches)


def _norm(value: str) -> str:
    return "".join(value.split()).upper()
