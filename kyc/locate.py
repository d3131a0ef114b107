"""Finding the ID card in a phone photo and straightening it, before its fields are read at their fixed places
(issue 17 §3: on a 4:3 photo the card 60–90 % of its width, turned and tilted a little, the full read lost the ID
number's last digit and part of the address, the fields being cut where an aligned card has them).

The card's outline: the card stock is lighter than the surface it lies on (the page asks for a dark one), and its
edge is a long straight line on each side. On a copy LOCATE_SIDE px long, the outline is looked for twice — the
light region (Otsu's threshold) and the edges (Canny) — and taken where it has four sides and a card's shape: a
convex quadrilateral MIN_SHARE–MAX_SHARE of the picture, its sides 85.6:54 within ASPECT_SLACK. Each side's
line is fitted to the outline between the corners and the lines are intersected, so the rounded corners do not
pull the corners in. The quadrilateral is undone by a perspective warp (:func:`straighten`), from the picture's
own pixels, to the card's 85.6:54 at about its size in the photo (CARD_MIN_WIDTH–CARD_MAX_WIDTH px wide).

Not found (a pale table, a card cut by the picture's edge, fingers across its edge): the reader places the card
by its printed labels instead (kyc/ocr_rapid.py ``RapidOcrReader.locate``). A picture of the card's own shape is
taken as the card cropped by the capture frame. Limits: a card turned a quarter or upside down is not turned back
(the recogniser reads upright lines only); a card shown on a screen, or a copy on paper, is found as any card.
Pure: numpy, OpenCV and Pillow, nothing downloaded.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

#: the card's width over its height (ISO/IEC 7810 ID-1, GA 450: 85.6 × 54 mm)
CARD_ASPECT = 85.6 / 54
#: the outline is looked for on a copy this many pixels on its longer side
LOCATE_SIDE = 640
#: the share of the picture's area a card may cover: smaller is too far to read, larger is the card alone
MIN_SHARE = 0.12
MAX_SHARE = 0.95
#: how far a found quadrilateral's sides may stray from the card's proportions (perspective changes them a little)
ASPECT_SLACK = 0.15
#: a picture this close to the card's proportions, with no outline inside it, is the card cropped by the frame
CROPPED_SLACK = 0.08
#: the straightened card's width: its size in the photo, not less (the reader's 856 px card) nor more (nothing
#: read needs more, and the portrait's face detection slows with size)
CARD_MIN_WIDTH = 856
CARD_MAX_WIDTH = 1284
#: a found side this close to the picture's edge (share of its longer side) is the edge, not the card's
EDGE = 0.025
#: a side's line is fitted to the outline's points this far (share of the side) from both of its corners
CORNER_SKIP = 0.12


def cropped(image: Image.Image) -> bool:
    """Whether ``image`` has a card's proportions (the capture frame cropped it to the card)."""
    return abs(image.width / image.height / CARD_ASPECT - 1) <= CROPPED_SLACK


def find_card(image: Image.Image) -> np.ndarray | None:
    """The card's four corners in ``image``'s pixels (clockwise from its top left, float32 4×2), or None."""
    small = image.convert("L")
    small.thumbnail((LOCATE_SIDE, LOCATE_SIDE), Image.Resampling.BILINEAR)
    scale = image.width / small.width
    grey = cv2.GaussianBlur(np.asarray(small), (5, 5), 0)
    _level, light = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    edges = cv2.dilate(cv2.Canny(grey, 30, 90), np.ones((3, 3), np.uint8))
    area = float(grey.shape[0] * grey.shape[1])
    best: tuple[float, np.ndarray] | None = None
    for mask, mode in ((light, cv2.RETR_EXTERNAL), (edges, cv2.RETR_LIST)):
        contours, _hierarchy = cv2.findContours(mask, mode, cv2.CHAIN_APPROX_NONE)
        for contour in sorted(contours, key=cv2.contourArea, reverse=True)[:8]:
            if cv2.contourArea(contour) < MIN_SHARE * area:
                break
            quad = fit_quad(contour.reshape(-1, 2).astype(np.float32))
            if quad is None:
                continue
            share = float(cv2.contourArea(quad)) / area
            if MIN_SHARE <= share <= MAX_SHARE and card_shaped(quad) and not along_edge(quad, grey.shape) and (
                    best is None or share > best[0]):
                best = (share, quad)
        if best is not None:
            break
    return None if best is None else (best[1] * scale).astype(np.float32)


def outline(image: Image.Image) -> Image.Image | None:
    """The card alone by its outline: ``image`` itself when it has a card's proportions (cropped to the card), else
    the card's outline found and straightened; None when no outline was found (a reader may then place the card by
    its printed labels)."""
    if cropped(image):
        return image
    quad = find_card(image)
    return None if quad is None else straighten(image, quad)


def card_shaped(quad: np.ndarray) -> bool:
    """A convex quadrilateral whose sides have the card's proportions (within ASPECT_SLACK)."""
    if not cv2.isContourConvex(quad.reshape(-1, 1, 2)):
        return False
    width, height = sides(quad)
    return height > 0 and abs(width / height / CARD_ASPECT - 1) <= ASPECT_SLACK


