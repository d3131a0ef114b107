"""The ID card's fields read by RapidOCR: PP-OCRv4's Chinese line recogniser on ONNX Runtime (RECIPES.md
"Chinese OCR: RapidOCR"; the models are inside the rapidocr-onnxruntime 1.4.4 wheel, nothing is downloaded).

Each side is first placed (RapidOcrReader.registered): the text detector finds the lines on the whole card, the
recogniser reads only the start of each, and the lines that begin with a printed label (姓名, 性别, 出生, 住址,
公民身份号码; on the back the title, 签发机关, 有效期限) give the turn, scale and shift that the card is undone by.
Then the fields are at their fixed places (kyc/ocr.py): each field's line is cut and all of a side's lines are
recognised in one batch, so the per-field confidences and cross-checks hold as before. Without the placement a
photo turned 2–3°, 3–5 % off in size and 5–10 px off (the capture frame's crop) lost a name's first character
(bench/ocr_compare.py, perturbed deck). The side check still reads fixed places (no detection: it is cheap).
Measured with bench/ocr_compare.py on 2 cores (load average 1.4), both sides of a card with their side checks:
29/30 names aligned and 29/30 perturbed, p50 1.1–1.2 s, p95 1.2–1.5 s; without the placement, just before in the
same conditions, 29/30 aligned but 22/30 perturbed, p50 0.45 s, p95 0.5 s: the detector costs about 0.3 s a side.

One ONNX Runtime thread per session: the machines have 2 cores shared with the web processes and the other
jobs, where more threads were slower (bench/ocr_compare.py, measured with 1, 2 and all cores).
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import cv2
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


#: where the detector's box of each printed label starts on the aligned normalised card (its top-left and
#: bottom-left corners: the label begins a line whose value may be joined to it, so only the left edge is the
#: label's), measured on kyc/specimens.py SAMPLES. 民族 is left out: its box did not always start at it.
FRONT_LABELS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "姓名": ((56, 48), (56, 86)), "性别": ((56, 116), (56, 152)), "出生": ((58, 182), (58, 216)),
    "住址": ((57, 248), (57, 284)), "公民身份号码": ((59, 451), (59, 480))}
BACK_LABELS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "中华人民共和国": ((264, 77), (264, 121)), "居民身份证": ((283, 169), (283, 233)),
    "签发机关": ((146, 394), (146, 430)), "有效期限": ((146, 457), (146, 490))}
#: the detector looks at the card this many pixels wide (its default enlarges the 540 px side to 736, twice the
#: work: the labels were found as well at 640 on kyc/specimens.py SAMPLES and cards of other seeds)
DETECT_SIDE = 640
#: how many line heights from a detected line's start hold its label (公民身份号码, six characters, is about
#: 6.2 of its box's heights)
LABEL_SPAN = 7.5
#: a card whose labels are this close (px, farthest corner of the card) to their places is read as it is
REGISTER_SLACK = 2.0
#: how far (px) a label's corner may lie from where the fitted placement puts it and still count
REGISTER_OUTLIER = 8.0

#: below this an address line is the card's pattern, not print (RapidOCR's own ``text_score`` for whole pages;
#: an empty third line of a degraded card was read as 司 at 0.23)
LINE_SCORE = 0.5


def _points(values: Any) -> np.ndarray:
    """Coordinates as OpenCV takes them (32-bit floats)."""
    return np.asarray(values, dtype=np.float32)


def line_start(bgr: np.ndarray, quad: np.ndarray) -> np.ndarray:
    """The first LABEL_SPAN line heights of a detected line (corners clockwise from its top left), cut straight:
    where a label is printed, without the value after it that the recogniser need not read."""
    top, bottom = float(np.linalg.norm(quad[1] - quad[0])), float(np.linalg.norm(quad[3] - quad[0]))
    width, height = max(1, round(min(top, LABEL_SPAN * bottom))), max(1, round(bottom))
    part = width / max(top, 1.0)
    corners = _points([quad[0], quad[0] + (quad[1] - quad[0]) * part, quad[3] + (quad[2] - quad[3]) * part])
    straight = cv2.getAffineTransform(corners, _points([(0, 0), (width, 0), (width, height)]))
    return cv2.warpAffine(bgr, straight, (width, height), flags=cv2.INTER_CUBIC, borderMode=cv2.BORDER_REPLICATE)


class RapidOcrReader:
    """The service's :class:`kyc.ocr.CardReader`. Building one loads the recogniser (~0.3 s): keep one per
    process (kyc.ocr.reader)."""

    def __init__(self, threads: int = 1) -> None:
        from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-untyped]  # no type information shipped

        self._engine: Any = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=threads,
                                     det_limit_type="max", det_limit_side_len=DETECT_SIDE)

    def lines(self, image: Image.Image, boxes: Sequence[Box]) -> list[tuple[str, float]]:
        """One line of text and its confidence for each box of the normalised card, recognised in one batch."""
        normal = image.convert("RGB").resize(CARD_SIZE, Image.Resampling.LANCZOS)
        crops = [np.asarray(normal.crop(box))[:, :, ::-1] for box in boxes]  # the recogniser takes BGR (OpenCV)
        found, _elapsed = self._engine.text_rec(crops)
        return [(str(text), float(score)) for text, score in found]

    def line_starts(self, image: Image.Image) -> list[str]:
        """The start of every printed line the detector finds anywhere in ``image`` (shrunk to DETECT_SIDE px on
        its longer side), read only as far as a label reaches (line_start): a card's labels wherever the card lies
        in a photo. The side check before upload tells the sides by them (kyc/side_check.py)."""
        small = image.convert("RGB")
        small.thumbnail((DETECT_SIDE, DETECT_SIDE))
        bgr = np.ascontiguousarray(np.asarray(small)[:, :, ::-1])
        boxes, _elapsed = self._engine.text_det(bgr)
        quads = [_points(box) for box in (boxes if boxes is not None else ())]
        if not quads:
            return []
        read, _elapsed = self._engine.text_rec([line_start(bgr, quad) for quad in quads])
        return [str(text) for text, _score in read]

    def registered(self, image: Image.Image, labels: Mapping[str, tuple[tuple[float, float], tuple[float, float]]]
                   ) -> Image.Image:
        """The normalised card moved so that its printed labels sit where the fixed field boxes expect them.

        A phone photo cropped by the capture frame leaves the card turned a few degrees, a few per cent larger or
        smaller and some pixels off, and a fixed crop then cuts a field's first character (bench/ocr_compare.py,
        perturbed deck). The text detector finds the lines on the whole card and the recogniser reads each one's
        start (line_start); the lines that begin with a label give the label's left edge, and the rotation,
        scale and shift that best bring those edges to their places (outliers left out) is undone.
        Fewer than two labels found, or a card already in place: the card as it is."""
        normal = image.convert("RGB").resize(CARD_SIZE, Image.Resampling.LANCZOS)
        bgr = np.asarray(normal)[:, :, ::-1]
        boxes, _elapsed = self._engine.text_det(bgr)
        quads = [_points(box) for box in (boxes if boxes is not None else ())]
        read, _elapsed = self._engine.text_rec([line_start(bgr, quad) for quad in quads]) if quads else ([], 0)
        seen, places = [], []
        for quad, (text, _score) in zip(quads, read, strict=True):
            label = next((word for word in labels if chinese(str(text)).startswith(word)), None)
            if label is not None:
                seen += [quad[0], quad[3]]
                places += list(labels[label])
        if len(places) < 4:
            return normal
        move, _inliers = cv2.estimateAffinePartial2D(_points(seen), _points(places), method=cv2.RANSAC,
                                                     ransacReprojThreshold=REGISTER_OUTLIER)
        if move is None:
            return normal
        corners = _points([(0, 0, 1), (CARD_SIZE[0], 0, 1), (0, CARD_SIZE[1], 1), CARD_SIZE + (1,)])
        if float(np.abs(corners @ move.T - corners[:, :2]).max()) <= REGISTER_SLACK:
            return normal
        moved = cv2.warpAffine(np.asarray(normal), move, CARD_SIZE, flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)
        return Image.fromarray(moved)

    def read_front(self, image: Image.Image) -> IdFront:
        normal = self.registered(image, FRONT_LABELS)
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
            self.registered(image, BACK_LABELS), [BACK["authority"], BACK["validity"]])
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
