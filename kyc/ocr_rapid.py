"""The ID card's fields read by RapidOCR: PP-OCRv4's Chinese line recogniser on ONNX Runtime (RECIPES.md
"Chinese OCR: RapidOCR"; the models are inside the rapidocr-onnxruntime 1.4.4 wheel, nothing is downloaded).

A photo is first turned into the card alone (:meth:`RapidOcrReader.locate`: its outline found and straightened,
kyc/locate.py; else, where the picture cuts the card or the surface is as pale as it, the card placed by its
printed labels found anywhere in the photo). Each side is then placed (RapidOcrReader.registered): the text
detector finds the lines where the labels are (姓名, 性别, 出生, 住址, 公民身份号码 at the front's left; on the
back the title, 签发机关, 有效期限), and the turn, scale and shift that bring their left edges to the labels'
places is undone — read from the lines' positions alone where they agree (:func:`placed_by_lines`), else from the
lines whose start the recogniser reads as a label. Then the fields are at their fixed places (kyc/ocr.py): each
field's line is cut, narrowed to its print (:func:`inked`), and all of a side's lines are recognised in one batch,
so the per-field confidences and cross-checks hold as before. Without the placement a photo turned 2–3°, 3–5 % off
in size and 5–10 px off (the capture frame's crop) lost a name's first character (bench/ocr_compare.py, perturbed
deck); without the card found first, a phone's 4:3 photo lost the ID number's last digit.

Time goes to the recogniser (each line costs about as much as a 48×320 picture, however short: RapidOCR pads
to that) and the detector, so each is asked as little as the read needs: the detector sees the card at
DETECT_SIDE px, the front's only where its labels are (FRONT_REGION); the labels are placed without recognition
where their positions agree; the side check reads the ID number's place first (a front needs nothing else).
bench/id_step.py measures the whole step (both sides, as the ``kyc.check`` job does it, from the upload's
decoding to the portrait's face) and bench/ocr_compare.py the reads (README "ID card" gives the figures).

One ONNX Runtime thread per session: the machines have 2 cores shared with the web processes and the other
jobs, where more threads were slower (bench/ocr_compare.py, measured with 1, 2 and all cores).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
from PIL import Image

from kyc import locate
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
#: label's), measured with the detector at DETECT_SIDE on kyc/specimens.py SAMPLES and three more people (each
#: within 3 px). 民族 is left out: its box did not always start at it. The back's title is read as far as a line's
#: start reaches (LABEL_SPAN): 中华人民共和, without 国.
Labels = Mapping[str, tuple[tuple[float, float], tuple[float, float]]]
FRONT_LABELS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "姓名": ((52, 45), (53, 89)), "性别": ((52, 112), (52, 156)), "出生": ((55, 181), (55, 219)),
    "住址": ((56, 247), (57, 285)), "公民身份号码": ((55, 448), (57, 485))}
BACK_LABELS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    "中华人民共和": ((261, 75), (261, 123)), "居民身份证": ((282, 167), (282, 233)),
    "签发机关": ((142, 392), (142, 435)), "有效期限": ((143, 456), (143, 494))}
#: the detector looks at the card this many pixels wide (the labels were found as well at 640 as at 856 on
#: kyc/specimens.py SAMPLES and cards of other seeds). RapidOCR's own limit (``det_limit_side_len`` with
#: ``det_limit_type="max"``) is replaced by 960 for any picture smaller than that (its TextDetector.get_preprocess),
#: so the reader shrinks the picture itself (:meth:`RapidOcrReader.detect`).
DETECT_SIDE = 640
#: the part of the card (856×540) the detector looks at for each side's labels: the front's begin its lines at
#: the left (公民身份号码, the longest, ends near 240); the back's are spread over the card
FRONT_REGION: Box = (0, 0, 400, 540)
BACK_REGION: Box = (0, 0, 856, 540)
#: a detected line is read only when it begins this close (px of the card, across and down) to where a label
#: begins: the values printed after the labels, the address's further lines and the ID number are not read twice
NEAR_LABEL = (90, 60)
#: lines recognised together: one at a time costs less CPU than RapidOCR's 6, each line then padded only to its
#: own width, not to the widest of its batch (the front's 8 lines: 188 ms against 229 ms)
REC_BATCH = 1
#: a photo where no card's outline was found (kyc/locate.py) is searched for labels at this size (its longer side):
#: a card filling 60 % of it has its labels about 15 px tall
PHOTO_DETECT_SIDE = 960
#: how many line heights from a detected line's start hold its label (公民身份号码, six characters, is about
#: 6.2 of its box's heights)
LABEL_SPAN = 7.5
#: a card whose labels are this close (px, farthest corner of the card) to their places is read as it is
REGISTER_SLACK = 2.0
#: how far (px) a label's corner may lie from where the fitted placement puts it and still count
REGISTER_OUTLIER = 8.0
#: how far (px, the card's farthest corner) a placement read from the lines' positions alone may move the card: a
#: frame's crop moves it up to about 50 px (3°, 5 %, 10 px), a line of the front is 66 px below the one above
PLACE_REACH = 60.0

#: the margin (px of the normalised card) left either side of a line's print for the recogniser (:func:`inked`)
INK_PAD = 12

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


def print_level(grey: np.ndarray) -> float:
    """The grey below which a pixel of the normalised card is print: halfway between its darkest print (the 0.5th
    percentile: the ID number, the name, the title are a few per cent of the card) and its stock (the median), so
    that a dim or washed-out photo is measured against itself (the specimen cards: about 130, the pattern 210+)."""
    dark, stock = np.percentile(grey[::2, ::2], (0.5, 50))  # (every other pixel: as good, a quarter of the work)
    return float(dark + stock) / 2


def print_columns(grey: np.ndarray, box: Box, level: float) -> np.ndarray:
    """The columns of ``box`` (from its left) with print in its middle rows (a line above or below may reach into
    the box); a lone dark pixel is noise."""
    left, top, right, bottom = box
    middle = grey[top + (bottom - top) // 4:bottom - (bottom - top) // 5, left:right]
    return np.flatnonzero((middle < level).sum(axis=0) >= 2)


def printed(grey: np.ndarray, box: Box, level: float) -> bool:
    """Whether a line holds print at least half a character wide (an empty address line does not)."""
    columns = print_columns(grey, box, level)
    return bool(columns.size) and int(columns[-1] - columns[0]) + 1 >= CHAR_PITCH // 2


def inked(grey: np.ndarray, box: Box, level: float) -> Box:
    """``box`` narrowed across to its print (:func:`print_columns`), INK_PAD px either side; as it is when it holds
    none. The recogniser is then not shown what lies after a line's last character: on a photographed card it read
    折二人 after an address's 道100号 (the card's pattern, the feet of the line above)."""
    left, top, right, bottom = box
    columns = print_columns(grey, box, level)
    if not columns.size:
        return box
    return max(left, left + int(columns[0]) - INK_PAD), top, min(right, left + int(columns[-1]) + 1 + INK_PAD), bottom


def displacement(move: np.ndarray) -> float:
    """How far (px) a 2×3 map of the normalised card moves the card's farthest corner."""
    corners = _points([(0, 0, 1), (CARD_SIZE[0], 0, 1), (0, CARD_SIZE[1], 1), CARD_SIZE + (1,)])
    return float(np.abs(corners @ move.T - corners[:, :2]).max())