def along_edge(quad: np.ndarray, shape: tuple[int, ...]) -> bool:
    """Whether a side of ``quad`` runs along the picture's edge (both its corners within EDGE of it): the picture
    cut the card there, and the outline is the picture's, not the card's."""
    height, width = shape[:2]
    margin = EDGE * max(width, height)
    near = np.stack([quad[:, 0] < margin, quad[:, 1] < margin, quad[:, 0] > width - 1 - margin,
                     quad[:, 1] > height - 1 - margin], axis=1)
    return any(bool((near[i] & near[(i + 1) % 4]).any()) for i in range(4))


def sides(quad: np.ndarray) -> tuple[float, float]:
    """The mean length of the top and bottom sides, and of the left and right ones."""
    top, right, bottom, left = (float(np.linalg.norm(quad[(i + 1) % 4] - quad[i])) for i in range(4))
    return (top + bottom) / 2, (left + right) / 2


def ordered(points: np.ndarray) -> np.ndarray:
    """Four corners clockwise from the top left (the one nearest the picture's top-left corner along the card)."""
    centre = points.mean(axis=0)
    angles = np.arctan2(points[:, 1] - centre[1], points[:, 0] - centre[0])
    around = points[np.argsort(angles)]  # clockwise on screen (y down), from the left
    first = int(np.argmin(around.sum(axis=1)))
    return np.roll(around, -first, axis=0).astype(np.float32)


def fit_quad(outline: np.ndarray) -> np.ndarray | None:
    """The quadrilateral an outline (N×2 points) follows: four corners from its convex hull, then each side's line
    fitted to the outline's points along it and adjacent lines intersected (a rounded corner is cut by its sides'
    lines, not by its arc). None when the outline does not have four sides."""
    hull = cv2.convexHull(outline)
    perimeter = cv2.arcLength(hull, True)
    corners = None
    for share in (0.02, 0.03, 0.04):
        approx = cv2.approxPolyDP(hull, share * perimeter, True)
        if len(approx) == 4:
            corners = ordered(approx.reshape(4, 2).astype(np.float32))
            break
    if corners is None:
        return None
    lines = []
    for i in range(4):
        start, end = corners[i], corners[(i + 1) % 4]
        along = end - start
        length = float(np.linalg.norm(along))
        if length < 8:
            return None
        unit = along / length
        offset = outline - start
        t = offset @ unit
        distance = np.abs(offset @ np.array([-unit[1], unit[0]], dtype=np.float32))
        near = outline[(t > CORNER_SKIP * length) & (t < (1 - CORNER_SKIP) * length) & (distance < 0.04 * length)]
        if len(near) < 8:
            lines.append((start, unit))
            continue
        vx, vy, x0, y0 = cv2.fitLine(near, cv2.DIST_HUBER, 0, 0.01, 0.01).reshape(4)
        lines.append((np.array([x0, y0], dtype=np.float32), np.array([vx, vy], dtype=np.float32)))
    out = []
    for i in range(4):
        (p, u), (q, v) = lines[i - 1], lines[i]
        cross = float(u[0] * v[1] - u[1] * v[0])
        if abs(cross) < 1e-3:
            return None
        s = float((q - p)[0] * v[1] - (q - p)[1] * v[0]) / cross
        out.append(p + s * u)
    return np.array(out, dtype=np.float32)


def card_width(quad: np.ndarray) -> int:
    """The straightened card's width in pixels: about its size in the photo, within CARD_MIN/MAX_WIDTH."""
    return int(min(CARD_MAX_WIDTH, max(CARD_MIN_WIDTH, round(sides(quad)[0]))))


def straighten(image: Image.Image, quad: np.ndarray) -> Image.Image:
    """The card inside ``quad`` (``image``'s pixels, clockwise from its top left) as a flat, upright picture of the
    card's proportions (:func:`card_width` wide)."""
    width = card_width(quad)
    height = round(width / CARD_ASPECT)
    target = np.array([[0, 0], [width, 0], [width, height], [0, height]], dtype=np.float32)
    pixels, shrink = _reduced(image, width / sides(quad)[0])
    move = cv2.getPerspectiveTransform((quad * shrink).astype(np.float32), target)
    flat = cv2.warpPerspective(pixels, move, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return Image.fromarray(flat)


def placed(image: Image.Image, move: np.ndarray, normal_width: int) -> Image.Image:
    """The card that ``move`` (a 2×3 affine map from ``image``'s pixels to a card ``normal_width`` px wide) places
    in ``image``, cut out at about its size in the photo (CARD_MIN/MAX_WIDTH wide)."""
    scale = float(np.sqrt(abs(np.linalg.det(move[:, :2]))))  # card pixels per photo pixel
    width = int(min(CARD_MAX_WIDTH, max(CARD_MIN_WIDTH, round(normal_width / scale))))
    height = round(width / CARD_ASPECT)
    pixels, shrink = _reduced(image, width / normal_width / scale)
    out = move * (width / normal_width)
    out[:, :2] /= shrink  # from the reduced photo's pixels
    flat = cv2.warpAffine(pixels, out, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return Image.fromarray(flat)


def _reduced(image: Image.Image, zoom: float) -> tuple[np.ndarray, float]:
    """``image``'s pixels, first reduced (area averaging) when the card will be drawn at less than 2/3 of its size in
    the photo (``zoom``), so that a warp does not skip pixels of the print; and the reduction made."""
    pixels = np.asarray(image.convert("RGB"))
    if zoom >= 0.66:
        return pixels, 1.0
    shrink = zoom * 1.25
    return cv2.resize(pixels, None, fx=shrink, fy=shrink, interpolation=cv2.INTER_AREA), shrink
