"""The dealer-monitoring counts: summed into the portfolio's, and reused per process for a while."""

from __future__ import annotations

import threading

from risk.rules import Rates
from risk.service import DealerStats
from risk.service import Reused


def test_the_portfolio_is_the_sum_of_the_dealers() -> None:
    stats = DealerStats.of([("a", 30, 30, 0), ("b", 11, 0, 2)])
    assert stats.dealers == {"a": Rates(30, 30, 0), "b": Rates(11, 0, 2)}
    assert stats.portfolio == Rates(41, 30, 2)
    assert DealerStats.of([]).portfolio == Rates()


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_reused_within_the_ttl_and_read_again_after() -> None:
    clock, reads = Clock(), list[float]()
    value = Reused[int](30, clock)

    def read() -> int:
        reads.append(clock.now)
        return len(reads)

    assert value.get(read) == 1
    clock.now += 29.9
    assert value.get(read) == 1
    clock.now += 0.1
    assert value.get(read) == 2
    assert reads == [100.0, 130.0]


def test_ttl_zero_reads_every_time() -> None:
    reads = iter(range(1, 10))
    value = Reused[int](0)
    assert [value.get(lambda: next(reads)) for _ in range(3)] == [1, 2, 3]


def test_an_expired_value_is_served_while_another_thread_reads_the_new_one() -> None:
    clock = Clock()
    value = Reused[str](30, clock)
    assert value.get(lambda: "old") == "old"
    clock.now += 31
    reading, release = threading.Event(), threading.Event()

    def slow() -> str:
        reading.set()
        release.wait(5)
        return "new"

    results: list[str] = []
    thread = threading.Thread(target=lambda: results.append(value.get(slow)))
    thread.start()
    assert reading.wait(5)
    assert value.get(lambda: "never read") == "old"  # does not queue behind the slow read
    release.set()
    thread.join(5)
    assert results == ["new"] and value.get(lambda: "never read") == "new"