def placed_by_lines(quads: Sequence[np.ndarray], labels: Labels) -> np.ndarray | None:
    """The rotation, scale and shift (2×3, detected card → card) that brings the left edges of detected lines onto
    the places of nearly all of ``labels`` (all but one, and at least three) within REGISTER_OUTLIER, moving the
    card by at most PLACE_REACH: read from the lines' positions alone, no recognition needed. Each hypothesis is
    the map that takes one line onto one label's place and another onto another's; the one that most labels
    agree with is refitted on all of them. None when none is agreed by enough labels, or two disagree as much
    (the recogniser then tells the labels apart: :meth:`RapidOcrReader.labelled`).

    Why positions can be trusted here: the front's labels begin five lines down its left edge at uneven spacing
    (the gap before 公民身份号码), the back's four lie at three different indents, so a map that takes lines onto
    the wrong labels (a line up or down, a value's start taken for its label's) agrees with fewer of them, and
    moves the card farther than PLACE_REACH."""
    places = _points([place for place in labels.values()])  # labels × (top-left, bottom-left) × xy
    edges = _points([(quad[0], quad[3]) for quad in quads])
    if len(edges) < 3:
        return None
    need = max(3, len(places) - 1)
    reach = _points(NEAR_LABEL)
    pairs = [(i, j) for i in range(len(places)) for j in range(len(edges))
             if bool((np.abs(edges[j, 0] - places[i, 0]) <= reach).all())]
    found: list[tuple[int, float, list[tuple[int, int]]]] = []
    for (i1, j1), (i2, j2) in itertools.combinations(pairs, 2):
        if i1 == i2 or j1 == j2:
            continue
        move = _similarity(np.concatenate([edges[j1], edges[j2]]), np.concatenate([places[i1], places[i2]]))
        if move is None or displacement(move) > PLACE_REACH:
            continue
        moved = edges @ move[:, :2].T + move[:, 2]
        agree = []
        for i in range(len(places)):
            error = np.abs(moved - places[i]).max(axis=(1, 2))
            if float(error.min()) <= REGISTER_OUTLIER:
                agree.append((i, int(error.argmin())))
        found.append((len(agree), -displacement(move), agree))
    if not found:
        return None
    found.sort(key=lambda hypothesis: hypothesis[:2], reverse=True)
    count, _closer, agree = found[0]
    if count < need or any(other == count and set(pairs) != set(agree) for other, _far, pairs in found[1:]):
        return None
    return _similarity(np.concatenate([edges[j] for _i, j in agree]), np.concatenate([places[i] for i, _j in agree]))


