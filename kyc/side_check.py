"""Which side of the ID card a photo shows, in a fraction of a second: the phone asks as soon as a photo is chosen,
before anything is uploaded (issue 17 §10), so that a back chosen for the front is said at once
(这张是国徽面，请拍人像面), not after the upload and the read.

Two looks, the cheaper first:

1. the reader's own side check (kyc.ocr.CardReader.card_side: the ID number or the title at their fixed places on
   a card that fills the picture, ~0.1 s). What it finds is what the KYC job will find: such a photo is ``framed``.
2. otherwise the printed labels, wherever the card lies in the photo (RapidOcrReader.line_starts: the text
   detector over the whole picture and the start of each line, ~0.3 s): the front's 姓名/性别/民族/出生/住址/
   公民身份号码, the back's 中华人民共和国/居民身份证/签发机关/有效期限. A side told only this way is not framed:
   the job reads fields at fixed places, so the person is asked to come closer (a card on a table, small in the
   picture, is refused by the job as unreadable).

Nothing read: ``unknown``, with why — a blurred picture (模糊, measured by :func:`sharpness`), a uniform one or one
without Chinese print (看不到卡片), or Chinese print without a card's labels (看不清) — and the person retakes it.
Limits: a card upside down or turned a quarter is not told (the recogniser reads upright lines only), nor is a
card's print faked on paper (the job and the face match are what check the person).
The server still checks everything on upload: this only saves the person a wasted upload and a wait.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal
from typing import Protocol
from typing import runtime_checkable

import numpy as np
from PIL import Image
from PIL import ImageFilter
from PIL import ImageOps

from kyc import ocr
from kyc.reasons import Reason

Side = Literal["front", "back", "unknown"]
Expected = Literal["front", "back"]
#: the start of a printed label of each side (a line's start is read about 7 characters long: 中华人民共和国 may lose
#: its last character); 公民身份号码 and 居民身份证 differ in their first character
FRONT_WORDS = ("姓名", "性别", "民族", "出生", "住址", "公民身份")
BACK_WORDS = ("中华人民", "居民身份证", "签发机关", "有效期限")
#: below this :func:`sharpness` a picture with nothing readable is called blurred (the specimen cards: 1.0–1.25
#: sharp, about 1.0 with strong sensor noise and JPEG at 40, 0.7 under a 2 px blur, 0.35 under 4 px, 0.22 under
#: 6 px, where the reader stops finding the front)
BLURRY = 0.3
_HAN = re.compile(r"[\u4e00-\u9fff]")
#: the longer side (px) the sharpness is measured at
SHARPNESS_SIDE = 640


@runtime_checkable
class SideReader(Protocol):
    """What the side check needs of a reader (kyc/ocr_rapid.py ``RapidOcrReader`` has both)."""

    def card_side(self, image: Image.Image) -> ocr.Side:
        """``front``/``back`` when the ID number or the title is at its fixed place, else ``unreadable``."""
        ...

    def line_starts(self, image: Image.Image) -> list[str]:
        """The start of each printed line found anywhere in ``image``."""
        ...


@dataclass(frozen=True)
class SideVerdict:
    side: Side
    #: told at the fixed places, as the KYC job's own side check does: the card fills the picture (a back's large
    #: title may still be found on a card a little small in the picture; its fields are then placed by the job)
    framed: bool
    #: why the side is unknown (codes ``no_card``, ``blurry``, ``unreadable``), else None
    reason: Reason | None = None
    #: the labels the side was told by (empty when the fixed places told it)
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Advice:
    """What to tell the person about the photo chosen for ``expected``: ``ok`` (go on), else the reason to retake
    it; ``swap`` when it is the other side's photo (the page offers to use it there)."""

    code: str
    ok: bool
    swap: bool
    reason: Reason


NO_CARD = Reason("no_card", "看不到卡片：请把整张身份证平放在画面中间，四角完整后重拍",
                 "No card can be seen: lay the whole ID card flat in the middle of the picture, all four corners "
                 "in view, and retake it")
BLURRED = Reason("blurry", "照片模糊：请对准卡片、稳住手机，等对焦清晰后重拍",
                 "The photo is blurred: hold the phone steady over the card until it is in focus, and retake it")
