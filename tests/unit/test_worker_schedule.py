"""The worker's schedules (infra/worker.py ``cron_every``) as procrastinate reads them (croniter, seconds last)."""

from __future__ import annotations

from datetime import datetime

import pytest
from croniter import croniter

from infra.worker import cron_every


@pytest.mark.parametrize("seconds", [1, 2, 5, 30, 60, 300, 600])
def test_every_n_seconds_is_every_n_seconds(seconds: int) -> None:
    """The finding: ``*/2 * * * * *`` was meant as every 2 s; croniter reads the sixth column as the seconds, so
    it ran every second of every even minute (sweeps in bursts, a minute of silence between)."""
    runs = croniter(cron_every(seconds), datetime(2026, 12, 6, 9, 0, 1))
    times = [runs.get_next(datetime) for _ in range(6)]
    gaps = {(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)}
    assert gaps == {float(seconds)}, (cron_every(seconds), times)

