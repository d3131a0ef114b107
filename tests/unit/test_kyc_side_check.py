"""Which side of the ID card a chosen photo shows, before it is uploaded (issue 17 §10): kyc/side_check.py on the
project's specimen cards (kyc/specimens.py) with the service's reader (RapidOCR). The full read is the KYC job's;
this is the quick look the phone asks for as soon as a photo is chosen."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFilter

from kyc import ocr
from kyc import side_check
from kyc import specimens as idcards
from kyc.side_check import SideReader
from kyc.specimens import SAMPLES
from tests.unit.test_kyc_ocr import face_stand_in

VARIANTS: dict[str, Callable[[Image.Image], Image.Image]] = {
    "clean": lambda image: image, "degraded": idcards.degrade, "half-size": idcards.half_size}


@pytest.fixture(scope="module")
def reader() -> SideReader:
    return side_check.side_reader()


def on_a_table(card: Image.Image, *, turn: float = 3.0, scale: float = 0.8) -> Image.Image:
    """A phone photo of ``card`` lying on a table: turned a little, not filling the picture, brown all round (the
    reader's fixed places do not fall on its fields: only its labels, wherever they are, say which side it is)."""
    table = (96, 72, 52)
    turned = card.rotate(turn, expand=True, resample=Image.Resampling.BICUBIC, fillcolor=table)
    turned = turned.resize((round(turned.width * scale), round(turned.height * scale)), Image.Resampling.LANCZOS)
    photo = Image.new("RGB", (1600, 1200), table)
    photo.paste(turned, (180, 260))
    return photo


def a_receipt() -> Image.Image:
    """Print that is not an ID card: a shop's receipt."""
    paper = Image.new("RGB", (900, 600), (248, 248, 244))
    draw = ImageDraw.Draw(paper)
    lines = ("上海某某便利店 欢迎光临", "矿泉水 2 瓶 4.00 元", "面包 1 个 6.50 元", "合计 10.50 元 谢谢惠顾")
    for i, line in enumerate(lines):
        draw.text((60, 60 + i * 120), line, font=idcards.cjk(40), fill=(20, 20, 20))
    return paper


def shapes_without_print() -> Image.Image:
    """A sharp picture with nothing printed on it (a keyboard, a table's edge): no text line to read."""
    picture = Image.new("RGB", (900, 600), (200, 205, 210))
    draw = ImageDraw.Draw(picture)
    draw.rectangle((100, 100, 420, 500), fill=(40, 40, 40))
    draw.ellipse((520, 150, 820, 450), fill=(240, 240, 240), outline=(10, 10, 10), width=6)
    return picture


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("data", SAMPLES, ids=[d.name for d in SAMPLES])
def test_each_side_of_the_specimen_cards_is_told_apart(reader: SideReader, data: idcards.CardData,
                                                       variant: str) -> None:
    make = VARIANTS[variant]
    front = side_check.classify(make(idcards.front(data, face_stand_in())), reader)
    back = side_check.classify(make(idcards.back(data)), reader)
    assert (front.side, front.framed, front.reason) == ("front", True, None)
    assert (back.side, back.framed, back.reason) == ("back", True, None)


@pytest.mark.parametrize("side", ["front", "back"])
def test_a_card_lying_on_a_table_is_placed_by_its_labels_and_asked_to_fill_the_picture(reader: SideReader,
                                                                                     side: str) -> None:
    card = idcards.front(SAMPLES[1], face_stand_in()) if side == "front" else idcards.back(SAMPLES[1])
    photo = on_a_table(card)
    assert ocr.card_side(photo) == "unreadable"  # the job's fixed places miss it: the card must fill the picture
    verdict = side_check.classify(photo, reader)
    assert (verdict.side, verdict.framed) == (side, False)
    assert verdict.labels  # the printed labels it was told by
    said = side_check.advice(side, verdict)  # type: ignore[arg-type]
    assert (said.code, said.ok) == ("not_framed", False)
    assert "靠近" in said.reason.text_zh and "closer" in said.reason.text_en


def test_the_back_chosen_for_the_front_is_said_plainly_with_the_swap_offered(reader: SideReader) -> None:
    back = side_check.classify(idcards.back(SAMPLES[0]), reader)
    said = side_check.advice("front", back)
    assert (said.code, said.ok, said.swap) == ("wrong_side", False, True)
    assert said.reason.text_zh == "这张是国徽面，请拍人像面"
    assert "back" in said.reason.text_en and "front" in said.reason.text_en
    front = side_check.classify(idcards.front(SAMPLES[0], face_stand_in()), reader)
    said = side_check.advice("back", front)
    assert (said.code, said.ok, said.swap, said.reason.text_zh) == ("wrong_side", False, True,
                                                                   "这张是人像面，请拍国徽面")
    right = side_check.advice("front", front)
    assert (right.code, right.ok, right.swap) == ("ok", True, False)
    assert "人像面" in right.reason.text_zh


@pytest.mark.parametrize(("picture", "code", "zh"), [
    (idcards.blank, "no_card", "看不到卡片"),
    (shapes_without_print, "no_card", "看不到卡片"),
    (lambda: idcards.front(SAMPLES[0], face_stand_in()).filter(ImageFilter.GaussianBlur(8)), "blurry", "模糊"),
    (lambda: idcards.back(SAMPLES[0]).filter(ImageFilter.GaussianBlur(12)), "blurry", "模糊"),
    (a_receipt, "unreadable", "看不清"),
], ids=["card-stock", "no-print", "blurred-front", "blurred-back", "receipt"])
def test_a_photo_of_no_readable_card_is_unknown_with_the_reason_and_a_retake(
        reader: SideReader, picture: Callable[[], Image.Image], code: str, zh: str) -> None:
    verdict = side_check.classify(picture(), reader)
    assert verdict.side == "unknown"
    assert verdict.reason is not None and verdict.reason.code == code
    said = side_check.advice("front", verdict)
    assert (said.code, said.ok, said.swap) == (code, False, False)
    assert zh in said.reason.text_zh and "重拍" in said.reason.text_zh
    assert said.reason.text_en


def test_sharpness_falls_with_blur_but_not_with_sensor_noise() -> None:
    card = idcards.front(SAMPLES[0], face_stand_in())
    sharp, noisy = side_check.sharpness(card), side_check.sharpness(idcards.degrade(card))
    blurred = side_check.sharpness(card.filter(ImageFilter.GaussianBlur(6)))
    assert blurred < side_check.BLURRY < min(sharp, noisy)
    assert side_check.sharpness(idcards.degrade(card, blur=6)) < side_check.BLURRY  # noise does not pass as edges
