"""The payment state machine: every transition, and out-of-order or replayed events changing nothing."""

from __future__ import annotations

import itertools

import pytest

from bff.payments.machine import ALLOWED
from bff.payments.machine import FINAL
from bff.payments.machine import STATUSES
from bff.payments.machine import advance
from bff.payments.machine import from_intent


@pytest.mark.parametrize(("intent", "manual", "ours"), [
    ("succeeded", False, "succeeded"), ("succeeded", True, "captured"), ("requires_capture", True, "held"),
    ("canceled", True, "released"), ("canceled", False, "failed"), ("requires_action", False, "requires_action"),
    ("requires_payment_method", False, "failed"), ("processing", False, "processing"),
    ("requires_confirmation", False, "pending"),
])
def test_intent_statuses(intent: str, manual: bool, ours: str) -> None:
    assert from_intent(intent, manual) == ours


def test_every_status_has_its_transitions_and_final_ones_have_none() -> None:
    assert set(ALLOWED) == set(STATUSES)
    for status in FINAL:
        assert not ALLOWED[status]
    assert all(targets <= set(STATUSES) for targets in ALLOWED.values())


@pytest.mark.parametrize(("current", "target"), list(itertools.product(STATUSES, STATUSES)))
def test_advance_is_the_table(current: str, target: str) -> None:
    expected = target if target != current and target in ALLOWED[current] else None
    assert advance(current, target) == expected


def test_a_late_failure_never_undoes_a_success_nor_a_hold() -> None:
    assert advance("succeeded", "failed") is None
    assert advance("held", "failed") is None and advance("held", "processing") is None
    assert advance("captured", "held") is None  # a late "capturable" event after the capture


def test_a_success_may_arrive_before_our_own_answer() -> None:
    assert advance("processing", "succeeded") == "succeeded"
    assert advance("pending", "held") == "held"
    assert advance("succeeded", "succeeded") is None  # then our answer: a no-op
