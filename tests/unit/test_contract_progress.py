"""The contract's waiting page estimates from what recent contracts took (issue 17 §14), never "a few seconds"."""

from __future__ import annotations

from bff.applications.contracts import press
from bff.applications.contracts import same_press
from bff.applications.contracts import usual_seconds


def test_no_estimate_from_too_few_contracts() -> None:
    assert usual_seconds([]) is None and usual_seconds([4.0, 6.0]) is None


def test_the_estimate_is_what_nine_in_ten_took_rounded_up_to_five_seconds() -> None:
    took = [3.2] * 9 + [44.0]  # one slow contract under load in ten: the estimate is what nine in ten stayed within
    assert usual_seconds(took) == 5
    assert usual_seconds([3.0, 7.0, 12.0, 31.0]) == 35  # few contracts: the slowest counts
    assert usual_seconds([0.4, 0.5, 0.6]) == 5  # never "0 s"


def test_a_press_is_the_same_only_with_the_same_code_and_drawing() -> None:
    signed = {"press": press("code-1", b"\x89PNG drawing")}
    assert same_press(signed, "code-1", b"\x89PNG drawing")
    assert not same_press(signed, "code-2", b"\x89PNG drawing")
    assert not same_press(signed, "code-1", b"\x89PNG another drawing")
    assert not same_press({}, "code-1", b"\x89PNG drawing") and not same_press(None, "code-1", b"")
