"""``every``: a resumer duty that runs at most once every so many seconds, on a monotonic clock."""

from __future__ import annotations

import pytest

from bff.bootstrap import every


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_it_runs_at_once_then_at_most_once_per_period() -> None:
    clock, runs = Clock(), []

    def work() -> int:
        runs.append(clock.now)
        return len(runs)

    duty = every(300, work, clock=clock)
    assert duty() == 1  # the first call runs at once and returns what the work returned
    clock.now += 299.9
    assert duty() is None and runs == [1000.0]  # not due yet: nothing runs
    clock.now += 0.1
    assert duty() == 2
    clock.now += 1000  # however long the resumer was away, one run, then a period again
    assert duty() == 3 and duty() is None


def test_a_failing_run_waits_for_its_next_turn_too() -> None:
    """Storage or the database down: the next attempt is a period later, not on each of the resumer's ticks."""
    clock, calls = Clock(), []

    def work() -> None:
        calls.append(clock.now)
        raise RuntimeError("storage down")

    duty = every(60, work, clock=clock)
    with pytest.raises(RuntimeError):
        duty()
    clock.now += 30
    assert duty() is None and len(calls) == 1
    clock.now += 30
    with pytest.raises(RuntimeError):
        duty()
    assert len(calls) == 2


def test_it_is_named_for_the_resumer_s_log() -> None:
    def purge_sessions() -> int:
        return 0

    assert "purge_sessions" in every(300, purge_sessions).__qualname__
    assert every(300, purge_sessions)() == 0  # the default clock (time.monotonic): the first call runs
