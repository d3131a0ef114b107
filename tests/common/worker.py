"""A service's worker for tests: the real procrastinate worker on the service's own components and database, run
in a thread of the test process (the web side is the test's Flask app, live server or contract server):
:class:`WorkerThread` the BFF's (bff/worker.py), :class:`ContractWorkerThread` the contract service's."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from typing import Any

from flask import Flask
from sqlalchemy import text


class WorkerThread:
    #: every worker thread started in this test process (the failure report lists them)
    started: list[WorkerThread] = []

    def __init__(self, app: Flask, *, queues: list[str] | None = None, concurrency: int = 4) -> None:
        self.app, self.queues, self.concurrency = app, queues, concurrency
        self.loop = asyncio.new_event_loop()
        self.task: asyncio.Task[Any] | None = None
        self.thread = threading.Thread(target=self._run, name="test-worker", daemon=True)
        self.failure: BaseException | None = None

    def _work(self) -> Coroutine[Any, Any, None]:
        from bff.worker import work

        svc, settings = self.app.extensions["leaseline"], self.app.config["SETTINGS"]
        return work(svc, settings, queues=self.queues, concurrency=self.concurrency, install_signal_handlers=False)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.task = self.loop.create_task(self._work())
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
        WorkerThread.started.append(self)
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


class ContractWorkerThread(WorkerThread):
    """The contract service's worker (contract/worker.py) on a :class:`tests.common.contract.ContractServer`'s
    components."""

    def __init__(self, components: Any, *, concurrency: int = 2) -> None:
        self.components = components
        super().__init__(Flask(__name__), queues=None, concurrency=concurrency)

    def _work(self) -> Coroutine[Any, Any, None]:
        from contract.worker import QUEUES
        from contract.worker import build
        from infra.worker import work

        settings = self.components.settings
        return work(build(self.components), tick_seconds=settings.jobs_tick_seconds,
                    stalled_seconds=settings.jobs_stalled_seconds, queues=list(QUEUES),
                    concurrency=self.concurrency, install_signal_handlers=False)


def worker_report(db: Any) -> str:
    """What the suite's workers were doing (for a failed test's report): every thread's stack, the workers'
    heartbeats and the newest jobs of each task that is not done, with their states and times."""
    import sys
    import traceback

    lines = [f"--- worker thread {w.app.name}@{w.app.config['SETTINGS'].database_url.rsplit('/', 1)[-1]}: "
             f"{'alive' if w.thread.is_alive() else 'ended'}, failure {w.failure!r}"
             for w in WorkerThread.started if "SETTINGS" in w.app.config]
    for w in WorkerThread.started:  # each worker's asyncio tasks: procrastinate's side tasks and running jobs
        if w.thread.is_alive() and not w.loop.is_closed():
            tasks = sorted(t.get_name() for t in asyncio.all_tasks(w.loop))
            lines.append(f"    tasks: {', '.join(n for n in tasks if not n.startswith('Task-'))}")
    with db.session() as session:
        lines.append("--- workers (id, heartbeat age s)")
        lines.extend(str(tuple(r)) for r in session.execute(text(
            "SELECT id, round(extract(epoch FROM now() - last_heartbeat)::numeric, 1) FROM procrastinate_workers")))
        lines.append("--- jobs not done, newest 40 (id, task, status, worker, scheduled in s, lock, attempts)")
        lines.extend(str(tuple(r)) for r in session.execute(text(
            "SELECT id, task_name, status::text, worker_id, "
            "round(extract(epoch FROM scheduled_at - now())::numeric, 1), lock, attempts FROM procrastinate_jobs "
            "WHERE status IN ('todo', 'doing') ORDER BY id DESC LIMIT 40")))
        lines.append("--- newest 15 finished periodic jobs (id, task, status, finished s ago)")
        lines.extend(str(tuple(r)) for r in session.execute(text(
            "SELECT j.id, j.task_name, j.status::text, round(extract(epoch FROM now() - max(e.at))::numeric, 1) "
            "FROM procrastinate_jobs j JOIN procrastinate_events e ON e.job_id = j.id "
            "WHERE j.status NOT IN ('todo', 'doing') AND j.queueing_lock IS NOT NULL "
            "GROUP BY j.id ORDER BY j.id DESC LIMIT 15")))
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, frame in sys._current_frames().items():
        name = names.get(ident, "?")
        if name.startswith(("MainThread", "pytest_timeout")) or frame.f_code.co_filename.endswith(
                ("selectors.py", "queue.py", "threading.py")):
            continue  # idle: waiting for work
        lines.append(f"--- thread {name}")
        lines.extend(line.rstrip() for line in traceback.format_stack(frame)[-6:])
    return "\n".join(lines)
