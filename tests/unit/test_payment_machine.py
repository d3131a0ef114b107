"""The payment state machine: every transition, out-of-order or replayed events changing nothing, and what an intent
must be to be a payment's (issue 14)."""

from __future__ import annotations

import itertools

import pytest

from bff.payments.machine import ALLOWED
from bff.payments.machine import CAPTURED
from bff.payments.machine import FINAL
from bff.payments.machine import STATUSES
from bff.payments.machine import advance
from bff.payments.machine import from_intent
from bff.payments.machine import mismatch
from bff.payments.machine import receipt_problem


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


def test_a_lapsed_hold_s_late_events_do_not_revive_it() -> None:
    """Our ``expired`` is the end of the card's authorisation window; Stripe then cancels the intent. Its late events
    (the authorisation, processing, a failure, the cancellation) change nothing: a new authorisation is a new attempt
    the service claims itself. A capture that reached Stripe before the window closed is money taken: it counts."""
    for late in ("held", "processing", "requires_action", "failed", "released", "pending"):
        assert advance("expired", late) is None
    assert advance("expired", "captured") == "captured"


def test_an_intent_fits_a_line_only_as_we_asked_for_it() -> None:
    assert mismatch("deposit", 1049000, intent_amount=1049000, currency="cny", manual=False) is None
    assert mismatch("deposit", 1049000, intent_amount=1049000, currency="CNY", manual=False) is None
    assert mismatch("hold", 500, intent_amount=500, currency="cny", manual=True) is None
    assert mismatch("deposit", 1049000, intent_amount=1, currency="cny", manual=False) == "amount 1 is not 1049000"
    assert mismatch("deposit", 1049000, intent_amount=1049000, currency="usd", manual=False) is not None
    assert mismatch("deposit", 1049000, intent_amount=1049000, currency="cny", manual=True) is not None
    assert mismatch("hold", 500, intent_amount=500, currency="cny", manual=False) is not None


@pytest.mark.parametrize(("target", "received", "fits"), [
    ("succeeded", 1000, True), ("succeeded", 999, False), ("succeeded", 0, False), ("succeeded", 1001, False),
    ("captured", 1000, True), ("captured", 1, True), ("captured", 0, False), ("captured", 1001, False),
    ("held", 0, True), ("failed", 0, True),
])
def test_what_was_received_must_fit_the_move(target: str, received: int, fits: bool) -> None:
    """An automatic capture takes the whole amount; a hold's capture some of it (the rest released), never more."""
    assert (receipt_problem(target, 1000, received) is None) == fits


def test_what_was_received_is_written_only_into_final_states() -> None:
    """Stripe's amount_received is final once an intent succeeded; so are ours that hold it."""
    assert CAPTURED <= FINAL and all(not ALLOWED[status] for status in CAPTURED)
