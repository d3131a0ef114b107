"""The circuit breaker of our service clients: open after repeated failures, one trial after the cool-down."""

from __future__ import annotations

from infra.clients.http import CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_the_threshold_and_lets_one_trial_through_after_the_cooldown() -> None:
    clock = Clock()
    breaker = CircuitBreaker(threshold=3, cooldown=10, clock=clock)
    for _ in range(2):
        breaker.failure()
    assert breaker.allow() and breaker.state == "closed"
    breaker.failure()
    assert breaker.state == "open" and not breaker.allow()
    clock.now = 10.5
    assert breaker.state == "half_open"
    assert breaker.allow()  # the one trial call
    assert not breaker.allow()  # everyone else waits for its result
    breaker.failure()  # the trial failed: open again for a full cool-down
    clock.now = 15
    assert not breaker.allow()
    clock.now = 21
    assert breaker.allow()
    breaker.success()  # the trial worked: closed
    assert breaker.state == "closed" and breaker.allow() and breaker.allow()
