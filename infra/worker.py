"""What every service's worker shares: procrastinate's app on the service's own database, tasks registered with
their logging and error keeping, the retry policy, the schedules, the housekeeping sweeps and the run loop.

Each service says which tasks it has (bff/worker.py, contract/worker.py); ``leaseline worker --service …`` runs
them. A task is idempotent on retry: it reads the state it changes and keys what it asks other systems from the
service's own records. A task that raises is retried (bounded, with backoff) and then stays ``failed`` for ops
with its error; a job whose worker died is found by its missing heartbeat and run again (``jobs.recover_stalled``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import signal
import time
from collections.abc import Callable
from collections.abc import Coroutine
from typing import Any

from procrastinate import App
from procrastinate import JobContext
from procrastinate import PsycopgConnector
from procrastinate.retry import BaseRetryStrategy
from procrastinate.retry import RetryDecision

from infra.db.engine import first_line
from infra.db.engine import libpq_url
from infra.jobs import JobQueue
from infra.logs import request_id

log = logging.getLogger("leaseline.jobs")

#: every statement of the queue's own connections (fetch, defer, heartbeat, LISTEN's keep-alive) ends within these:
#: a statement that waits longer (a lock held by a stuck session, a server in trouble) fails, and the worker
#: restarts (``work``) instead of waiting for ever with its sweeps, which one coroutine defers, stopped behind it
QUEUE_CONNECTION_OPTIONS = "-c statement_timeout=60s -c lock_timeout=30s"
#: how long a worker asked to stop (SIGINT/SIGTERM) waits for its running jobs to finish (``leaseline worker
#: --graceful-timeout``; `leaseline up` passes less, within its own wait for the processes it stops)
GRACEFUL_SECONDS = 30.0


class JobsStillRunning(Exception):
    """A worker asked to stop gave up waiting for its running jobs past its graceful timeout. procrastinate only
    cancels asynchronous jobs then, and ours run in threads that cannot be interrupted: the process must exit at once
    (:func:`run_until_stopped`). Their jobs stay ``doing`` without a heartbeat and are run again by the next worker's
    recovery of stalled jobs (``jobs.recover_stalled``): each is idempotent."""


class Backoff(BaseRetryStrategy):
    """Retry on ``retry_exceptions`` (every exception when None) after 2, 4, 8 … seconds, at most ``cap``, up to
    ``max_attempts`` runs in all; then the job stays failed, for ops to see and retry."""

    def __init__(self, max_attempts: int, cap: int = 60,
                 retry_exceptions: tuple[type[BaseException], ...] | None = None) -> None:
        self.max_attempts, self.cap, self.retry_exceptions = max_attempts, cap, retry_exceptions

    def get_retry_decision(self, *, exception: BaseException, job: Any) -> RetryDecision | None:
        if job.attempts + 1 >= self.max_attempts:
            return None
        if self.retry_exceptions is not None and not isinstance(exception, self.retry_exceptions):
            return None
        return RetryDecision(retry_in={"seconds": min(self.cap, 2 ** (job.attempts + 1))})


def cron_every(seconds: int) -> str:
    """A cron line for "every ``seconds``" as procrastinate reads it (croniter): five fields, and a sixth, the
    *last*, for seconds — ``*/2 * * * * *`` would be every second of every even minute."""
    if seconds < 60:
        return f"* * * * * */{max(1, seconds)}"
    return f"*/{max(1, seconds // 60)} * * * *"


def sweep(fn: Callable[[], object]) -> Callable[[int], object]:
    """A duty on a schedule as procrastinate calls a periodic task (with the time it was due, unused here)."""

    def run(timestamp: int) -> object:
        return fn()

    return run


class Tasks:
    """A service's procrastinate app and the tasks registered on it (``task``), with the housekeeping every
    service's queue needs (``housekeeping``)."""

    def __init__(self, database_url: str, jobs: JobQueue) -> None:
        self.app = App(connector=PsycopgConnector(conninfo=libpq_url(database_url),
                                                  kwargs={"options": QUEUE_CONNECTION_OPTIONS}))
        self.jobs = jobs

    def task(self, name: str, on: str, retry: BaseRetryStrategy | None = None, periodic: str | None = None
             ) -> Callable[[Callable[..., object]], Callable[..., object]]:
        """Register ``fn`` as task ``name`` on queue ``on`` (on the schedule ``periodic``, a cron line): run with the
        request id that deferred it (logs), its duration and outcome logged, the error of a failed attempt kept."""
        jobs = self.jobs

        def register(fn: Callable[..., object]) -> Callable[..., object]:
            @functools.wraps(fn)
            def run(context: JobContext, *args: Any, request: str = "", **kwargs: Any) -> object:
                job = context.job
                token = request_id.set(request or f"job-{job.id}")
                started = time.perf_counter()
                try:
                    result = fn(*args, **kwargs)
                    # a sweep every few seconds would drown the log: its runs at DEBUG, its failures above; both
                    # lines carry the request id that deferred the job (it is reset only after them)
                    log.log(logging.DEBUG if periodic else logging.INFO, "job %s %s#%s done in %.3f s", name,
                            job.queue, job.id, time.perf_counter() - started)
                    return result
                except Exception as exc:
                    seconds = time.perf_counter() - started
                    jobs.record_error(int(job.id or 0), job.attempts + 1, f"{type(exc).__name__}: {exc}")
                    log.warning("job %s %s#%s failed after %.3f s (attempt %s): %s", name, job.queue, job.id, seconds,
                                job.attempts + 1, exc)
                    raise
                finally:
                    request_id.reset(token)

            # a sweep runs one at a time, whichever worker takes it, and never piles up behind a slow run
            locks = {"lock": name, "queueing_lock": name} if periodic is not None else {}
            registered = self.app.task(name=name, queue=on, pass_context=True, retry=retry or False, **locks)(run)
            if periodic is not None:
                self.app.periodic(cron=periodic, periodic_id=name)(registered)
            return fn

        return register

    def housekeeping(self, queue: str, *, tick_seconds: int, stalled_seconds: int) -> None:
        """The queue's own care: jobs that succeeded a day ago deleted (hourly), and the jobs of a worker that died
        (no heartbeat for ``stalled_seconds``) run again."""
        self.task("jobs.prune", queue, periodic="17 * * * *")(sweep(self.jobs.prune))
        # a dead worker's jobs are found once its heartbeat is STALLED old: looking twice as often is enough
        self.task("jobs.recover_stalled", queue, periodic=cron_every(max(tick_seconds, stalled_seconds // 2)))(
            sweep(lambda: self.jobs.retry_stalled(stalled_seconds)))


#: procrastinate's side tasks of a running worker, by their task names (procrastinate/worker.py: heartbeats, the
#: periodic deferrer, the abort poll, the LISTEN connection); each runs as long as the worker does
SIDE_TASKS = ("update_heartbeats", "deferrer", "poll_jobs_to_abort", "listener")


#: a step back of the wall clock larger than this restarts the worker: its deferrer books each sweep by wall-clock
#: time and defers none until the clock is past the last one booked (an NTP step back of an hour: an hour without
#: sweeps); smaller steps only delay them that long
CLOCK_STEP_BACK_SECONDS = 60.0


async def _side_task_lost(app: App, runner: asyncio.Future[Any], every: float,
                          wall: Callable[[], float] = time.time, steady: Callable[[], float] = time.monotonic) -> str:
    """Watch procrastinate's side tasks while ``runner`` (the worker) runs; return why the worker must start again
    when one of them ended while the worker goes on running jobs.

    procrastinate stops a worker whose side task fails, but its monitor of them ends at the first one that ends,
    and a cancelled one ends the monitor itself: after that a side task can end unnoticed. Without the deferrer
    the service's sweeps (evidence, refunds, settlements, stalled jobs) stop for good while the jobs that requests
    defer still run; without the heartbeats its running jobs look abandoned to every worker. The side tasks start
    in the first step of procrastinate's ``worker loop`` task, and ``asyncio.all_tasks`` lists pending tasks only:
    they are looked for every 0.2 s until seen, then kept and looked at every ``every`` seconds."""
    # the deferrer of an app with nothing periodic ends at once, by design
    periodic = bool(app.periodic_registry.periodic_tasks)
    expected = [n for n in SIDE_TASKS if n != "deferrer" or periodic]
    seen: dict[str, asyncio.Task[Any]] = {}
    last = (wall(), steady())
    missing = 0  # looks that found the worker loop without its side tasks (once: they may not have started yet; the
    # first look can come seconds late on a busy machine: an ended one is then missing, not done)
    while not runner.done():
        await asyncio.sleep(every if seen else 0.2)
        if runner.done():
            break
        now = (wall(), steady())
        went_back = (now[1] - last[1]) - (now[0] - last[0])
        last = now
        if periodic and went_back > CLOCK_STEP_BACK_SECONDS:
            return f"the wall clock went back {went_back:.0f} s (its deferrer would wait for it to catch up)"
        if not seen:
            pending = {t.get_name(): t for t in asyncio.all_tasks()}
            if "worker loop" not in pending:
                continue  # starting, or stopped
            seen = {name: pending[name] for name in expected if name in pending}
            missing = missing + 1 if len(seen) < len(expected) else 0
            if missing > 1:
                return f"its side task {', '.join(sorted(set(expected) - set(seen)))} ended before it was watched"
            if missing:
                seen = {}
            continue
        for name, task in seen.items():
            if task.done():
                error = None if task.cancelled() else task.exception()
                return f"its side task {name} ended ({type(error).__name__ if error else 'cancelled'}: {error})"
    return ""


async def work(app: App, *, tick_seconds: int, stalled_seconds: int, queues: list[str] | None = None,
               concurrency: int = 4, install_signal_handlers: bool = True,
               graceful_seconds: float = GRACEFUL_SECONDS) -> None:
    """Run ``app``'s jobs until stopped (SIGINT/SIGTERM, or this coroutine cancelled: the running jobs finish first).
    Stopped by a signal, it waits ``graceful_seconds`` for them (and a second more for procrastinate to say so), then
    raises :class:`JobsStillRunning` if any still runs.

    procrastinate stops a worker whose LISTEN connection fails (the database restarted, a network cut) and returns
    as if asked to stop; the jobs stay in the database. Such a worker starts again here, after a pause that grows
    from 1 to 30 seconds while the database stays away, so a restart of PostgreSQL needs nobody to restart it. So
    does a worker one of whose side tasks (the periodic deferrer, the heartbeats…) ended while it went on running
    jobs, or whose wall clock stepped back (``_side_task_lost``)."""
    stopping = asyncio.Event()
    if install_signal_handlers:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
    pause = 1.0
    while not stopping.is_set():
        began = time.monotonic()
        try:
            async with app.open_async():
                runner = asyncio.ensure_future(app.run_worker_async(
                    queues=queues, concurrency=concurrency, wait=True, install_signal_handlers=False,
                    update_heartbeat_interval=max(1.0, stalled_seconds / 5),
                    stalled_worker_timeout=stalled_seconds, shutdown_graceful_timeout=graceful_seconds,
                    # besides LISTEN/NOTIFY (a worker is told at a job's defer), a look every tick: a retry after
                    # its backoff, or a job whose lock another held at its defer, is due without a notification
                    fetch_job_polling_interval=max(1.0, float(tick_seconds))))
                asked = asyncio.ensure_future(stopping.wait())
                watch = asyncio.ensure_future(_side_task_lost(app, runner, max(5.0, 2.0 * tick_seconds)))
                try:
                    await asyncio.wait({runner, asked, watch}, return_when=asyncio.FIRST_COMPLETED)
                except asyncio.CancelledError:  # cancelled from outside: stop gracefully, then say so
                    for waiting in (runner, asked, watch):
                        waiting.cancel()
                    await asyncio.gather(runner, asked, watch, return_exceptions=True)
                    raise
                asked.cancel()
                lost = watch.result() if watch.done() and not runner.done() else ""
                watch.cancel()
                if stopping.is_set() or lost:
                    runner.cancel()  # graceful: the running jobs finish first
                    if stopping.is_set():  # within graceful_seconds (and a second for procrastinate to say so)
                        await asyncio.wait({runner}, timeout=graceful_seconds + 1.0)
                        if not runner.done():  # a synchronous job goes on in its thread: given up, left for a retry
                            raise JobsStillRunning(f"worker: jobs still running {graceful_seconds:g} s after the stop "
                                                   "was asked: left to be run again by the recovery of stalled jobs")
                    await asyncio.gather(runner, watch, return_exceptions=True)
                    if stopping.is_set():
                        return
                    log.error("worker: %s; starting it again", lost)
                else:
                    runner.result()  # it stopped by itself: raise what stopped it, if anything
        except (asyncio.CancelledError, JobsStillRunning):
            raise
        except Exception as exc:  # the database away while starting or running
            log.warning("worker: %s: %s", type(exc).__name__, first_line(exc))
        if time.monotonic() - began > 60:  # it had been running: the next pause starts short again
            pause = 1.0
        log.warning("worker: stopped by itself (its database connection failed, or a side task); starting again "
                    "in %.0f s", pause)
        try:
            await asyncio.wait_for(stopping.wait(), pause)
        except TimeoutError:
            pass
        pause = min(30.0, pause * 2)


def run_until_stopped(main: Coroutine[Any, Any, None]) -> None:
    """Run a worker's coroutine (:func:`work`) as the process's main loop, like ``asyncio.run``; a worker that gave
    up waiting for its jobs (:class:`JobsStillRunning`) ends the process at once, its log flushed, with status 0:
    the interpreter would otherwise wait at exit for the threads of the jobs it gave up."""

    async def guarded() -> None:
        try:
            await main
        except JobsStillRunning as exc:
            log.warning("%s", exc)
            for handler in logging.getLogger().handlers:
                handler.flush()
            os._exit(0)

    asyncio.run(guarded())


__all__ = ["GRACEFUL_SECONDS", "Backoff", "JobsStillRunning", "Tasks", "cron_every", "run_until_stopped", "sweep",
           "work"]