UNREADABLE = Reason("unreadable", "看不清卡片上的字：请在光线充足处正对卡片、避免反光后重拍",
                    "The print on the card cannot be read: face the card in good light, avoid glare, and retake it")
SIDE_NAMES = {"front": ("人像面", "front (photo side)"), "back": ("国徽面", "back (emblem side)")}


def side_reader() -> SideReader:
    """The process's reader (kyc.ocr.reader), which must also find lines anywhere in a photo (RapidOCR does)."""
    found = ocr.reader()
    if not isinstance(found, SideReader):
        raise TypeError(f"{type(found).__name__} cannot find a card's labels in a photo")
    return found


def sharpness(image: Image.Image) -> float:
    """How sharp the picture's steepest edges are for its contrast: the 99.5th percentile of the gradient over
    the range from its 1st to 99th percentile of grey (print on a card: about 1; blurred: under BLURRY).
    A 3×3 median first, so sensor noise does not pass for edges."""
    grey = ImageOps.grayscale(image)
    grey.thumbnail((SHARPNESS_SIDE, SHARPNESS_SIDE))
    pixels = np.asarray(grey.filter(ImageFilter.MedianFilter(3)), dtype=float)
    if min(pixels.shape) < 3:
        return 0.0
    across, down = pixels[1:-1, 2:] - pixels[1:-1, :-2], pixels[2:, 1:-1] - pixels[:-2, 1:-1]
    steepest = float(np.percentile(np.hypot(across, down), 99.5))
    dark, light = np.percentile(pixels, (1, 99))
    return steepest / max(float(light - dark), 1.0)


def _labels(lines: list[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    starts = [ocr.chinese(line) for line in lines]
    front = tuple(word for word in FRONT_WORDS if any(start.startswith(word) for start in starts))
    back = tuple(word for word in BACK_WORDS if any(start.startswith(word) for start in starts))
    return front, back


def classify(image: Image.Image, reader: SideReader) -> SideVerdict:
    """The side ``image`` shows (see the module's docstring), from the cheapest look that tells it."""
    if ocr.blank(image):
        return SideVerdict("unknown", framed=False, reason=NO_CARD)
    placed = reader.card_side(image)
    if placed != "unreadable":
        return SideVerdict(placed, framed=True)
    lines = reader.line_starts(image)
    front, back = _labels(lines)
    if len(front) != len(back):
        side: Side = "front" if len(front) > len(back) else "back"
        return SideVerdict(side, framed=False, labels=front if side == "front" else back)
    if sharpness(image) < BLURRY:
        return SideVerdict("unknown", framed=False, reason=BLURRED)
    printed = any(len(_HAN.findall(line)) >= 2 for line in lines)  # Chinese print, if not a card's
    return SideVerdict("unknown", framed=False, reason=UNREADABLE if printed else NO_CARD)


def advice(expected: Expected, verdict: SideVerdict) -> Advice:
    """What to tell the person who chose this photo for the ``expected`` side."""
    want_zh, want_en = SIDE_NAMES[expected]
    if verdict.side == "unknown":
        reason = verdict.reason or UNREADABLE
        return Advice(reason.code, ok=False, swap=False, reason=reason)
    if verdict.side != expected:
        got_zh, got_en = SIDE_NAMES[verdict.side]
        return Advice("wrong_side", ok=False, swap=True, reason=Reason(
            "wrong_side", f"这张是{got_zh}，请拍{want_zh}", f"This photo is the {got_en}: take the {want_en}"))
    if not verdict.framed:
        return Advice("not_framed", ok=False, swap=False, reason=Reason(
            "not_framed", f"这是{want_zh}，但卡片在画面中太小或不正：请靠近一些，让卡片摆正并占满画面宽度后重拍",
            f"This is the {want_en}, but the card is small or askew in the picture: move closer, hold it straight "
            "so that it fills the width of the picture, and retake it"))
    return Advice("ok", ok=True, swap=False, reason=Reason("ok", f"已识别为{want_zh}", f"The {want_en} was recognised"))
