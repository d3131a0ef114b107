"""Synthetic second-generation resident ID cards (居民身份证), front and back, 856×540 (85.6×54 mm at 10 px/mm).

Drawn with Pillow in Debian's CJK fonts (fonts-wqy-zenhei / fonts-noto-cjk, `make system-deps`), the fields
at their places on the real card (GA 450), over a pale guilloche background. Fictional people only; the
portrait is a face photo passed in by the caller (tests/common/faces.py), or a plain grey box. Needs no network.
Used by the tests and by the demo journeys (bff/demo_journeys.py); never a real person.
"""

from __future__ import annotations

import io
import math
import random
import subprocess
from dataclasses import dataclass
from dataclasses import replace
from datetime import date
from functools import cache
from pathlib import Path

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFilter
from PIL import ImageFont

SIZE = (856, 540)
INK = (30, 30, 30)
LABEL = (40, 110, 170)
CJK_CANDIDATES = ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
                  "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc")
DIGIT_CANDIDATES = ("/usr/share/fonts/truetype/dejavu/DejaVuSansMono-Bold.ttf",
                    "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf")


@dataclass(frozen=True)
class CardData:
    name: str = "王小明"
    sex: str = "男"
    ethnicity: str = "汉"
    birth: date = date(1990, 3, 7)
    address: str = "北京市东城区景山前街4号院2号楼3单元501室"
    id_number: str = "110101199003070011"
    authority: str = "北京市公安局东城分局"
    valid_from: date = date(2020, 5, 18)
    valid_to: date | None = date(2040, 5, 18)  # None: 长期 (long-term, for people over 46)


SAMPLES = (
    CardData(),
    CardData(name="李娜", sex="女", ethnicity="汉", birth=date(1985, 11, 23),
             address="上海市浦东新区世纪大道100号", id_number="31011519851123006X",
             authority="上海市公安局浦东分局", valid_from=date(2016, 1, 4), valid_to=date(2036, 1, 4)),
    CardData(name="欧阳建国", sex="男", ethnicity="回", birth=date(1962, 7, 1),
             address="广东省广州市天河区体育西路191号", id_number="440106196207010058",
             authority="广州市公安局天河分局", valid_from=date(2010, 8, 9), valid_to=None),
)


def font_path(candidates: tuple[str, ...], family: str) -> str:
    """A font file: the first known path that exists, else what fontconfig's fc-match proposes."""
    for candidate in candidates:
        if Path(candidate).is_file():
            return candidate
    found = subprocess.run(["fc-match", "-f", "%{file}", family], capture_output=True, text=True, check=False)
    if found.returncode != 0 or not found.stdout:
        raise RuntimeError(f"no {family} font: run `make system-deps` (fonts-wqy-zenhei fonts-noto-cjk)")
    return found.stdout


@cache
def cjk(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_path(CJK_CANDIDATES, "WenQuanYi Zen Hei:lang=zh-cn"), size)


