"""The liveness decision on per-frame signals (the image analysis is tested on real photos in integration)."""

from __future__ import annotations

import random

from kyc.faces import DEFAULT_REVIEW_MARGIN
from kyc.faces import DEFAULT_THRESHOLD
from kyc.liveness import BLINK_RATIO
from kyc.liveness import BLUR_MIN
from kyc.liveness import CHALLENGES
from kyc.liveness import MOIRE_MAX
from kyc.liveness import YAW_TURN
from kyc.liveness import FrameSignal
from kyc.liveness import LivenessResult
from kyc.liveness import decide
from kyc.liveness import new_challenge
from kyc.liveness import sampled_frames


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


def test_a_still_picture_filmed_in_order_is_not_said_to_have_done_the_actions() -> None:
    """Frames tagged in the asked order but showing no action: the order line says only that the frames came
    in that order (true), while each action's own line says it was not seen."""
    still = {step: [frame(0.30, 0.0)] * 3 for step in ("neutral", *CHALLENGE)}
    result = decide(still, CHALLENGE)
    order = result.checks[0]
    assert order.code == "challenge_order" and order.passed
    assert (order.text_zh, order.text_en) == ("按提示的顺序拍摄了各个动作", "The frames were taken in the order asked")
    assert set(failed(result)) == {"turn_left", "blink", "turn_right"}


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


# --- same person throughout: the distance of each step's sampled frame to the selfie ----------------------------

#: measured on the test photos (tests/integration/test_kyc_faces.py): the honest obama sequence
HONEST = {"turn_left": 0.393, "blink": 0.330, "turn_right": 0.377}


def test_the_same_person_throughout_passes_and_is_explained() -> None:
    result = decide(good_session(), CHALLENGE, same_person=HONEST)
    assert result.outcome == "pass" and result.passed, failed(result)
    check = result.checks[-1]
    assert (check.code, check.passed, check.value) == ("same_person", True, 0.393)
    assert check.text_zh and check.text_en
    assert result.as_dict()["same_person"] == HONEST and result.as_dict()["outcome"] == "pass"


def test_someone_else_doing_one_step_fails() -> None:
    result = decide(good_session(), CHALLENGE, same_person={**HONEST, "blink": 0.85})
    assert result.outcome == "fail" and failed(result) == ["same_person"]
    check = result.checks[-1]
    assert check.value == 0.85
    assert "画面中出现了另一个人" in check.text_zh and "Someone else" in check.text_en


def test_a_doubtful_distance_goes_to_review_like_the_face_match() -> None:
    doubtful = DEFAULT_THRESHOLD + DEFAULT_REVIEW_MARGIN / 2
    result = decide(good_session(), CHALLENGE, same_person={**HONEST, "turn_right": doubtful})
    assert result.outcome == "review" and not result.passed and failed(result) == ["same_person"]
    assert "reviewer" in result.checks[-1].text_en and "人工审核" in result.checks[-1].text_zh
    # the band's edges: the threshold itself passes, just above the band fails
    assert decide(good_session(), CHALLENGE, same_person={**HONEST, "blink": DEFAULT_THRESHOLD}).outcome == "pass"
    beyond = DEFAULT_THRESHOLD + DEFAULT_REVIEW_MARGIN + 0.001
    assert decide(good_session(), CHALLENGE, same_person={**HONEST, "blink": beyond}).outcome == "fail"


def test_review_does_not_soften_another_failed_check() -> None:
    session = good_session()
    session["blink"] = [frame(0.30), frame(0.29)]
    result = decide(session, CHALLENGE, same_person={**HONEST, "blink": DEFAULT_THRESHOLD + 0.01})
    assert result.outcome == "fail" and failed(result) == ["blink", "same_person"]


def test_the_threshold_is_the_callers() -> None:
    # a stricter deployment (BFF face threshold 0.33, margin 0.1): the honest turned frames land in review
    result = decide(good_session(), CHALLENGE, same_person=HONEST, threshold=0.33, review_margin=0.1)
    assert result.outcome == "review" and result.checks[-1].value == 0.393


def test_steps_without_a_sampled_face() -> None:
    # judged on the steps that had one (a step without landmarks fails its own action check anyway)
    result = decide(good_session(), CHALLENGE, same_person={**HONEST, "blink": None})
    assert result.outcome == "pass" and result.distances["blink"] is None
    # none at all: it cannot be confirmed
    result = decide(good_session(), CHALLENGE, same_person={})
    assert result.outcome == "fail" and failed(result) == ["same_person"] and result.checks[-1].value is None


def test_without_a_reference_no_same_person_check_is_made() -> None:
    result = decide(good_session(), CHALLENGE)
    assert "same_person" not in [c.code for c in result.checks] and result.distances == {}


def test_the_sampled_frame_is_the_one_that_shows_the_action() -> None:
    # the frame the action is judged on is the frame whose identity is checked: the lowest EAR, the largest turn
    assert sampled_frames(good_session(), CHALLENGE) == {"turn_left": 1, "blink": 1, "turn_right": 1}
    session = good_session()
    session["neutral"] = [frame(yaw=0.3)] * 3  # turns measured from the person's own straight-ahead yaw
    session["turn_right"] = [frame(yaw=0.25), frame(yaw=0.35), frame(yaw=-0.2)]
    session["blink"] = [frame(faces=0), frame(0.2), frame(0.1), frame(faces=2)]
    assert sampled_frames(session, CHALLENGE) == {"turn_left": 1, "blink": 2, "turn_right": 2}
    session["blink"] = [frame(faces=0), frame(faces=2)]
    assert sampled_frames(session, CHALLENGE)["blink"] is None
    del session["turn_left"]
    assert sampled_frames(session, CHALLENGE)["turn_left"] is None
