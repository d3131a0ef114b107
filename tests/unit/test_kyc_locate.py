"""The ID card found in a phone photo and straightened before its fields are read (issue 17 §3: on a 4:3 photo of
a card filling most of its width the full read lost the ID number's last digit and part of the address).

Photos are made here from the project's specimen cards (tests/common/card_photos.py: 4:3, the card 60–90 % of the
width, turned ±3°, a little perspective, a textured table, JPEG q85), each from its own fixed seed."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from PIL import Image

from kyc import locate
from kyc import ocr
from kyc import specimens as idcards
from kyc.images import load_image
from kyc.specimens import SAMPLES
from tests.common import card_photos
from tests.unit.test_kyc_ocr import face_stand_in

PHONE = (1280, 960)  # the copy the page sends (pwa/static/js/id-card.js)


def photo(card: Image.Image, seed: int, **how: object) -> tuple[Image.Image, np.ndarray]:
    """``card`` photographed as a phone does, decoded as the upload is, and where its corners truly are."""
    rng = random.Random(seed)
    shot = card_photos.shot(rng, **how)  # type: ignore[arg-type]
    data = card_photos.photographed(card, rng, PHONE, how=shot)
    return load_image(data, min_side=300), card_photos.corners(PHONE, shot)


@pytest.mark.parametrize("seed", [3, 17])
def test_a_card_in_a_phone_photo_is_read_exactly(seed: int) -> None:
    data = idcards.person(name="欧阳慧敏", seed=seed)
    front, _corners = photo(idcards.front(data, face_stand_in()), seed)
    back, _corners = photo(idcards.back(data), seed + 1)
    card_front, card_back = ocr.card_in(front), ocr.card_in(back)
    assert ocr.side_reason(card_front, "front") is None
    assert ocr.side_reason(card_back, "back") is None
    read = ocr.read_front(card_front)
    assert (read.name, read.id_number) == (data.name, data.id_number)
    assert read.address == data.address
    assert ocr.read_back(card_back).valid_to == data.valid_to


@pytest.mark.parametrize("seed", range(6))
def test_the_outline_is_found_within_a_few_pixels(seed: int) -> None:
    card = idcards.front(SAMPLES[seed % 3]) if seed % 2 else idcards.back(SAMPLES[seed % 3])
    picture, corners = photo(card, 100 + seed)
    found = locate.find_card(picture)
    assert found is not None
    assert float(np.abs(found - corners).max()) < 8  # px of 1280: the labels place the rest


def test_a_picture_of_the_card_alone_is_taken_as_it_is() -> None:
    card = idcards.degrade(idcards.front(SAMPLES[2], face_stand_in()))
    assert ocr.card_in(card) is card


def test_a_card_filling_the_picture_s_width_is_placed_by_its_labels() -> None:
    """As the side check asks (“让卡片占满画面宽度”): the picture cuts the card's sides, so it has no outline to find;
    its printed labels place it (the 4:3 picture squeezed to the card's shape lost the ID number's last digit)."""
    data = idcards.person(name="司马光明", seed=41)
    picture, _corners = photo(idcards.front(data, face_stand_in()), 41, width=(1.0, 1.03))
    assert locate.find_card(picture) is None
    read = ocr.read_front(ocr.card_in(picture))
    assert (read.name, read.id_number, read.address) == (data.name, data.id_number, data.address)


def test_a_card_cut_by_the_picture_is_not_taken_for_the_picture() -> None:
    """A light region running off the picture's edge is the picture's outline, not a card's."""
    picture = Image.new("RGB", PHONE, (60, 50, 40))
    picture.paste(Image.new("RGB", (1000, 631), (240, 240, 240)), (400, 160))  # cut by the right edge: 880 × 631
    assert locate.find_card(picture) is None


def test_the_straightened_card_keeps_the_photo_s_detail_within_bounds() -> None:
    big = Image.new("RGB", (4000, 3000), (50, 50, 50))
    quad = np.float32([[400, 500], [3600, 520], [3590, 2540], [410, 2530]])
    flat = locate.straighten(big, quad)
    assert flat.size == (locate.CARD_MAX_WIDTH, round(locate.CARD_MAX_WIDTH / locate.CARD_ASPECT))
    small = locate.straighten(Image.new("RGB", (640, 480)), np.float32([[100, 100], [500, 100], [500, 352],
                                                                         [100, 352]]))
    assert small.width == locate.CARD_MIN_WIDTH


def test_a_camera_file_is_reduced_once_while_decoded() -> None:
    """The server keeps and reads at most ID_CARD_SIDE px of a camera's 12 MP photo (the page sends 1280 px)."""
    out = io.BytesIO()
    Image.new("RGB", (4000, 3000), (120, 130, 140)).save(out, "JPEG", quality=85)
    image = load_image(out.getvalue(), min_side=300, longest=2000)
    assert max(image.size) == 2000 and image.size == (2000, 1500)
    assert load_image(out.getvalue(), min_side=300).size == (4000, 3000)  # not asked: as it was
