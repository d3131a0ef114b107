"""The BFF's worker (bff/worker.py) for tests: the real procrastinate worker on the app's own services and
database, run in a thread of the test process (the web side is the test's Flask app or live server)."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

from flask import Flask
from sqlalchemy import text


class WorkerThread:
    def __init__(self, app: Flask, *, queues: list[str] | None = None, concurrency: int = 4) -> None:
        self.app, self.queues, self.concurrency = app, queues, concurrency
        self.loop = asyncio.new_event_loop()
        self.task: asyncio.Task[Any] | None = None
        self.thread = threading.Thread(target=self._run, name="test-worker", daemon=True)
        self.failure: BaseException | None = None

    def _run(self) -> None:
        from bff.worker import work

        asyncio.set_event_loop(self.loop)
        svc, settings = self.app.extensions["leaseline"], self.app.config["SETTINGS"]
        self.task = self.loop.create_task(work(svc, settings, queues=self.queues, concurrency=self.concurrency,
                                               install_signal_handlers=False))
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001 - kept for the test to see
            self.failure = exc
        finally:
            self.loop.close()

    def __enter__(self) -> WorkerThread:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.task is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(40)

    def idle(self, timeout: float = 60, queues: tuple[str, ...] = ("kyc", "risk", "contract")) -> None:
        """Wait until no job on ``queues`` is waiting (due now) or running."""
        db = self.app.extensions["leaseline"].db
        deadline = time.monotonic() + timeout
        while True:
            with db.session() as session:
                busy = session.execute(text(
                    "SELECT count(*) FROM procrastinate_jobs WHERE queue_name = ANY(:q) AND (status = 'doing' "
                    "OR (status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())))"),
                    {"q": list(queues)}).scalar_one()
            if not busy:
                return
            assert time.monotonic() < deadline, f"jobs still busy after {timeout} s"
            time.sleep(0.1)