@cache
def digits(size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(font_path(DIGIT_CANDIDATES, "DejaVu Sans Mono:bold"), size)


def background(seed: int = 1) -> Image.Image:
    """Pale blue-green card stock with faint guilloche curves."""
    card = Image.new("RGB", SIZE, (236, 244, 246))
    draw = ImageDraw.Draw(card)
    rng = random.Random(seed)
    for k in range(14):
        phase, amplitude, y0 = rng.uniform(0, 6.28), rng.uniform(8, 30), 20 + k * 38
        points = [(x, y0 + amplitude * math.sin(x / 45 + phase)) for x in range(0, SIZE[0] + 8, 8)]
        draw.line(points, fill=(212, 228, 234), width=2)
    mask = Image.new("L", SIZE, 0)
    ImageDraw.Draw(mask).rounded_rectangle((0, 0, SIZE[0] - 1, SIZE[1] - 1), radius=32, fill=255)
    out = Image.new("RGB", SIZE, (255, 255, 255))
    out.paste(card, (0, 0), mask)
    return out


def _spaced(draw: ImageDraw.ImageDraw, xy: tuple[int, int], text: str, font: ImageFont.FreeTypeFont,
            fill: tuple[int, int, int], gap: int = 0) -> None:
    x, y = xy
    for char in text:
        draw.text((x, y), char, font=font, fill=fill)
        x += int(draw.textlength(char, font=font)) + gap


def _wrap(text: str, font: ImageFont.FreeTypeFont, width: int) -> list[str]:
    lines, line = [], ""
    for char in text:
        if font.getlength(line + char) > width:
            lines.append(line)
            line = char
        else:
            line += char
    return [*lines, line] if line else lines


def front(data: CardData = SAMPLES[0], portrait: Image.Image | None = None) -> Image.Image:
    """The front (photo side): name, sex, ethnicity, birth date, address, ID number, portrait on the right."""
    card = background(seed=int(data.id_number[:6]))
    draw = ImageDraw.Draw(card)
    label, value = cjk(26), cjk(34)
    _spaced(draw, (60, 52), "姓名", label, LABEL, gap=20)
    draw.text((160, 46), data.name, font=value, fill=INK)
    _spaced(draw, (60, 118), "性别", label, LABEL, gap=20)
    draw.text((160, 112), data.sex, font=value, fill=INK)
    _spaced(draw, (260, 118), "民族", label, LABEL, gap=20)
    draw.text((360, 112), data.ethnicity, font=value, fill=INK)
    _spaced(draw, (60, 184), "出生", label, LABEL, gap=20)
    b = data.birth
    draw.text((160, 178), f"{b.year}年{b.month}月{b.day}日", font=value, fill=INK)
    _spaced(draw, (60, 250), "住址", label, LABEL, gap=20)
    for i, line in enumerate(_wrap(data.address, value, 360)[:3]):
        draw.text((160, 244 + i * 46), line, font=value, fill=INK)
    _spaced(draw, (60, 448), "公民身份号码", label, LABEL, gap=4)
    _spaced(draw, (300, 440), data.id_number, digits(38), INK, gap=3)
    if portrait is not None:
        card.paste(portrait.convert("RGB").resize((250, 306), Image.Resampling.LANCZOS), (570, 70))
    return card


def back(data: CardData = SAMPLES[0]) -> Image.Image:
    """The back (emblem side): 中华人民共和国 居民身份证, issuing authority, validity period."""
    card = background(seed=7)
    draw = ImageDraw.Draw(card)
    draw.ellipse((70, 50, 200, 180), outline=(200, 40, 40), width=8)  # stands in for the national emblem
    draw.ellipse((110, 90, 160, 140), fill=(200, 40, 40))
    _spaced(draw, (260, 70), "中华人民共和国", cjk(46), INK, gap=12)
    _spaced(draw, (280, 160), "居民身份证", cjk(64), INK, gap=24)
    label, value = cjk(26), cjk(32)
    _spaced(draw, (150, 398), "签发机关", label, INK, gap=6)
    draw.text((310, 392), data.authority, font=value, fill=INK)
    _spaced(draw, (150, 458), "有效期限", label, INK, gap=6)
    start = data.valid_from.strftime("%Y.%m.%d")
    end = "长期" if data.valid_to is None else data.valid_to.strftime("%Y.%m.%d")
    draw.text((310, 452), f"{start}-{end}", font=value, fill=INK)
    return card


def person(code: str = "", *, name: str = "张伟", seed: int | None = None) -> CardData:
    """A new fictional person of Shanghai Pudong (区划 310115) with a valid GB 11643 number whose digits
    16–17 are ``code`` (the credit sandbox reads them as its persona: README "Credit decision") or, when
    ``code`` is empty, two random digits below 90 (a clean file). Digit 17 gives the sex, as on a real card."""
    from kyc.idnumber import check_digit

    rng = random.Random(seed)
    if code and (len(code) != 2 or not code.isdigit()):
        raise ValueError("persona code: two digits")
    code = code or f"{rng.randrange(90):02d}"
    birth = date(rng.randrange(1970, 2000), rng.randrange(1, 13), rng.randrange(1, 29))
    first17 = f"310115{birth:%Y%m%d}{rng.randrange(10)}{code}"
    issued = date(max(birth.year + 26, 2012), birth.month, birth.day)
    return CardData(name=name, sex="男" if int(code[1]) % 2 else "女", birth=birth,
                    address="上海市浦东新区世纪大道100号", id_number=first17 + check_digit(first17),
                    authority="上海市公安局浦东分局", valid_from=issued, valid_to=date(issued.year + 20, issued.month,
                                                                                    issued.day))


def blank() -> Image.Image:
    """Card stock with nothing printed (a photo of the wrong thing, or of a card face down on glare)."""
    return background(seed=3)


def expired(data: CardData = SAMPLES[0], today: date | None = None) -> CardData:
    """The same person with a validity period that ended a year before ``today``."""
    today = today or date.today()
    return replace(data, valid_from=date(today.year - 21, 6, 1), valid_to=date(today.year - 1, 6, 1))


def degrade(image: Image.Image, *, blur: float = 1.0, noise: int = 10, quality: int = 40,
            seed: int = 0) -> Image.Image:
    """A worse photo of the card: slight blur, sensor noise and strong JPEG compression."""
    pixels = np.asarray(image.filter(ImageFilter.GaussianBlur(blur)), dtype=float)
    pixels += np.random.default_rng(seed).normal(0, noise, pixels.shape)  # sensor noise, reproducible
    out = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    buffer = io.BytesIO()
    out.save(buffer, "JPEG", quality=quality)
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


def half_size(image: Image.Image) -> Image.Image:
    return image.resize((image.width // 2, image.height // 2), Image.Resampling.BILINEAR)
