"""The clock of staff sessions (idle and absolute limits, the server-side row's expiry), called through this module
so that a test can move it for the sessions alone. Patching ``time.time`` itself moved every thread's clock,
the worker's periodic deferrer included: it booked its sweeps hours ahead and ran none until then (the red CI runs
of issue 15's stop)."""

from __future__ import annotations

import time


def now() -> float:
    """Unix time, as ``time.time()``."""
    return time.time()


__all__ = ["now"]
