"""Upload decoding: every refusal has its reason, and a decompression bomb is refused before decoding."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from kyc.images import ImageRejected
from kyc.images import load_image


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def gradient(size: tuple[int, int] = (400, 300)) -> Image.Image:
    image = Image.linear_gradient("L").resize(size).convert("RGB")
    return image


def rejected(data: bytes, **options: int) -> str:
    with pytest.raises(ImageRejected) as info:
        load_image(data, **options)
    reason = info.value.reason
    assert reason.text_zh and reason.text_en and reason.text_zh != reason.text_en
    return reason.code


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_accepts_jpeg_png_webp(fmt: str) -> None:
    image = load_image(encode(gradient().convert("RGBA") if fmt == "PNG" else gradient(), fmt))
    assert image.mode == "RGB"
    assert image.size == (400, 300)


def test_empty() -> None:
    assert rejected(b"") == "image_empty"


def test_not_an_image() -> None:
    assert rejected(b"%PDF-1.7\n" + b"x" * 1000) == "image_not_image"
    assert rejected("身份证.jpg".encode() * 100) == "image_not_image"


def test_other_image_formats_are_refused() -> None:
    assert rejected(encode(gradient(), "GIF")) == "image_format"
    assert rejected(encode(gradient(), "BMP")) == "image_format"


def test_fifty_megabytes_is_refused_before_parsing() -> None:
    big = encode(gradient()) + b"\0" * (50 * 1024 * 1024)
    assert rejected(big) == "image_too_large"


def _png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG file declaring a huge image: the IHDR chunk and one small IDAT, no real pixel data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("width", "height"), [(10_000, 10_000), (50_000, 50_000), (8_000, 6_000)])
def test_decompression_bomb_is_refused_from_the_header(width: int, height: int) -> None:
    data = _png_header_only(width, height)
    assert len(data) < 200
    assert rejected(data) == "image_too_many_pixels"


def test_pixel_limit_is_configurable() -> None:
    data = encode(gradient((1000, 1000)))
    assert rejected(data, max_pixels=999_999) == "image_too_many_pixels"
    assert load_image(data, max_pixels=1_000_000).size == (1000, 1000)


def test_tiny_image() -> None:
    assert rejected(encode(gradient((150, 400)))) == "image_too_small"
    assert load_image(encode(gradient((150, 400))), min_side=100).size == (150, 400)


def test_truncated_jpeg() -> None:
    data = encode(gradient((800, 600)), quality=95)
    assert rejected(data[: len(data) // 2]) == "image_corrupt"


def test_truncated_jpeg_even_after_a_library_relaxed_pil_for_the_whole_process() -> None:
    # weasyprint and face_recognition set this process-wide flag when imported
    from PIL import ImageFile

    before = ImageFile.LOAD_TRUNCATED_IMAGES
    ImageFile.LOAD_TRUNCATED_IMAGES = True
    try:
        data = encode(gradient((800, 600)), quality=95)
        assert rejected(data[: len(data) // 2]) == "image_corrupt"
    finally:
        ImageFile.LOAD_TRUNCATED_IMAGES = before


def test_exif_rotation_is_applied() -> None:
    # A phone held upright writes landscape pixels plus EXIF Orientation 6 ("rotate 90° clockwise to view").
    image = Image.new("RGB", (400, 300), (255, 255, 255))
    image.paste((255, 0, 0), (0, 0, 100, 300))  # red band on the left of the stored pixels
    exif = Image.Exif()
    exif[0x0112] = 6
    loaded = load_image(encode(image, exif=exif.tobytes(), quality=95))
    assert loaded.size == (300, 400)
    red = loaded.getpixel((150, 50))  # rotated clockwise: the left band is now at the top
    assert isinstance(red, tuple) and red[0] > 200 and red[1] < 60
