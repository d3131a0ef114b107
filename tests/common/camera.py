"""A fake front camera for browser tests, at the device boundary: real photos of one person, shown as the
person would move when the page asks.

**Why not Chromium's own fake camera.** ``--use-file-for-fake-video-capture`` loops one recording, but the face
check asks for blink / turn left / turn right in a random order chosen by the server
(``kyc.liveness.new_challenge``): a looping video cannot follow it, and a still picture fails liveness, as it
should (tests/e2e/test_kyc.py).

**What this camera is.** A Playwright init script replaces ``navigator.mediaDevices.getUserMedia`` — the
browser's camera API, nothing of ours — with a ``<canvas>.captureStream()`` video track. The canvas shows, about
15 times a second, the frame of the person matching the prompt the page is displaying: the challenge step
``pwa/static/js/face.js`` marks as current (``[data-camera] [data-step].current``), or looking straight at the
camera when none is. The page's own code (preview, frame grabs, upload) and the server's real liveness and face
match run unchanged on what it films: ``face.js`` cannot tell this camera from a phone's.

**The frames** (portrait 480×640, like a phone held upright), from the face-recognition test photos
(tests/common/faces.py), all of one person:

* ``neutral`` — obama.jpg, looking straight ahead (the selfie, and the liveness baseline);
* ``turn_right`` — obama2.jpg, a real head turn to his own right (nose towards the image's left);
* ``turn_left`` — obama2.jpg mirrored: the same turn to his left;
* ``blink`` — obama.jpg with the eyes closed by :func:`closed_eyes` (no photo of him has closed eyes).

The pictures travel as encoded image bytes inside the init script and are decoded with
``createImageBitmap(Blob)``: no URL is loaded, so the page's strict Content-Security-Policy (no ``data:``
images) is neither involved nor loosened.

Real limits: the person is a photograph (the turns come from another photo of him, another room); the camera
follows the page's prompt instantly and holds each pose for the whole step (a blink lasts as long as the
prompt). That is enough to test the journey, not the
liveness thresholds (tests/integration/test_kyc_faces.py and tests/unit measure those).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image
from PIL import ImageDraw
from PIL import ImageFilter
from PIL import ImageOps

from tests.common import faces

SIZE = (480, 640)  # width × height: a phone's front camera held upright
FPS = 15
STEPS = ("neutral", "blink", "turn_left", "turn_right")


def closed_eyes(image: Image.Image, drop: float = 1.2) -> Image.Image:
    """The same photo with both eyes closed: the skin of each upper lid (the band just above the eye) slides
    down over the eye, blended in with a soft elliptical edge, as a lid does when it closes.

    Landmarks come from face_recognition itself (not our kyc code). On obama.jpg the eye aspect ratio that
    ``kyc.liveness`` measures falls from about 0.22 open to about 0.09 closed in the camera's frames (ratio
    ≈ 0.4; a blink is below 0.75); painting flat skin over the eyes (test_kyc_faces.close_eyes) does not move
    his landmarks."""
    import face_recognition

    pixels = np.asarray(image.convert("RGB"))
    found = face_recognition.face_locations(pixels, number_of_times_to_upsample=0)
    assert len(found) == 1, f"expected one face, found {len(found)}"
    marks = face_recognition.face_landmarks(pixels, found, model="large")[0]
    out = image.convert("RGB")
    for key in ("left_eye", "right_eye"):
        eye = np.asarray(marks[key], float)
        width = eye[3, 0] - eye[0, 0]
        left, right = eye[:, 0].min() - 0.25 * width, eye[:, 0].max() + 0.25 * width
        top, bottom = eye[:, 1].min() - 0.25 * width, eye[:, 1].max() + 0.15 * width
        box = tuple(round(v) for v in (left, top, right, bottom))
        lift = round((bottom - top) * drop)
        lid = image.crop((box[0], box[1] - lift, box[2], box[3] - lift))
        mask = Image.new("L", lid.size, 0)
        ImageDraw.Draw(mask).ellipse((0, 0, lid.width - 1, lid.height - 1), fill=255)
        out.paste(lid, box[:2], mask.filter(ImageFilter.GaussianBlur(float(max(1.0, width / 15)))))
    return out


@dataclass(frozen=True)
class FakeCamera:
    """Frames by challenge step (``neutral``, ``blink``, ``turn_left``, ``turn_right``), each ``SIZE``."""

    frames: dict[str, Image.Image]

    def init_script(self) -> str:
        """The JavaScript to add to a browser context (``context.add_init_script(script=...)``)."""
        encoded = {step: base64.b64encode(faces.encode(image, "JPEG", quality=92)).decode("ascii")
                   for step, image in self.frames.items()}
        return (_SCRIPT.replace("__FRAMES__", json.dumps(encoded)).replace("__WIDTH__", str(SIZE[0]))
                .replace("__HEIGHT__", str(SIZE[1])).replace("__FPS__", str(FPS)))

    def install(self, context: Any) -> None:
        """Give every page of the Playwright ``context`` this camera (before any page script runs)."""
        context.add_init_script(script=self.init_script())


def person() -> FakeCamera:
    """The camera filming the person of obama.jpg (his ID card portrait: ``faces.id_portrait`` of obama.jpg)."""
    straight, turned = faces.photo("obama.jpg"), faces.photo("obama2.jpg")
    poses = {"neutral": straight, "blink": closed_eyes(straight), "turn_right": turned,
             "turn_left": ImageOps.mirror(turned)}
    return FakeCamera({step: faces.padded(poses[step], SIZE) for step in STEPS})


# The page-side camera. ``shown`` records each pose change (for the test to see the camera followed the page).
_SCRIPT = """
(() => {
  "use strict";
  const FRAMES = __FRAMES__;
  const WIDTH = __WIDTH__, HEIGHT = __HEIGHT__, FPS = __FPS__;
  if (!navigator.mediaDevices) { return; }
  const log = [];
  Object.defineProperty(window, "__fakeCamera", { value: { shown: log } });
  let decoded = null;
  async function bitmaps() {
    if (decoded) { return decoded; }
    const out = {};
    for (const [step, b64] of Object.entries(FRAMES)) {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      out[step] = await createImageBitmap(new Blob([bytes], { type: "image/jpeg" }));
    }
    decoded = out;
    return out;
  }
  function pose() {
    const current = document.querySelector("[data-camera] [data-step].current");
    const step = current ? current.getAttribute("data-step") : "neutral";
    return Object.prototype.hasOwnProperty.call(FRAMES, step) ? step : "neutral";
  }
  navigator.mediaDevices.getUserMedia = async function (constraints) {
    if (!constraints || !constraints.video) {
      throw new DOMException("this fake camera films video only", "NotSupportedError");
    }
    const frames = await bitmaps();
    const canvas = document.createElement("canvas");
    canvas.width = WIDTH;
    canvas.height = HEIGHT;
    const ctx = canvas.getContext("2d");
    let last = null;
    const draw = () => {
      const step = pose();
      if (step !== last) { log.push(step); last = step; }
      ctx.drawImage(frames[step], 0, 0, WIDTH, HEIGHT);
    };
    draw();
    const stream = canvas.captureStream(FPS);
    const timer = setInterval(draw, Math.round(1000 / FPS));
    for (const track of stream.getVideoTracks()) {
      const stop = track.stop.bind(track);
      track.stop = () => { clearInterval(timer); stop(); };
    }
    return stream;
  };
})();
"""
