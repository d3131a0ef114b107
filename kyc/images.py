"""Decoding uploaded photos (ID card sides, selfies) safely, with a person-readable reason on refusal.

The size in pixels is read from the header and checked *before* any pixel is decoded, so a small file
declaring a huge image (a decompression bomb) is refused without allocating memory for it.
"""

from __future__ import annotations

import io
import math
import warnings

from PIL import Image
from PIL import ImageFile
from PIL import ImageOps
from PIL import UnidentifiedImageError

from kyc.reasons import Reason

ALLOWED_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
MAX_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000
MIN_SIDE = 200


class ImageRejected(ValueError):
    """The upload cannot be used; ``reason`` tells the person what to do."""

    def __init__(self, reason: Reason) -> None:
        super().__init__(reason.text_en)
        self.reason = reason


def _reject(code: str, zh: str, en: str) -> ImageRejected:
    return ImageRejected(Reason(code, zh, en))


def load_image(data: bytes, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS,
               min_side: int = MIN_SIDE, longest: int | None = None) -> Image.Image:
    """Decode a JPEG, PNG or WebP upload fully into an upright RGB image, or raise :class:`ImageRejected`.

    Upright: the EXIF orientation a phone camera writes is applied (``ImageOps.exif_transpose``).
    ``longest``: reduced to at most this many pixels on its longer side (the size checks are the upload's own);
    a JPEG is decoded at once at the smallest of 1/2, 1/4 or 1/8 of its size that is not smaller (libjpeg's DCT
    scaling, ``Image.draft``: a 12 MP camera file decodes several times faster).
    """
    if not data:
        raise _reject("image_empty", "文件为空，请重新拍摄或选择照片",
                      "The file is empty: take or choose the photo again")
    if len(data) > max_bytes:
        mb = max_bytes / 1024 / 1024
        raise _reject("image_too_large", f"文件过大（上限 {mb:.0f} MB），请压缩或降低相机分辨率后重试",
                      f"The file is too large (at most {mb:.0f} MB): use a lower camera resolution and try again")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bomb() from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise _reject("image_not_image", "无法识别的文件，请上传 JPG、PNG 或 WebP 格式的照片",
                      "This is not a photo we can read: upload a JPG, PNG or WebP image") from None
    if image.format not in ALLOWED_FORMATS:
        raise _reject("image_format", f"不支持 {image.format} 格式，请上传 JPG、PNG 或 WebP 照片",
                      f"{image.format} files are not accepted: upload a JPG, PNG or WebP photo")
    width, height = image.size
    if width * height > max_pixels:
        raise _bomb()
    if min(width, height) < min_side:
        raise _reject("image_too_small",
                      f"照片太小（{width}×{height}），短边至少需要 {min_side} 像素，请靠近一些重新拍摄",
                      f"The photo is too small ({width}×{height}); its short side needs at least {min_side} pixels: "
                      "move closer and take it again")
    strict_decoding()
    if longest is not None and max(width, height) > longest:
        ratio = longest / max(width, height)
        image.draft(None, (math.ceil(width * ratio), math.ceil(height * ratio)))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            upright = ImageOps.exif_transpose(image)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _bomb() from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise _reject("image_corrupt", "照片文件不完整或已损坏，请重新拍摄并上传",
                      "The photo file is incomplete or damaged: take it again and upload it once more") from None
    rgb = upright.convert("RGB")
    if longest is not None and max(rgb.size) > longest:
        rgb.thumbnail((longest, longest), Image.Resampling.LANCZOS)
    return rgb


def strict_decoding() -> None:
    """Make PIL refuse truncated files again if an import switched that off for the whole process; call it
    before decoding untrusted bytes (this module does, and so does the contract service's signature check).

    PIL reads one module-level flag; face_recognition and weasyprint set it to True when imported (their own
    inputs may be truncated). A truncated upload must be refused, so the flag is put back before decoding:
    decoding must not depend on which libraries happened to be imported first."""
    if ImageFile.LOAD_TRUNCATED_IMAGES:
        ImageFile.LOAD_TRUNCATED_IMAGES = False


def _bomb() -> ImageRejected:
    return _reject("image_too_many_pixels", "照片像素过多，无法处理，请用普通相机设置重新拍摄",
                   "The image has too many pixels to process: take it again with normal camera settings")
