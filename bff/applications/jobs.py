"""The worker pool for slow KYC work (OCR, face detection and encodings), one per process.

gunicorn builds the app in its master and forks the workers: threads do not survive a fork, and a
ThreadPoolExecutor made before it would queue work that no thread ever runs. So the pool is made in the
process that first uses it (or at worker start, ``start()``), and again after any fork.
"""

from __future__ import annotations

import contextvars
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import ThreadPoolExecutor
from typing import Any


class ProcessLocalPool:
    def __init__(self, workers: int, warm_up: Callable[[], None] | None = None) -> None:
        self.workers, self.warm_up = workers, warm_up
        self._pool: ThreadPoolExecutor | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def start(self) -> ThreadPoolExecutor:
        """The pool of this process (made on first call, warming up the models behind)."""
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="kyc")
                self._pid = os.getpid()
                if self.warm_up is not None:
                    self._pool.submit(self.warm_up)
            return self._pool

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn`` in the pool with the caller's context (its request id goes along to the logs)."""
        context = contextvars.copy_context()
        return self.start().submit(context.run, fn, *args, **kwargs)

    def shutdown(self, wait: bool = True) -> None:
        with self._lock:
            if self._pool is not None and self._pid == os.getpid():
                self._pool.shutdown(wait=wait)
            self._pool = None