def _similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray | None:
    """The least-squares rotation, scale and shift taking ``source`` points onto ``target`` (2×3), or None."""
    move, _inliers = cv2.estimateAffinePartial2D(_points(source), _points(target), method=cv2.LMEDS)
    return None if move is None else np.asarray(move, dtype=np.float32)


class RapidOcrReader:
    """The service's :class:`kyc.ocr.CardReader`. Building one loads the recogniser (~0.3 s): keep one per
    process (kyc.ocr.reader)."""

    def __init__(self, threads: int = 1) -> None:
        from rapidocr_onnxruntime import RapidOCR  # type: ignore[import-untyped]  # no type information shipped

        self._engine: Any = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=threads,
                                     det_limit_type="max", det_limit_side_len=DETECT_SIDE, rec_batch_num=REC_BATCH)

    def lines(self, image: Image.Image, boxes: Sequence[Box]) -> list[tuple[str, float]]:
        """One line of text and its confidence for each box of the normalised card, recognised in one call; a box
        without print (:func:`printed`: an address's empty third line) is not shown to the recogniser, and reads
        as nothing (its card pattern had been read as 店)."""
        normal = image.convert("RGB").resize(CARD_SIZE, Image.Resampling.LANCZOS)
        grey = np.asarray(normal.convert("L"))
        level = print_level(grey)
        inked_boxes = [box for box in boxes if printed(grey, box, level)]
        crops = [np.asarray(normal.crop(box))[:, :, ::-1] for box in inked_boxes]  # the recogniser takes BGR
        found, _elapsed = self._engine.text_rec(crops) if crops else ([], 0.0)
        read = dict(zip(inked_boxes, found, strict=True))
        return [(str(read[box][0]), float(read[box][1])) if box in read else ("", 0.0) for box in boxes]

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

    def detect(self, bgr: np.ndarray, region: Box | None = None, side: int = DETECT_SIDE) -> list[np.ndarray]:
        """The printed lines the detector finds in ``region`` of ``bgr`` (all of it by default), the picture shrunk
        so that its longer side is ``side`` px (the region at the same scale): each line's corners clockwise from
        its top left, in ``bgr``'s pixels."""
        left, top, right, bottom = region or (0, 0, bgr.shape[1], bgr.shape[0])
        scale = min(1.0, side / max(bgr.shape[:2]))
        part = np.ascontiguousarray(bgr[top:bottom, left:right])
        if scale < 1:
            part = cv2.resize(part, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        boxes, _elapsed = self._engine.text_det(part)
        offset = _points([left, top])
        return [_points(box) / scale + offset for box in (boxes if boxes is not None else ())]

    def labelled(self, bgr: np.ndarray, quads: Sequence[np.ndarray], labels: Labels
                 ) -> tuple[list[np.ndarray], list[tuple[float, float]]]:
        """The lines among ``quads`` that begin with one of ``labels`` (their starts read in one batch): the left
        edge of each (its top-left and bottom-left corners) and where that label's edge is on the card."""
        read, _elapsed = self._engine.text_rec([line_start(bgr, quad) for quad in quads]) if quads else ([], 0)
        seen: list[np.ndarray] = []
        places: list[tuple[float, float]] = []
        for quad, (text, _score) in zip(quads, read, strict=True):
            label = next((word for word in labels if chinese(str(text)).startswith(word)), None)
            if label is not None:
                seen += [quad[0], quad[3]]
                places += list(labels[label])
        return seen, places

    def registered(self, image: Image.Image, labels: Labels, region: Box | None = None) -> Image.Image:
        """The normalised card moved so that its printed labels sit where the fixed field boxes expect them.

        A phone photo cropped by the capture frame leaves the card turned a few degrees, a few per cent larger or
        smaller and some pixels off, and a fixed crop then cuts a field's first character (bench/ocr_compare.py,
        perturbed deck); a card found in a photo (kyc/locate.py) is placed by its outline, a few pixels off, and its
        print may sit a little off its edges. The text detector finds the lines in ``region`` of the card. Where
        the lines' left edges alone fit the labels' places (:func:`placed_by_lines`), that placement is taken;
        else the recogniser reads the start of each line that begins near a label's place (NEAR_LABEL), and the
        lines that begin with a label give the labels' left edges (:meth:`labelled`). The rotation, scale and
        shift that best bring those edges to their places (outliers left out) is undone. Fewer than two labels
        found, or a card already in place: the card as it is."""
        normal = image.convert("RGB").resize(CARD_SIZE, Image.Resampling.LANCZOS)
        bgr = np.asarray(normal)[:, :, ::-1]
        starts = _points([corner for top_left, bottom_left in labels.values() for corner in (top_left, bottom_left)])
        reach = _points(NEAR_LABEL)
        quads = [quad for quad in self.detect(bgr, region)
                 if bool((np.abs(starts - quad[0]) <= reach).all(axis=1).any())]
        move = placed_by_lines(quads, labels)
        if move is None:
            seen, places = self.labelled(bgr, quads, labels)
            if len(places) < 4:
                return normal
            move, _inliers = cv2.estimateAffinePartial2D(_points(seen), _points(places), method=cv2.RANSAC,
                                                         ransacReprojThreshold=REGISTER_OUTLIER)
            if move is None:
                return normal
        if displacement(move) <= REGISTER_SLACK:
            return normal
        moved = cv2.warpAffine(np.asarray(normal), move, CARD_SIZE, flags=cv2.INTER_CUBIC,
                               borderMode=cv2.BORDER_REPLICATE)
        return Image.fromarray(moved)

    def locate(self, image: Image.Image) -> Image.Image:
        """The card alone, flat and upright: ``image`` itself when it has a card's proportions (cropped to the card),
        else the card's outline straightened (kyc/locate.py), else the card placed by its printed labels
        (:meth:`by_labels`), else ``image`` as it is (the side check then finds no card in it)."""
        found = locate.outline(image)
        if found is None:
            found = self.by_labels(image)
        return image if found is None else found

    def by_labels(self, image: Image.Image) -> Image.Image | None:
        """The card placed in a photo by its printed labels, where its outline was not found (the picture cuts the
        card's sides, or the surface is as pale as the card): the detector over the whole photo (PHOTO_DETECT_SIDE),
        every line's start read, and the rotation, scale and shift that bring the labels of the side with more of
        them to their places on the card. Fewer than two labels of either side: None. No perspective is undone:
        the fields are placed by their labels afterwards (:meth:`registered`)."""
        small = image.convert("RGB")
        small.thumbnail((PHOTO_DETECT_SIDE, PHOTO_DETECT_SIDE))
        bgr = np.ascontiguousarray(np.asarray(small)[:, :, ::-1])
        quads = self.detect(bgr, side=PHOTO_DETECT_SIDE)
        read, _elapsed = self._engine.text_rec([line_start(bgr, quad) for quad in quads]) if quads else ([], 0)
        best: tuple[list[np.ndarray], list[tuple[float, float]]] = ([], [])
        for labels in (FRONT_LABELS, BACK_LABELS):
            seen: list[np.ndarray] = []
            places: list[tuple[float, float]] = []
            for quad, (text, _score) in zip(quads, read, strict=True):
                label = next((word for word in labels if chinese(str(text)).startswith(word)), None)
                if label is not None:
                    seen += [quad[0], quad[3]]
                    places += list(labels[label])
            if len(places) > len(best[1]):
                best = (seen, places)
        if len(best[1]) < 4:
            return None
        scale = image.width / small.width
        move, _inliers = cv2.estimateAffinePartial2D(_points(best[0]) * scale, _points(best[1]), method=cv2.RANSAC,
                                                     ransacReprojThreshold=REGISTER_OUTLIER)
        return None if move is None else locate.placed(image, move, CARD_SIZE[0])

    def read_front(self, image: Image.Image) -> IdFront:
        normal = self.registered(image, FRONT_LABELS, FRONT_REGION)
        grey = np.asarray(normal.convert("L"))
        level = print_level(grey)
        read = dict(zip([name for name, _ in _FRONT_LINES],
                        self.lines(normal, [inked(grey, box, level) for _, box in _FRONT_LINES]), strict=True))
        lines = [read[f"address{i}"] for i in range(len(ADDRESS_LINES))]
        kept = [(text, score) for box, (text, score) in zip(ADDRESS_LINES, lines, strict=True)
                if chinese(text) and score >= LINE_SCORE and printed(grey, box, level)]  # (an empty line read 店)
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
        normal = self.registered(image, BACK_LABELS, BACK_REGION)
        grey = np.asarray(normal.convert("L"))
        level = print_level(grey)
        (authority, authority_score), (period, period_score) = self.lines(
            normal, [inked(grey, BACK["authority"], level), inked(grey, BACK["validity"], level)])
        valid_from, valid_to, long_term = validity(period)
        period_score = period_score if valid_from and (valid_to or long_term) else min(period_score, 0.3)
        name = chinese(authority)
        return IdBack(name, valid_from, valid_to, long_term,
                      {"authority": round(authority_score if name else 0.0, 3), "validity": round(period_score, 3)})

    def card_side(self, image: Image.Image) -> Side:
        """The number is looked for first; at the title's place the front has its name and portrait."""
        if blank(image):
            return "unreadable"
        normal = image.convert("RGB").resize(CARD_SIZE, Image.Resampling.LANCZOS)
        (number, _), = self.lines(normal, [FRONT["id_number"]])
        if len(id_number_in(number)) >= 17 and id_number_in(number)[:17].isdigit():
            return "front"  # (the title is read only when this is not a front: one line instead of three)
        title = "".join(chinese(text) for text, _ in self.lines(normal, TITLE_LINES))
        if any(word in title for word in TITLE_WORDS):
            return "back"
        return "unreadable"
