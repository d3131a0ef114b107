"""Active liveness: the person follows a random challenge (blink, turn left, turn right) in front of the camera;
plus cheap passive signals (blur, moiré). The decision (:func:`decide`) is separate from image analysis
(:func:`analyse_frame`) so it can be tested on signals alone.

**Frames.** The client records a few frames per step and sends them tagged by step, in the order performed::

    verify({"neutral": [f0, f1], "turn_right": [f2, f3], "blink": [f4, f5, f6], "turn_left": [f7]},
           challenge=("turn_right", "blink", "turn_left"))

``neutral`` frames (looking straight at the camera, eyes open) come first and give the person's own
baseline (open-eye EAR, straight-ahead yaw); without them the median over all frames is used.

**Yaw sign.** ``yaw`` is where the nose tip (landmark 30) sits between the jaw extremes (landmarks 0 and 16),
scaled to −1…1: 0 is straight ahead, **positive = the person turned to their own left**, as seen in an
*unmirrored* camera frame (the nose moves to the image's right). Front cameras are usually *shown* mirrored
but delivered unmirrored (a canvas ``drawImage`` of the video is unmirrored); if the client flips the frames,
pass ``mirrored=True``.

**Same person throughout.** The face match compares the ID portrait with the final selfie only; a live
accomplice could perform the challenge while a photo of the card holder is held up for the selfie. Given the
selfie's encoding (``reference``), :func:`verify` also encodes one frame per challenge step — the frame that
shows the action (lowest EAR of the blink, largest turn), so the frame that proves the action is the one whose
identity is checked — reusing the face box found by the analysis: one 128-d encoding (~60 ms on one core)
per step instead of per frame, 3 per check instead of 12, which adds about 190 ms to a face check's ~260 ms of
frame analysis (bench/kyc.py). The largest of these distances is judged with the face match's own
threshold and review band (pass ≤ threshold, review ≤ threshold + margin, fail above). Measured on the test
photos through the phone path (480×640 frame, JPEG q90), against obama.jpg as the selfie: closed eyes 0.33,
obama2 (a real turn, another day and room) 0.38, mirrored obama2 0.39, obama3 0.35; other people 0.72
(astronaut) to 0.88 (mirrored biden). Turned heads add little beyond another photo's variation, so the match's
0.5 (review ≤ 0.58) keeps about 0.1 above the honest frames and 0.2 below the other people. A deployment that
lowers the match threshold (e.g. to 0.4 for East-Asian faces) lowers this one too: expect more turned frames
in the review band, never more passes.

**Limits.** These are cheap signals, not an anti-spoofing model (none exists offline in the registries): a
video replay of the person performing the challenge passes the active checks; the moiré signal catches only
some photographed screens. The same-person check compares one frame per step, the one proving the action;
the frames between are only counted (one face each), not identified. A human review of doubtful cases stays
necessary.
"""

from __future__ import annotations

import random
import statistics
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import field
from typing import Any

import numpy as np
from PIL import Image
from PIL import ImageOps

from kyc.faces import DEFAULT_REVIEW_MARGIN
from kyc.faces import DEFAULT_THRESHOLD
from kyc.faces import FaceBox
from kyc.faces import Outcome
from kyc.faces import api
from kyc.faces import detect
from kyc.faces import downscale
from kyc.faces import encode
from kyc.faces import encoding_distance
from kyc.faces import rgb_array
from kyc.reasons import Check

CHALLENGES = ("blink", "turn_left", "turn_right")
NEUTRAL = "neutral"
BLINK_RATIO = 0.75  # eyes count as closed when EAR < 0.75 × the person's open-eye baseline
YAW_TURN = 0.35  # a turn: yaw moves this far from the straight-ahead baseline in the requested direction
# Variance of the Laplacian of the 160×160 grey face crop; below → blurred. Measured on the test photos:
# sharp 100–350, Gaussian blur radius 2: 40–60, radius 4: 12–17.
BLUR_MIN = 25.0
# Highest whitened spectral peak in the high-frequency band; above → periodic pattern. Measured: photos and
# JPEG q60 re-encodes 7–22; with a fine sinusoidal grating (amplitude 25) added 150–520.
MOIRE_MAX = 60.0
FACE_CROP = 160


