"""Reading a second-generation resident ID card (居民身份证) with Tesseract, field by field.

The input must be the card alone, roughly upright (cropped by the capture UI's frame); it is resized to the
standard 856×540 (85.6×54 mm at 10 px/mm) and each field is read from its fixed place on the card: the
ID number with ``eng --psm 7`` restricted to ``0-9X``, the Chinese fields with ``chi_sim`` (RECIPES.md
"OCR of ID cards"). Limits: no perspective correction or card detection — a phone photo at an angle or with
a background must be rectified first; the chip (the authoritative data) is not read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any
from typing import Literal

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
PORTRAIT: Box = (550, 40, 840, 400)
BACK: dict[str, Box] = {
    "title": (230, 50, 840, 260),
    "authority": (300, 380, 840, 440),
    "validity": (300, 440, 840, 500),
}

_ID = re.compile(r"\d{17}[\dX]")
_DATE = re.compile(r"(\d{4})\D{0,2}(\d{1,2})\D{0,2}(\d{1,2})")

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

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "sex": self.sex, "ethnicity": self.ethnicity,
                "birth_date": self.birth_date.isoformat() if self.birth_date else None, "address": self.address,
                "id_number": self.id_number, "portrait_box": list(self.portrait_box)}


@dataclass(frozen=True)
class IdBack:
    authority: str
    valid_from: date | None
    valid_to: date | None
    long_term: bool

    def as_dict(self) -> dict[str, Any]:
        return {"authority": self.authority, "valid_from": self.valid_from.isoformat() if self.valid_from else None,
                "valid_to": self.valid_to.isoformat() if self.valid_to else None, "long_term": self.long_term}


@dataclass(frozen=True)
class Mismatch:
    """A field where what the person typed differs from what the card shows."""

    field: str
    ocr: str
    typed: str


def card(image: Image.Image) -> Image.Image:
    """The card as 856×540 greyscale (OCR needs no colour)."""
    return ImageOps.grayscale(image).resize(CARD_SIZE, Image.Resampling.LANCZOS)


def _ocr(image: Image.Image, box: Box, lang: str, psm: int, whitelist: str | None = None) -> str:
    """Tesseract on one field with a white margin around it (measured on the synthetic cards: at card
    resolution with a margin, single characters such as 男/汉 are read; upscaled ×2 they are not).
    OMP_THREAD_LIMIT=1: Tesseract's OpenMP threads are slower than one on small crops (RECIPES.md)."""
    import pytesseract  # type: ignore[import-untyped]  # the package ships no type information

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    crop = ImageOps.expand(image.crop(box), 20, fill=255)
    config = f"--psm {psm}" + (f" -c tessedit_char_whitelist={whitelist}" if whitelist else "")
    return str(pytesseract.image_to_string(crop, lang=lang, config=config))


def _chinese(text: str) -> str:
    """Tesseract puts spaces between CJK characters and may add stray punctuation: keep words only."""
    return re.sub(r"[\s\W_]+", "", text)


def read_id_number(image: Image.Image) -> str:
    """The 18-character number, or whatever digits were read ('' when none)."""
    raw = _ocr(card(image), FRONT["id_number"], "eng", 7, "0123456789X")
    text = re.sub(r"\s", "", raw).upper()
    found = _ID.search(text)
    return found.group(0) if found else text


def _date(text: str) -> date | None:
    m = _DATE.search(text)
    if not m:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def read_front(image: Image.Image) -> IdFront:
    """The printed fields of the front (photo side). Unread fields are ''/None."""
    grey = card(image)
    text = {f: _ocr(grey, FRONT[f], "chi_sim", 6 if f == "address" else 7) for f in
            ("name", "sex", "ethnicity", "birth_date", "address")}
    sex = _chinese(text["sex"])[:1]
    if sex not in ("男", "女"):  # one character: retry as a single character (psm 10)
        sex = _chinese(_ocr(grey, FRONT["sex"], "chi_sim", 10))[:1]
    id_number = read_id_number(image)
    if sex not in ("男", "女") and check_id_number(id_number).valid:
        # Tesseract reads a lone 女 in the card's type as "MX"; the number's 17th digit says it (odd: male)
        sex = "男" if int(id_number[16]) % 2 else "女"
    return IdFront(name=_chinese(text["name"]), sex=sex,
                   ethnicity=_chinese(text["ethnicity"]), birth_date=_date(text["birth_date"].replace(" ", "")),
                   address=_chinese(text["address"]), id_number=id_number, portrait_box=portrait_box(image))


def portrait_box(image: Image.Image) -> Box:
    """The portrait's place in ``image``'s own pixels."""
    sx, sy = image.width / CARD_SIZE[0], image.height / CARD_SIZE[1]
    left, top, right, bottom = PORTRAIT
    return round(left * sx), round(top * sy), round(right * sx), round(bottom * sy)


def portrait(front_image: Image.Image) -> Image.Image:
    """The portrait cut from the front, in colour, for the face match."""
    return front_image.convert("RGB").crop(portrait_box(front_image))


def read_back(image: Image.Image) -> IdBack:
    """Issuing authority and validity period (``2020.05.18-2040.05.18`` or ``…-长期``)."""
    grey = card(image)
    authority = _chinese(_ocr(grey, BACK["authority"], "chi_sim", 7))
    validity = re.sub(r"\s", "", _ocr(grey, BACK["validity"], "chi_sim", 7))
    dates = [_date(m.group(0)) for m in re.finditer(r"\d{4}\D?\d{2}\D?\d{2}", validity)]
    long_term = "长期" in validity
    valid_from = dates[0] if dates else None
    valid_to = None if long_term else (dates[1] if len(dates) > 1 else None)
    return IdBack(authority, valid_from, valid_to, long_term)


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


def card_side(image: Image.Image) -> Side:
    """Which side this is: ``front`` when an ID number is printed at its place, ``back`` when the title
    中华人民共和国 / 居民身份证 is found, ``unreadable`` for a blank or featureless picture. The number is looked for
    first: at the title's place the front has its name and ethnicity lines, which Tesseract may read as 人民 (民族)
    once the photo went through JPEG, as every stored photo has."""
    grey = card(image)
    if float(np.asarray(grey).std()) < 8:  # uniform: blank paper, lens covered, overexposed
        return "unreadable"
    if len(read_id_number(grey)) >= 17:  # an 18-character number, perhaps with one character lost
        return "front"
    title = _chinese(_ocr(grey, BACK["title"], "chi_sim", 6))
    if any(word in title for word in ("中华", "人民", "共和国", "居民", "身份证")):
        return "back"
    return "unreadable"


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


def compare(ocr: IdFront, typed: Mapping[str, str]) -> tuple[Mismatch, ...]:
    """Fields the person typed that differ from the card (spaces ignored; ID number case-insensitive)."""
    mismatches = []
    for field, value in typed.items():
        if field not in ("name", "sex", "ethnicity", "address", "id_number"):
            continue
        read = str(getattr(ocr, field))
        if _norm(read) != _norm(value):
            mismatches.append(Mismatch(field, read, value))
    return tuple(mismatches)


def _norm(value: str) -> str:
    return "".join(value.split()).upper()
