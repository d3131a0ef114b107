"""The ID card read by Tesseract (``chi_sim``, per-field crops): the engine the service used until issue 17, kept
only as bench/ocr_compare.py's baseline (the service reads with kyc/ocr_rapid.py). Needs the ``tesseract``
binary with ``chi_sim`` (``make system-deps``) and pytesseract.

The ID number is read with ``eng --psm 7`` restricted to ``0-9X``, the Chinese fields with ``chi_sim``
(RECIPES.md "OCR of ID cards"). Tesseract gives no per-field confidence here: the readings carry none.
"""

from __future__ import annotations

import os

from PIL import Image
from PIL import ImageOps

from kyc.idnumber import check_id_number
from kyc.ocr import BACK
from kyc.ocr import FRONT
from kyc.ocr import TITLE_WORDS
from kyc.ocr import Box
from kyc.ocr import IdBack
from kyc.ocr import IdFront
from kyc.ocr import Side
from kyc.ocr import blank
from kyc.ocr import card
from kyc.ocr import chinese
from kyc.ocr import id_number_in
from kyc.ocr import parse_date
from kyc.ocr import portrait_box
from kyc.ocr import validity


def _ocr(image: Image.Image, box: Box, lang: str, psm: int, whitelist: str | None = None) -> str:
    """Tesseract on one field with a white margin around it (measured on the synthetic cards: at card
    resolution with a margin, single characters such as 男/汉 are read; upscaled ×2 they are not).
    OMP_THREAD_LIMIT=1: Tesseract's OpenMP threads are slower than one on small crops (RECIPES.md)."""
    import pytesseract  # type: ignore[import-untyped]  # the package ships no type information

    os.environ.setdefault("OMP_THREAD_LIMIT", "1")
    crop = ImageOps.expand(image.crop(box), 20, fill=255)
    config = f"--psm {psm}" + (f" -c tessedit_char_whitelist={whitelist}" if whitelist else "")
    return str(pytesseract.image_to_string(crop, lang=lang, config=config))


class TesseractReader:
    """A :class:`kyc.ocr.CardReader` on Tesseract (the baseline)."""

    def read_id_number(self, image: Image.Image) -> str:
        return id_number_in(_ocr(card(image), FRONT["id_number"], "eng", 7, "0123456789X"))

    def read_front(self, image: Image.Image) -> IdFront:
        grey = card(image)
        text = {f: _ocr(grey, FRONT[f], "chi_sim", 6 if f == "address" else 7) for f in
                ("name", "sex", "ethnicity", "birth_date", "address")}
        sex = chinese(text["sex"])[:1]
        if sex not in ("男", "女"):  # one character: retry as a single character (psm 10)
            sex = chinese(_ocr(grey, FRONT["sex"], "chi_sim", 10))[:1]
        id_number = self.read_id_number(image)
        if sex not in ("男", "女") and check_id_number(id_number).valid:
            # Tesseract reads a lone 女 in the card's type as "MX"; the number's 17th digit says it (odd: male)
            sex = "男" if int(id_number[16]) % 2 else "女"
        return IdFront(name=chinese(text["name"]), sex=sex, ethnicity=chinese(text["ethnicity"]),
                       birth_date=parse_date(text["birth_date"].replace(" ", "")), address=chinese(text["address"]),
                       id_number=id_number, portrait_box=portrait_box(image))

    def read_back(self, image: Image.Image) -> IdBack:
        grey = card(image)
        authority = chinese(_ocr(grey, BACK["authority"], "chi_sim", 7))
        valid_from, valid_to, long_term = validity(_ocr(grey, BACK["validity"], "chi_sim", 7))
        return IdBack(authority, valid_from, valid_to, long_term)

    def card_side(self, image: Image.Image) -> Side:
        if blank(image):
            return "unreadable"
        if len(self.read_id_number(image)) >= 17:
            return "front"
        if any(word in chinese(_ocr(card(image), BACK["title"], "chi_sim", 6)) for word in TITLE_WORDS):
            return "back"
        return "unreadable"

    def locate(self, image: Image.Image) -> Image.Image:
        """The card's outline only (kyc/locate.py): this baseline has no detector to place a card by its labels."""
        from kyc import locate

        card = locate.outline(image)
        return image if card is None else card