@dataclass(frozen=True)
class FrameSignal:
    """What one frame shows: number of faces; for exactly one face, eye aspect ratio and yaw; sharpness and
    moiré of the face region (of the whole frame when there is no single face). ``box`` is that one face's
    rectangle in the analysed image (downscaled, mirrored when asked), kept so the face can be encoded without
    detecting it again."""

    face_count: int
    ear: float | None
    yaw: float | None
    blur: float
    moire: float
    box: FaceBox | None = None


@dataclass(frozen=True)
class LivenessResult:
    """``pass`` when every check passed; ``review`` when the only doubt is the same-person distance in the
    review band (a person decides, as for the face match); ``fail`` otherwise. ``distances``: the same-person
    distance of each challenge step's sampled frame (None: no frame of that step showed one face)."""

    outcome: Outcome
    checks: tuple[Check, ...]
    distances: dict[str, float | None] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return self.outcome == "pass"

    def as_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "outcome": self.outcome, "checks": [c.as_dict() for c in self.checks],
                "same_person": dict(self.distances)}


def new_challenge(rng: random.Random) -> tuple[str, ...]:
    """All challenges in a random order (a pre-recorded video then has to guess the order)."""
    steps = list(CHALLENGES)
    rng.shuffle(steps)
    return tuple(steps)


def eye_aspect_ratio(eye: Sequence[tuple[int, int]]) -> float:
    """Soukupová & Čech 2016: (|p2−p6| + |p3−p5|) / (2 |p1−p4|) over the 6 landmarks of one eye."""
    p = np.asarray(eye, dtype=float)
    return float((np.linalg.norm(p[1] - p[5]) + np.linalg.norm(p[2] - p[4])) / (2 * np.linalg.norm(p[0] - p[3])))


def yaw_from(landmarks: Mapping[str, Sequence[tuple[int, int]]]) -> float:
    """Nose tip between the jaw extremes, −1…1 (positive: nose towards the image's right; see module doc)."""
    nose_x = landmarks["nose_bridge"][-1][0]  # landmark 30, the tip of the nose bridge
    left_x, right_x = landmarks["chin"][0][0], landmarks["chin"][-1][0]
    span = right_x - left_x
    return 0.0 if span <= 0 else float(((nose_x - left_x) / span - 0.5) * 2)


def laplacian_variance(grey: np.ndarray) -> float:
    """Variance of the 4-neighbour Laplacian: low on blurred or out-of-focus images."""
    g = grey.astype(float)
    lap = g[1:-1, :-2] + g[1:-1, 2:] + g[:-2, 1:-1] + g[2:, 1:-1] - 4 * g[1:-1, 1:-1]
    return float(lap.var())


def moire_score(grey: np.ndarray) -> float:
    """Highest peak of the whitened power spectrum in the high-frequency band (0.15–0.5 cycles/pixel).

    Natural images have a smooth ~1/f² spectrum: dividing each bin by the mean power at its radius leaves
    exponential noise whose maximum over the band is about ln(bins) ≈ 10–20. A photographed screen adds
    strong periodic peaks (the pixel grid beating with the camera sensor)."""
    g = grey.astype(float)
    g -= g.mean()
    window = np.outer(np.hanning(g.shape[0]), np.hanning(g.shape[1]))
    power = np.abs(np.fft.fftshift(np.fft.fft2(g * window))) ** 2
    fy = np.fft.fftshift(np.fft.fftfreq(g.shape[0]))[:, None]
    fx = np.fft.fftshift(np.fft.fftfreq(g.shape[1]))[None, :]
    radius = np.hypot(fx, fy)
    rings = np.minimum((radius * 100).astype(int), 70)
    ring_mean = np.bincount(rings.ravel(), power.ravel()) / np.maximum(np.bincount(rings.ravel()), 1)
    whitened = power / np.maximum(ring_mean[rings], 1e-12)
    band = (radius >= 0.15) & (radius <= 0.5)
    return float(whitened[band].max()) if band.any() else 0.0


