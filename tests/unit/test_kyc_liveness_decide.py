"""The liveness decision on per-frame signals (the image analysis is tested on real photos in integration)."""

from __future__ import annotations

import random

from kyc.liveness import BLINK_RATIO
from kyc.liveness import BLUR_MIN
from kyc.liveness import CHALLENGES
from kyc.liveness import MOIRE_MAX
from kyc.liveness import YAW_TURN
from kyc.liveness import FrameSignal
from kyc.liveness import LivenessResult
from kyc.liveness import decide
from kyc.liveness import new_challenge


def frame(ear: float = 0.30, yaw: float = 0.0, faces: int = 1, blur: float = 200.0, moire: float = 12.0
          ) -> FrameSignal:
    return FrameSignal(faces, ear if faces == 1 else None, yaw if faces == 1 else None, blur, moire)


def good_session() -> dict[str, list[FrameSignal]]:
    return {
        "neutral": [frame(0.30, 0.02), frame(0.31, 0.0), frame(0.29, 0.03)],
        "turn_left": [frame(yaw=0.1), frame(yaw=0.45), frame(yaw=0.2)],
        "blink": [frame(0.30), frame(0.12), frame(0.29)],
        "turn_right": [frame(yaw=-0.2), frame(yaw=-0.5)],
    }


CHALLENGE = ("turn_left", "blink", "turn_right")


def failed(result: LivenessResult) -> list[str]:
    return [c.code for c in result.checks if not c.passed]


def test_new_challenge_is_a_random_order_of_all_steps() -> None:
    orders = {new_challenge(random.Random(seed)) for seed in range(50)}
    assert all(sorted(o) == sorted(CHALLENGES) for o in orders)
    assert len(orders) == 6


def test_good_session_passes_with_every_check_explained() -> None:
    result = decide(good_session(), CHALLENGE)
    assert result.passed, failed(result)
    codes = [c.code for c in result.checks]
    assert codes == ["challenge_order", "one_face", "turn_left", "blink", "turn_right", "sharpness", "screen"]
    assert all(c.text_zh and c.text_en for c in result.checks)
    assert result.as_dict()["passed"] is True


def test_no_blink() -> None:
    session = good_session()
    session["blink"] = [frame(0.30), frame(0.30 * BLINK_RATIO + 0.01), frame(0.29)]
    assert failed(decide(session, CHALLENGE)) == ["blink"]


def test_blink_is_relative_to_the_persons_own_baseline() -> None:
    # Narrow eyes (open EAR 0.20): 0.14 is a blink for this person, though it is an open eye for others.
    session = good_session()
    session["neutral"] = [frame(0.20), frame(0.21), frame(0.20)]
    session["blink"] = [frame(0.20), frame(0.14)]
    assert decide(session, CHALLENGE).passed
    # Wide eyes (open EAR 0.38): dropping to 0.30 is not a blink.
    session["neutral"] = [frame(0.38), frame(0.39), frame(0.38)]
    session["blink"] = [frame(0.38), frame(0.30)]
    assert failed(decide(session, CHALLENGE)) == ["blink"]


def test_baseline_without_neutral_frames_is_the_median_of_all() -> None:
    session = good_session()
    del session["neutral"]
    assert decide(session, CHALLENGE).passed


def test_turn_in_the_wrong_direction() -> None:
    session = good_session()
    session["turn_left"] = [frame(yaw=-0.5)]
    assert failed(decide(session, CHALLENGE)) == ["turn_left"]


def test_turn_too_small() -> None:
    session = good_session()
    session["turn_right"] = [frame(yaw=-(YAW_TURN - 0.05))]
    assert failed(decide(session, CHALLENGE)) == ["turn_right"]


def test_turn_is_measured_from_the_neutral_yaw() -> None:
    # Camera off to one side: straight ahead reads 0.2; turning left to 0.5 is only 0.3 of movement.
    session = good_session()
    session["neutral"] = [frame(yaw=0.2)] * 3
    session["turn_left"] = [frame(yaw=0.5)]
    session["turn_right"] = [frame(yaw=-0.3)]
    assert failed(decide(session, CHALLENGE)) == ["turn_left"]


def test_steps_out_of_order() -> None:
    session = good_session()
    reordered = {"neutral": session["neutral"], "blink": session["blink"], "turn_left": session["turn_left"],
                 "turn_right": session["turn_right"]}
    assert failed(decide(reordered, CHALLENGE)) == ["challenge_order"]


def test_missing_step() -> None:
    session = good_session()
    del session["turn_right"]
    assert set(failed(decide(session, CHALLENGE))) == {"challenge_order", "turn_right"}


def test_unknown_step() -> None:
    assert "challenge_order" in failed(decide({"neutral": [frame()], "smile": [frame()]}, ("smile",)))


def test_every_frame_needs_exactly_one_face() -> None:
    for faces in (0, 2):
        session = good_session()
        session["blink"].append(frame(faces=faces))
        assert "one_face" in failed(decide(session, CHALLENGE))


def test_blurred_frames() -> None:
    session = {step: [frame(s.ear or 0.3, s.yaw or 0.0, blur=BLUR_MIN / 2) for s in frames]
               for step, frames in good_session().items()}
    assert failed(decide(session, CHALLENGE)) == ["sharpness"]


def test_screen_moire() -> None:
    session = good_session()
    session["turn_right"].append(frame(yaw=-0.5, moire=MOIRE_MAX * 3))
    assert failed(decide(session, CHALLENGE)) == ["screen"]


def test_empty_session_fails() -> None:
    assert not decide({}, CHALLENGE).passed


def test_passive_signals_come_from_frames_with_one_face() -> None:
    session = good_session()
    session["blink"].append(frame(faces=2, blur=1.0, moire=MOIRE_MAX * 5))
    assert failed(decide(session, CHALLENGE)) == ["one_face"]


def test_an_empty_challenge_never_passes_a_still_picture() -> None:
    """A post with no challenge must not turn a single sharp photo into a live person."""
    still = {"neutral": [frame(0.30, 0.0)]}
    assert not decide(still, ()).passed and "challenge_order" in failed(decide(still, ()))
