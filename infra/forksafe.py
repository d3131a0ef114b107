"""One object per process: a client whose keep-alive connections must not be shared with a forked child.

gunicorn forks its workers from a master that has already used the database, S3, Stripe and our services; a
socket opened before the fork is one socket in two processes, which then read each other's answers
(tests/integration/test_fork_safety.py). :class:`PerProcess` makes the object again in a process that did not
make it, and leaves the parent's alone. (SQLAlchemy's pools do the same with their own events:
infra/db/engine.py.)"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic
from typing import TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    """``get()`` gives this process's object, made by ``make()`` on first use in each process (``first``: the
    one the creating process already has, e.g. an object passed in)."""

    def __init__(self, make: Callable[[], T], first: T | None = None) -> None:
        self._make = make
        self._value: T = make() if first is None else first
        self._pid = os.getpid()
        self._lock = threading.Lock()  # never held across a fork by the parent: only a child takes it

    def get(self) -> T:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._value, self._pid = self._make(), os.getpid()
        return self._value
