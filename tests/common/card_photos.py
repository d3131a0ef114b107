"""An ID card (kyc/specimens.py) as a phone camera photographs it: a 4:3 picture, the card 60–90 % of its width,
turned up to ±3°, a little perspective (the phone not quite parallel to the table), on a textured surface, with
uneven light, sensor noise, a slight blur and JPEG compression. Used by bench/id_step.py and the localisation
tests (tests/unit/test_kyc_locate.py); reproducible from its ``random.Random``.

``reduced`` is the copy the page makes of such a photo (pwa/static/js/id-card.js: at most 1280 px, JPEG 0.9).
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from kyc import specimens

#: the surfaces a card is laid on: dark wood, a grey desk, blue cloth, a pale beige table (harder to tell apart)
SURFACES = ((92, 62, 38), (70, 72, 76), (40, 58, 96), (176, 160, 136))
#: the corner radius of kyc/specimens.py's cards (px at 856×540)
CORNER_RADIUS = 32


@dataclass(frozen=True)
class Shot:
    """How the card lies in the picture: its share of the picture's width, its turn (degrees), how far each
    corner is pushed by the perspective (share of the card's width), where it sits, the surface and the light."""

    width: float
    turn: float
    tilt: tuple[float, ...]
    offset: tuple[float, float]
    surface: tuple[int, int, int]
    light: tuple[float, float, float]


def shot(rng: random.Random, *, width: tuple[float, float] = (0.6, 0.9), turn: float = 3.0,
         tilt: float = 0.02) -> Shot:
    return Shot(width=rng.uniform(*width), turn=rng.uniform(-turn, turn),
                tilt=tuple(rng.uniform(-tilt, tilt) for _ in range(8)),
                offset=(rng.uniform(-1, 1), rng.uniform(-1, 1)), surface=rng.choice(SURFACES),
                light=(rng.uniform(0.85, 1.0), rng.uniform(-0.12, 0.12), rng.uniform(-0.12, 0.12)))


def corners(size: tuple[int, int], how: Shot) -> np.ndarray:
    """Where the card's four corners (clockwise from its top left) land in a picture of ``size``."""
    width, height = size
    card_w = how.width * width
    card_h = card_w * specimens.SIZE[1] / specimens.SIZE[0]
    half = np.array([[-card_w / 2, -card_h / 2], [card_w / 2, -card_h / 2], [card_w / 2, card_h / 2],
                     [-card_w / 2, card_h / 2]])
    angle = np.deg2rad(how.turn)
    turned = half @ np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    turned += np.array(how.tilt).reshape(4, 2) * card_w
    span = turned.max(axis=0) - turned.min(axis=0)
    room = np.maximum((np.array(size) - span) / 2 - 0.04 * width, 0)
    centre = np.array(size) / 2 + np.array(how.offset) * room
    return (turned + centre).astype(np.float32)


def surface(size: tuple[int, int], colour: tuple[int, int, int], rng: np.random.Generator) -> np.ndarray:
    """A table's texture: blotches, a grain along one direction, fine noise (float RGB)."""
    width, height = size
    shade = rng.normal(0, 14, (12, 16, 1)) + rng.normal(0, 4, (12, 16, 3))  # mostly lighter or darker, a little hue
    blotches = cv2.resize(shade.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC)
    x = np.linspace(0, 1, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    wobble = rng.uniform(2, 8) * np.sin(2 * np.pi * (x * rng.uniform(0.8, 2) + y * rng.uniform(0.3, 1)))
    grain = rng.uniform(4, 10) * np.sin(2 * np.pi * (rng.uniform(30, 90) * y + wobble))
    base = np.array(colour, dtype=np.float32)[None, None, :] + blotches + grain[:, :, None]
    return base + rng.normal(0, 5, (height, width, 3)).astype(np.float32)


def photographed(card: Image.Image, rng: random.Random, size: tuple[int, int] = (4000, 3000), *,
                 quality: int = 85, how: Shot | None = None) -> bytes:
    """``card`` (856×540, kyc/specimens.py) photographed as the module says: the camera's JPEG."""
    how = how or shot(rng)
    noise = np.random.default_rng(rng.randrange(2**32))
    width, height = size
    where = corners(size, how)
    source = np.float32([[0, 0], [card.width, 0], [card.width, card.height], [0, card.height]])
    move = cv2.getPerspectiveTransform(source, where)
    mask = np.zeros((card.height, card.width), np.uint8)
    r = CORNER_RADIUS
    cv2.rectangle(mask, (r, 0), (card.width - 1 - r, card.height - 1), 255, -1)
    cv2.rectangle(mask, (0, r), (card.width - 1, card.height - 1 - r), 255, -1)
    right, bottom = card.width - 1 - r, card.height - 1 - r
    for cx, cy in ((r, r), (right, r), (r, bottom), (right, bottom)):
        cv2.circle(mask, (cx, cy), r, 255, -1)
    placed = cv2.warpPerspective(np.asarray(card.convert("RGB")), move, size, flags=cv2.INTER_LINEAR)
    alpha = cv2.warpPerspective(mask, move, size, flags=cv2.INTER_LINEAR).astype(np.float32)[:, :, None] / 255
    picture = surface(size, how.surface, noise) * (1 - alpha) + placed.astype(np.float32) * alpha
    gain, across, down = how.light
    x = np.linspace(-0.5, 0.5, width, dtype=np.float32)[None, :]
    y = np.linspace(-0.5, 0.5, height, dtype=np.float32)[:, None]
    picture *= (gain + across * x + down * y)[:, :, None]
    picture = cv2.GaussianBlur(picture, (0, 0), sigmaX=0.6 * width / 1280)
    picture += noise.normal(0, 3, picture.shape).astype(np.float32)
    out = io.BytesIO()
    Image.fromarray(np.clip(picture, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=quality)
    return out.getvalue()


def reduced(photo: bytes, longest: int = 1280) -> bytes:
    """The copy the page makes and sends (pwa/static/js/id-card.js ``reduced``: at most ``longest`` px, JPEG 0.9)."""
    image = Image.open(io.BytesIO(photo)).convert("RGB")
    image.thumbnail((longest, longest), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()
