"""The ID card's fields read by RapidOCR: PP-OCRv4's Chinese line recogniser on ONNX Runtime (RECIPES.md
"Chinese OCR: RapidOCR"; the models are inside the rapidocr-onnxruntime 1.4.4 wheel, nothing is downloaded).

Only the recogniser runs: the fields are at fixed places on the normalised card (kyc/ocr.py), so each field's
line is cut and all of a side's lines are recognised in one batch — no text detection, no angle classifier
(the card is upright). Measured with bench/ocr_compare.py on 2 cores (load average 5): both sides of a card with
their side checks p50 0.57 s, p95 1.0 s; the whole-card pipeline (detection + classifier + recognition) took
1–2.5 s for the same work.

One ONNX Runtime thread per session: the machines have 2 cores shared with the web processes and the other
jobs, where more threads were slower (bench/ocr_compare.py, measured with 1, 2 and all cores).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from kyc.idnumber import check_id_number
from kyc.ocr import ADDRESS_LINES
from kyc.ocr import BACK
from kyc.ocr import CARD_SIZE
from kyc.ocr import CHAR_PITCH
from kyc.ocr import FRONT
from kyc.ocr import INK_DISAGREES
from kyc.ocr import TITLE_LINES
from kyc.ocr import TITLE_WORDS
from kyc.ocr import Box
from kyc.ocr import IdBack
from kyc.ocr import IdFront
from kyc.ocr import Side
from kyc.ocr import blank
from kyc.ocr import chinese
from kyc.ocr import cross_checked
from kyc.ocr import id_number_in
from kyc.ocr import ink_agrees
from kyc.ocr import ink_width
from kyc.ocr import parse_date
from kyc.ocr import portrait_box
from kyc.ocr import validity

_FRONT_LINES: tuple[tuple[str, Box], ...] = (
    ("name", FRONT["name"]), ("sex", FRONT["sex"]), ("ethnicity", FRONT["ethnicity"]),
    ("birth_date", FRONT["birth_date"]), *((f"address{i}", box) for i, box in enumerate(ADDRESS_LINES)),
    ("id_number", FRONT["id_number"]))


#: below this an address line is the card's pattern, not print (RapidOCR's own ``text_score`` for whole pages;
#: an empty third line of a degraded card was read as 司 at 0.23)
LINE_SCORE = 0.5


class RapidOcrReader:
    """The service's :class:`kyc.ocr.CardReader`. Building one loads the recogniser (~0.3 s): keep one per
    process (kyc.ocr.reader)."""

    def __init__(self, threads: int = 1) -> None:
        from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-untyped]  # no type information shipped

        self._engine: Any = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=threads)

    def lines(self, image: Image.Image, boxes: Sequence[Box]) -> list[tuple[str, float]]:
        """One line of text and its confidence for each box of the normalised card, recognised in one batch."""
        normal = image.convert("RGB").resize(CARD_SIZE, Image.Resampling.LANCZOS)
        crops = [np.asarray(normal.crop(box))[:, :, ::-1] for box in boxes]  # the recogniser takes BGR (OpenCV)
        found, _elapsed = self._engine.text_rec(crops)
        return [(str(text), float(score)) for text, score in found]

    def read_front(self, image: Image.Image) -> IdFront:
        normal = image.convert("RGB").resize(CARD_SIZE, Image.Resampling.LANCZOS)
        read = dict(zip([name for name, _ in _FRONT_LINES], self.lines(normal, [b for _, b in _FRONT_LINES]),
                        strict=True))
        lines = [read[f"address{i}"] for i in range(len(ADDRESS_LINES))]
        kept = [(text, score) for text, score in lines if chinese(text) and score >= LINE_SCORE]
        number = id_number_in(read["id_number"][0])
        sex = chinese(read["sex"][0])[:1]
        sex_score = read["sex"][1]
        if sex not in ("男", "女") and check_id_number(number).valid:  # the number says it (odd: male)
            sex, sex_score = ("男" if int(number[16]) % 2 else "女"), 0.9
        fields: dict[str, Any] = {
            "name": chinese(read["name"][0]), "sex": sex, "ethnicity": chinese(read["ethnicity"][0]),
            "birth_date": parse_date(read["birth_date"][0].replace(" ", "")),
            "address": "".join(chinese(text) for text, _ in kept), "id_number": number}
        scores = {"name": read["name"][1], "sex": sex_score, "ethnicity": read["ethnicity"][1],
                  "birth_date": read["birth_date"][1], "address": min((s for _, s in kept), default=0.0),
                  "id_number": read["id_number"][1]}
        if not ink_agrees(fields["name"], ink_width(normal, FRONT["name"])):  # a character dropped or made up
            scores["name"] = min(scores["name"], INK_DISAGREES)
        for box, (text, score) in zip(ADDRESS_LINES, lines, strict=True):  # a line of print left out
            if (text, score) not in kept and ink_width(normal, box) >= CHAR_PITCH // 2:
                scores["address"] = min(scores["address"], score)
        return IdFront(portrait_box=portrait_box(image), confidence=cross_checked(fields, scores), **fields)

    def read_back(self, image: Image.Image) -> IdBack:
        (authority, authority_score), (period, period_score) = self.lines(
            image, [BACK["authority"], BACK["validity"]])
        valid_from, valid_to, long_term = validity(period)
        period_score = period_score if valid_from and (valid_to or long_term) else min(period_score, 0.3)
        name = chinese(authority)
        return IdBack(name, valid_from, valid_to, long_term,
                      {"authority": round(authority_score if name else 0.0, 3), "validity": round(period_score, 3)})

    def card_side(self, image: Image.Image) -> Side:
        """The number is looked for first; at the title's place the front has its name and portrait."""
        if blank(image):
            return "unreadable"
        (number, _), *titles = self.lines(image, [FRONT["id_number"], *TITLE_LINES])
        if len(id_number_in(number)) >= 17 and id_number_in(number)[:17].isdigit():
            return "front"
        title = "".join(chinese(text) for text, _ in titles)
        if any(word in title for word in TITLE_WORDS):
            return "back"
        return "unreadable"
