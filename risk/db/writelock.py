"""One SQLite writer at a time, queued in the operating system instead of in SQLite's busy handler.

SQLite lets one connection write at a time. A connection that finds the write lock taken waits in its busy
handler, which sleeps 1, 2, 5, 10 … 100 ms between attempts (https://sqlite.org/c3ref/busy_timeout.html), so
with two gunicorn workers writing a few hundred times a second about one write in seven slept a few ms and
some slept 100 ms or more: the service's tail latency. Taking an exclusive ``flock`` on a file beside the
database first (and a thread lock, as ``flock`` does not exclude threads sharing a file) makes the writers
queue in the kernel, which wakes the next one the moment the lock is released. Readers are not involved (WAL).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from types import TracebackType

try:
    import fcntl
except ImportError:  # pragma: no cover — Windows: the thread lock alone, SQLite's busy handler across processes
    fcntl = None  # type: ignore[assignment]


class WriteLock:
    """A context manager held around each write transaction on the SQLite file ``database``."""

    def __init__(self, database: str | None) -> None:
        self.path = Path(f"{database}-writelock") if database and database != ":memory:" and fcntl else None
        self._threads = threading.Lock()
        self._fd: int | None = None
        self._pid = 0

    def _file(self, path: Path) -> int:
        # opened per process: a descriptor inherited over gunicorn's fork shares one lock with the parent's
        if self._fd is None or self._pid != os.getpid():
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            self._pid = os.getpid()
        return self._fd

    def __enter__(self) -> WriteLock:
        self._threads.acquire()
        if self.path is not None:
            try:
                fcntl.flock(self._file(self.path), fcntl.LOCK_EX)
            except BaseException:
                self._threads.release()
                raise
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        try:
            if self.path is not None and self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._threads.release()

    def close(self) -> None:
        if self._fd is not None and self._pid == os.getpid():
            os.close(self._fd)
        self._fd = None
