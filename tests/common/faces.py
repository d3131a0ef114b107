"""Real face photos for the KYC tests and the bench, fetched from the package registry, never committed.

* obama.jpg, obama2.jpg, obama3.jpg, biden.jpg, … — ``tests/test_images/`` of the face-recognition 1.3.0
  *source* archive (RECIPES.md "Face recognition without compiling dlib"), downloaded once with
  ``pip download`` into a cache directory (``LEASELINE_TEST_FACES``, default ``~/.cache/leaseline-test-faces``).
* the astronaut (Eileen Collins, public domain) shipped inside scikit-image's wheel.

Needs the network the first time: use it from integration tests and the bench, not from tests/unit.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
import tarfile
from functools import cache
from pathlib import Path

from PIL import Image

SDIST = "face-recognition==1.3.0"
SAME_PERSON = ("obama.jpg", "obama2.jpg", "obama3.jpg")
OTHER_PEOPLE = ("biden.jpg", "astronaut")
PORTRAIT_SIZE = (180, 220)  # roughly the 358×441 px portrait of a second-generation ID card, halved


def cache_dir() -> Path:
    return Path(os.environ.get("LEASELINE_TEST_FACES", Path.home() / ".cache" / "leaseline-test-faces"))


@cache
def images_dir() -> Path:
    """The directory with the sdist's test photos, downloading and extracting them on first use."""
    target = cache_dir() / "test_images"
    if (target / "obama.jpg").is_file() and (target / "biden.jpg").is_file():
        return target
    download = cache_dir() / "sdist"
    download.mkdir(parents=True, exist_ok=True)
    archives = sorted(download.glob("face_recognition-1.3.0.tar.gz"))
    if not archives:
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                        SDIST, "-d", str(download)], check=True)
        archives = sorted(download.glob("face_recognition-1.3.0.tar.gz"))
    partial = target.with_name("test_images.partial")
    partial.mkdir(parents=True, exist_ok=True)
    with tarfile.open(archives[0]) as tar:
        for member in tar.getmembers():
            parts = Path(member.name).parts
            if member.isfile() and parts[-2:-1] == ("test_images",) and member.name.endswith(".jpg"):
                source = tar.extractfile(member)
                assert source is not None
                (partial / parts[-1]).write_bytes(source.read())
    if target.exists():  # an earlier, incomplete extraction
        shutil.rmtree(target)
    partial.replace(target)
    return target


def photo(name: str) -> Image.Image:
    """One test photo as RGB: a file name from the sdist (``obama2.jpg``) or ``astronaut``."""
    if name == "astronaut":
        return astronaut()
    with Image.open(images_dir() / name) as image:
        return image.convert("RGB")


def photo_bytes(name: str) -> bytes:
    """The photo's encoded bytes, as an upload would carry them (the astronaut as PNG)."""
    if name == "astronaut":
        return encode(astronaut(), "PNG")
    return (images_dir() / name).read_bytes()


def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut()).convert("RGB")


def encode(image: Image.Image, fmt: str = "JPEG", **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def face_box(image: Image.Image) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the one face, found with face_recognition directly (not our code)."""
    import face_recognition
    import numpy as np

    # No upsampling: on the 512 px astronaut one upsample adds a false face (her mission patch).
    found = face_recognition.face_locations(np.asarray(image.convert("RGB")), number_of_times_to_upsample=0)
    assert len(found) == 1, f"expected one face in the fixture photo, found {len(found)}"
    top, right, bottom, left = found[0]
    return left, top, right, bottom


def id_portrait(image: Image.Image, size: tuple[int, int] = PORTRAIT_SIZE) -> Image.Image:
    """An ID-card-style head-and-shoulders crop (face about half the height) resized to ``size``."""
    left, top, right, bottom = face_box(image)
    cx, cy = (left + right) / 2, (top + bottom) / 2
    height = (bottom - top) * 2.0
    width = height * size[0] / size[1]
    box = (cx - width / 2, cy - height * 0.45, cx + width / 2, cy + height * 0.55)
    return image.crop(tuple(round(v) for v in box)).resize(size, Image.Resampling.LANCZOS)


def padded(image: Image.Image, size: tuple[int, int] = (1280, 960), fill: tuple[int, int, int] = (90, 90, 90)
           ) -> Image.Image:
    """``image`` scaled to fit ``size`` and centred on a plain background: a phone-camera-sized selfie."""
    scale = min(size[0] / image.width, size[1] / image.height)
    inner = image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS)
    canvas = Image.new("RGB", size, fill)
    canvas.paste(inner, ((size[0] - inner.width) // 2, (size[1] - inner.height) // 2))
    return canvas


def side_by_side(a: Image.Image, b: Image.Image) -> Image.Image:
    """Two photos next to each other on one canvas (two faces in one picture)."""
    height = max(a.height, b.height)
    canvas = Image.new("RGB", (a.width + b.width, height), (255, 255, 255))
    canvas.paste(a, (0, 0))
    canvas.paste(b, (a.width, 0))
    return canvas


def mjpeg(image: Image.Image, path: Path, frames: int = 30, size: tuple[int, int] = (640, 480)) -> Path:
    """A ``.mjpeg`` (concatenated JPEGs) of the photo, for Chromium's ``--use-file-for-fake-video-capture``."""
    frame = encode(padded(image, size), "JPEG", quality=90)
    path.write_bytes(frame * frames)
    return path