def _face_region(image: Image.Image, box: tuple[int, int, int, int] | None) -> Image.Image:
    if box is None:
        return image
    top, right, bottom, left = box
    pad = (bottom - top) // 5
    return image.crop((max(left - pad, 0), max(top - pad, 0), min(right + pad, image.width),
                       min(bottom + pad, image.height)))


def _prepared(image: Image.Image, mirrored: bool) -> Image.Image:
    """The image as analysed (``FrameSignal.box`` is in its pixels)."""
    return downscale(ImageOps.mirror(image) if mirrored else image)


def analyse_frame(image: Image.Image, *, mirrored: bool = False) -> FrameSignal:
    """Faces, EAR (mean of both eyes), yaw and the passive signals of one frame (see the module doc)."""
    image = _prepared(image, mirrored)
    boxes = detect(image)
    ear = yaw = None
    face = boxes[0] if len(boxes) == 1 else None
    box = face.css() if face is not None else None
    if box is not None:
        landmarks = api().face_landmarks(rgb_array(image), [box], model="large")[0]
        ear = (eye_aspect_ratio(landmarks["left_eye"]) + eye_aspect_ratio(landmarks["right_eye"])) / 2
        yaw = yaw_from(landmarks)
    region = _face_region(image, box).convert("L")
    sharp = laplacian_variance(np.asarray(region.resize((FACE_CROP, FACE_CROP), Image.Resampling.BILINEAR)))
    side = min(region.size + (256,))  # the moiré pattern lives at native resolution: crop, never resize
    left, top = (region.width - side) // 2, (region.height - side) // 2
    moire = moire_score(np.asarray(region.crop((left, top, left + side, top + side))))
    return FrameSignal(len(boxes), ear, yaw, sharp, moire, face)


def encode_frame(image: Image.Image, signal: FrameSignal, *, mirrored: bool = False) -> np.ndarray | None:
    """The 128-d encoding of the face :func:`analyse_frame` found in ``image`` (None without one face), from
    the box it found, in the orientation the frame was received (the one the selfie has)."""
    if signal.box is None:
        return None
    seen, box = _prepared(image, mirrored), signal.box
    if mirrored:  # back to the received orientation, and the box with it
        seen = ImageOps.mirror(seen)
        box = FaceBox(box.top, seen.width - box.left, box.bottom, seen.width - box.right)
    return encode(seen, box)


def verify(steps: Mapping[str, Sequence[Image.Image]], challenge: Sequence[str], *, mirrored: bool = False,
           reference: np.ndarray | None = None, threshold: float = DEFAULT_THRESHOLD,
           review_margin: float = DEFAULT_REVIEW_MARGIN) -> LivenessResult:
    """Analyse every frame of every step and :func:`decide`. With ``reference`` (the selfie's encoding,
    :attr:`kyc.faces.MatchResult.selfie_encoding`), also encode the :func:`sampled_frames` — one per challenge
    step — and judge their distance to it with ``threshold`` and ``review_margin`` (module doc)."""
    signals = {step: [analyse_frame(f, mirrored=mirrored) for f in frames] for step, frames in steps.items()}
    same_person: dict[str, float | None] | None = None
    if reference is not None:
        same_person = {}
        for step, index in sampled_frames(signals, challenge).items():
            encoding = None if index is None else encode_frame(steps[step][index], signals[step][index],
                                                               mirrored=mirrored)
            same_person[step] = None if encoding is None else encoding_distance(encoding, reference)
    return decide(signals, challenge, same_person=same_person, threshold=threshold, review_margin=review_margin)


def _check(code: str, passed: bool, value: float | int | str | None, ok: tuple[str, str],
           bad: tuple[str, str]) -> Check:
    zh, en = ok if passed else bad
    return Check(code, passed, value, zh, en)


