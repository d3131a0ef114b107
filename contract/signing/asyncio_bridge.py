"""pyHanko's synchronous API calls ``asyncio.run()``, which refuses to run in a thread whose event loop is
already running (an async caller, some test plugins): such calls go to a thread of their own."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


def outside_event_loop(work: Callable[[], T]) -> T:
    """``work()`` here, or on a fresh worker thread when this thread's event loop is running."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return work()
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result()
