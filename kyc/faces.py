"""Face match between the ID card portrait and a selfie, with face_recognition (dlib, HOG + ResNet 128-d).

The model (about 4 s to load) is imported lazily, once per process. Distances are Euclidean between the
128-d encodings; the library's own default threshold is 0.6, but dlib is reported weaker on East-Asian faces,
so Leaseline uses a stricter 0.5 with a "review" band above it (a person decides) — see bench/kyc.py for
the distances measured on the test photos.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from dataclasses import field
from functools import cache
from types import ModuleType
from typing import Any
from typing import Literal
from typing import cast

import numpy as np
from PIL import Image

from kyc.reasons import Check

DEFAULT_THRESHOLD = 0.5
DEFAULT_REVIEW_MARGIN = 0.08
MAX_SIDE = 800  # selfies are downscaled to this long side before detection: 4× less work at 1280×960
UPSAMPLE_BELOW = 300  # upsample once only when the short side is smaller (small ID portraits)

Outcome = Literal["pass", "fail", "review"]


@cache
def api() -> ModuleType:
    """The face_recognition module, imported on first use (loads dlib and the models, ~4 s)."""
    # (its import sets PIL's process-wide LOAD_TRUNCATED_IMAGES; kyc.images.strict_decoding puts it back)
    # face_recognition_models finds its model files with pkg_resources, which setuptools 81 deprecates with a
    # UserWarning on import (we pin setuptools<82, which still has it); that one warning from that one module
    # is ignored — under warnings-as-errors face_recognition would otherwise quit() the process.
    # TODO: drop when face_recognition_models uses importlib.resources.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning,
                                module="face_recognition_models")
        import face_recognition  # type: ignore[import-untyped]  # the package ships no type information

    return cast(ModuleType, face_recognition)


@dataclass(frozen=True)
class FaceBox:
    """A face rectangle in pixels of the image given to :func:`detect` (dlib's order: top, right, bottom, left)."""

    top: int
    right: int
    bottom: int
    left: int

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def height(self) -> int:
        return self.bottom - self.top

    def css(self) -> tuple[int, int, int, int]:
        return self.top, self.right, self.bottom, self.left


@dataclass(frozen=True)
class MatchResult:
    outcome: Outcome
    distance: float | None
    faces: dict[str, int]
    checks: tuple[Check, ...]
    # The selfie's 128-d encoding (None when the selfie or the portrait does not show exactly one face): the
    # reference the liveness frames are compared with (kyc.liveness.verify). Never recorded (a biometric template).
    selfie_encoding: np.ndarray | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "distance": self.distance, "faces": dict(self.faces),
                "checks": [c.as_dict() for c in self.checks]}


def rgb_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB"))


def downscale(image: Image.Image, max_side: int = MAX_SIDE) -> Image.Image:
    """``image`` with its long side at most ``max_side`` (unchanged when already small)."""
    scale = max_side / max(image.size)
    if scale >= 1:
        return image
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.Resampling.BILINEAR)


def detect(image: Image.Image) -> list[FaceBox]:
    """Faces found by the HOG detector. Upsamples once only for small images (short side < 300 px): on large
    images upsampling costs 4× the time and finds false faces (RECIPES.md)."""
    upsample = 1 if min(image.size) < UPSAMPLE_BELOW else 0
    found = api().face_locations(rgb_array(image), number_of_times_to_upsample=upsample, model="hog")
    return [FaceBox(*box) for box in found]


def encode(image: Image.Image, box: FaceBox) -> np.ndarray:
    """The 128-d encoding of the face in ``box`` (68-landmark alignment, one jitter): 60–80 ms on one core
    (bench/kyc.py; RECIPES.md)."""
    encodings = api().face_encodings(rgb_array(image), known_face_locations=[box.css()], num_jitters=1,
                                     model="large")
    return np.asarray(encodings[0])


def encoding_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two encodings, rounded to 4 places (as recorded)."""
    return round(float(np.linalg.norm(a - b)), 4)


def _count_check(side: str, count: int) -> Check:
    zh_side, en_side = {"id": ("证件照", "ID photo"), "selfie": ("自拍", "selfie")}[side]
    if count == 1:
        return Check(f"faces_{side}", True, count, f"{zh_side}中检测到一张人脸", f"One face found in the {en_side}")
    if count == 0:
        return Check(f"faces_{side}", False, count, f"{zh_side}中未检测到人脸：请正对镜头、光线充足、不要遮挡面部",
                     f"No face found in the {en_side}: face the camera in good light, nothing covering your face")
    return Check(f"faces_{side}", False, count, f"{zh_side}中有 {count} 张人脸：画面中只能有本人",
                 f"{count} faces found in the {en_side}: only you may be in the picture")


def match(id_portrait: Image.Image, selfie: Image.Image, *, threshold: float = DEFAULT_THRESHOLD,
          review_margin: float = DEFAULT_REVIEW_MARGIN) -> MatchResult:
    """Compare the ID portrait with the selfie: ``pass`` when the distance is at most ``threshold``,
    ``review`` up to ``threshold + review_margin``, ``fail`` above it or when either image does not show
    exactly one face (then ``distance`` is None)."""
    images = {"id": downscale(id_portrait), "selfie": downscale(selfie)}
    boxes = {side: detect(image) for side, image in images.items()}
    faces = {side: len(found) for side, found in boxes.items()}
    checks = tuple(_count_check(side, n) for side, n in faces.items())
    if not all(c.passed for c in checks):
        return MatchResult("fail", None, faces, checks)
    id_encoding, selfie_encoding = (encode(images[side], boxes[side][0]) for side in ("id", "selfie"))
    distance = encoding_distance(id_encoding, selfie_encoding)
    if distance <= threshold:
        outcome: Outcome = "pass"
        check = Check("face_distance", True, distance, f"人脸比对一致（距离 {distance:.3f} ≤ {threshold}）",
                      f"The faces match (distance {distance:.3f} ≤ {threshold})")
    elif distance <= threshold + review_margin:
        outcome = "review"
        check = Check("face_distance", False, distance,
                      f"人脸相似度不足以自动通过（距离 {distance:.3f}），将由人工审核",
                      f"The faces are not similar enough to pass automatically (distance {distance:.3f}): "
                      "a reviewer will check them")
    else:
        outcome = "fail"
        check = Check("face_distance", False, distance,
                      f"自拍与证件照不是同一人（距离 {distance:.3f} > {threshold + review_margin:.2f}），"
                      "请持证人本人重新自拍",
                      f"The selfie does not match the ID photo (distance {distance:.3f} > "
                      f"{threshold + review_margin:.2f}): the card holder must take the selfie")
    return MatchResult(outcome, distance, faces, (*checks, check), selfie_encoding)