def _baseline(signals_by_step: Mapping[str, Sequence[FrameSignal]]) -> tuple[float | None, float]:
    """The person's open-eye EAR and straight-ahead yaw: medians over the ``neutral`` frames (over all frames
    without them)."""
    every = [s for frames in signals_by_step.values() for s in frames]
    neutral = list(signals_by_step.get(NEUTRAL, ())) or every
    ears = [s.ear for s in neutral if s.ear is not None]
    yaws = [s.yaw for s in neutral if s.yaw is not None]
    return (statistics.median(ears) if ears else None), (statistics.median(yaws) if yaws else 0.0)


def _action(step: str, signal: FrameSignal, base_yaw: float) -> float | None:
    """How much ``signal`` shows the action of ``step``, larger is more (None: no landmarks, or no action)."""
    if step == "blink":
        return None if signal.ear is None else -signal.ear
    if step in ("turn_left", "turn_right") and signal.yaw is not None:
        return (1 if step == "turn_left" else -1) * (signal.yaw - base_yaw)
    return None


def sampled_frames(signals_by_step: Mapping[str, Sequence[FrameSignal]], challenge: Sequence[str]
                   ) -> dict[str, int | None]:
    """For each challenge step, the index of the frame that shows its action most (the one :func:`decide`
    judges the action on): the frame whose identity is checked. None when no frame of the step has landmarks."""
    _, base_yaw = _baseline(signals_by_step)
    sampled: dict[str, int | None] = {}
    for step in challenge:
        scored = [(score, i) for i, s in enumerate(signals_by_step.get(step, ()))
                  if (score := _action(step, s, base_yaw)) is not None]
        sampled[step] = max(scored, key=lambda pair: (pair[0], -pair[1]))[1] if scored else None
    return sampled


def _same_person_check(distances: Mapping[str, float | None], threshold: float, review_margin: float
                       ) -> tuple[Check, Outcome]:
    known = [d for d in distances.values() if d is not None]
    if not known:
        return Check("same_person", False, None, "未能在动作画面中确认是本人：请独自正对镜头完成动作",
                     "It could not be confirmed that you did the actions: be alone in front of the camera and "
                     "do them again"), "fail"
    worst = max(known)
    if worst <= threshold:
        return Check("same_person", True, worst, f"完成动作的始终是自拍中的本人（距离 {worst:.3f} ≤ {threshold}）",
                     f"The same person as in the selfie did every action (distance {worst:.3f} ≤ {threshold})"
                     ), "pass"
    if worst <= threshold + review_margin:
        return Check("same_person", False, worst,
                     f"动作画面中的人脸与自拍相似度不足以自动通过（距离 {worst:.3f}），将由人工审核",
                     f"The face doing the actions is not similar enough to the selfie to pass automatically "
                     f"(distance {worst:.3f}): a reviewer will check"), "review"
    return Check("same_person", False, worst,
                 f"画面中出现了另一个人：完成动作的人与自拍不是同一人（距离 {worst:.3f} > "
                 f"{threshold + review_margin:.2f}），请持证人本人独自完成全部动作",
                 f"Someone else appears in the pictures: the person doing the actions is not the person in the "
                 f"selfie (distance {worst:.3f} > {threshold + review_margin:.2f}): the card holder must do every "
                 "action alone"), "fail"


def decide(signals_by_step: Mapping[str, Sequence[FrameSignal]], challenge: Sequence[str], *,
           same_person: Mapping[str, float | None] | None = None, threshold: float = DEFAULT_THRESHOLD,
           review_margin: float = DEFAULT_REVIEW_MARGIN) -> LivenessResult:
    """The verdict from per-frame signals. ``signals_by_step`` is ordered as performed (a dict keeps the
    insertion order); the ``neutral`` step, when present, comes first and is not part of the challenge.
    ``same_person``: the distance between each challenge step's sampled frame and the selfie (None for a step
    without one), judged like the face match; without it (no selfie to compare with) no such check is made."""
    performed = [s for s in signals_by_step if s != NEUTRAL]
    checks: list[Check] = []
    # the actions asked for, in the requested order; an empty challenge never lets a still picture through
    # (the BFF issues the full set: kyc.liveness.new_challenge, and refuses anything less)
    steps_ok = (bool(challenge) and list(challenge) == performed and set(challenge) <= set(CHALLENGES)
                and all(signals_by_step[s] for s in performed))
    # (this says the frames came in the order asked, not that the actions were seen: each action has its own check)
    checks.append(_check("challenge_order", steps_ok, " ".join(performed),
                         ("按提示的顺序拍摄了各个动作", "The frames were taken in the order asked"),
                         ("动作与要求的顺序不符，请按提示重新完成", "The actions do not follow the requested order: "
                          "please do them again as prompted")))
    every = [s for frames in signals_by_step.values() for s in frames]
    counts = sorted({s.face_count for s in every})
    one_face = bool(every) and counts == [1]
    checks.append(_check("one_face", one_face, ",".join(map(str, counts)),
                         ("每一帧都只有本人一张人脸", "Exactly one face in every frame"),
                         ("部分画面中没有人脸或有多张人脸：请独自正对镜头",
                          "Some frames show no face or several faces: be alone and face the camera")))
    base_ear, base_yaw = _baseline(signals_by_step)
    for step in challenge:
        frames = signals_by_step.get(step, ())
        if step == "blink":
            low = min((s.ear for s in frames if s.ear is not None), default=None)
            ratio = round(low / base_ear, 3) if low is not None and base_ear else None
            checks.append(_check("blink", ratio is not None and ratio < BLINK_RATIO, ratio,
                                 ("检测到眨眼", "A blink was seen"),
                                 ("未检测到眨眼：请看着镜头自然地眨一下眼",
                                  "No blink seen: look at the camera and blink")))
        elif step in ("turn_left", "turn_right"):
            sign = 1 if step == "turn_left" else -1
            moved = max((sign * (s.yaw - base_yaw) for s in frames if s.yaw is not None), default=None)
            zh_dir, en_dir = ("左", "left") if step == "turn_left" else ("右", "right")
            checks.append(_check(step, moved is not None and moved >= YAW_TURN,
                                 None if moved is None else round(moved, 3),
                                 (f"检测到向{zh_dir}转头", f"A turn to the {en_dir} was seen"),
                                 (f"未检测到向{zh_dir}转头：请缓慢向{zh_dir}转动头部", f"No turn to the {en_dir} seen: "
                                  f"slowly turn your head to your {en_dir}")))
    # Passive signals from frames with one face (measured on the face); others already fail ``one_face``
    # and their whole-frame signals say little (a sharp straight edge is a spectral peak too).
    faced = [s for s in every if s.face_count == 1] or every
    blur = statistics.median(s.blur for s in faced) if faced else 0.0
    checks.append(_check("sharpness", blur >= BLUR_MIN, round(blur, 1),
                         ("画面清晰", "The picture is sharp"),
                         ("画面模糊：请保持不动，并在光线更好的地方重试", "The picture is blurred: hold still and try "
                          "again in better light")))
    moire = max((s.moire for s in faced), default=0.0)
    checks.append(_check("screen", moire <= MOIRE_MAX, round(moire, 1),
                         ("未发现翻拍屏幕的迹象", "No sign of a photographed screen"),
                         ("画面疑似翻拍屏幕：请直接对着本人拍摄，不要拍摄屏幕或照片", "This looks like a photo of a "
                          "screen: film yourself directly, not a screen or a printed photo")))
    outcome: Outcome = "pass" if all(c.passed for c in checks) else "fail"
    distances: dict[str, float | None] = {}
    if same_person is not None:
        distances = {step: same_person.get(step) for step in challenge}
        check, identity = _same_person_check(distances, threshold, review_margin)
        checks.append(check)
        if identity == "fail":
            outcome = "fail"
        elif identity == "review" and outcome == "pass":
            outcome = "review"
    return LivenessResult(outcome, tuple(checks), distances)
