"""The BFF's worker: every background duty as a procrastinate task, run by ``leaseline worker`` processes.

Web processes only defer jobs (infra/jobs.py), in the transaction of the change that causes them. A worker
builds the same services as a web process (bff/bootstrap.py), warms the face models up before its first job,
and runs the tasks below; any number of workers on any number of machines share the queue (each job is taken
by one: ``FOR UPDATE SKIP LOCKED``; one per application at a time: its ``lock``).

Each task is idempotent on retry: it reads the state it changes and keys what it asks other systems from our
own records (the risk service's assessment per application, the contract per application, Stripe's
Idempotency-Key per payment, the evidence entry per event). A task that raises is retried (bounded, with
backoff) and then stays ``failed`` for ops (/ops/jobs, ``leaseline jobs``) with its error; a job whose worker
died is found by its missing heartbeat and run again (``jobs.recover_stalled``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import signal
import time
from collections.abc import Callable
from typing import Any

from procrastinate import App
from procrastinate import JobContext
from procrastinate import PsycopgConnector
from procrastinate.retry import BaseRetryStrategy
from procrastinate.retry import RetryDecision

from bff.applications.contracts import ContractNotReady
from bff.bootstrap import Services
from bff.config import Settings
from infra.clients.http import ServiceUnavailable
from infra.db.engine import UNAVAILABLE
from infra.db.engine import first_line
from infra.db.engine import libpq_url
from infra.db.models import utcnow
from infra.logs import request_id
from infra.storage import StorageError

log = logging.getLogger("leaseline.jobs")

#: the queues, one per kind of work, so that a slow one (a contract render, a face match) holds up no other
QUEUES = ("kyc", "risk", "contract", "payments", "evidence", "housekeeping")
#: the other side is away (a service, the database, storage): worth trying again later
TRANSIENT: tuple[type[BaseException], ...] = (ServiceUnavailable, StorageError, *UNAVAILABLE)


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


def build(services: Services, settings: Settings) -> App:
    """The procrastinate app of the BFF's database, with every task bound to ``services``."""
    app = App(connector=PsycopgConnector(conninfo=libpq_url(settings.database_url)))
    queue = services.jobs

    def task(name: str, on: str, retry: BaseRetryStrategy | None = None, periodic: str | None = None
             ) -> Callable[[Callable[..., object]], Callable[..., object]]:
        """Register ``fn`` as task ``name`` on queue ``on``: run with the request id that deferred it (logs), its
        duration and outcome logged, the error of a failed attempt kept for ops."""

        def register(fn: Callable[..., object]) -> Callable[..., object]:
            @functools.wraps(fn)
            def run(context: JobContext, *args: Any, request: str = "", **kwargs: Any) -> object:
                job = context.job
                token = request_id.set(request or f"job-{job.id}")
                started = time.perf_counter()
                try:
                    result = fn(*args, **kwargs)
                except Exception as exc:
                    seconds = time.perf_counter() - started
                    queue.record_error(int(job.id or 0), job.attempts + 1, f"{type(exc).__name__}: {exc}")
                    log.warning("job %s %s#%s failed after %.3f s (attempt %s): %s", name, job.queue, job.id, seconds,
                                job.attempts + 1, exc)
                    raise
                finally:
                    request_id.reset(token)
                # a sweep every few seconds would drown the log: its runs at DEBUG, its failures above
                log.log(logging.DEBUG if periodic else logging.INFO, "job %s %s#%s done in %.3f s", name, job.queue,
                        job.id, time.perf_counter() - started)
                return result

            # a sweep runs one at a time, whichever worker takes it, and never piles up behind a slow run
            locks = {"lock": name, "queueing_lock": name} if periodic is not None else {}
            registered = app.task(name=name, queue=on, pass_context=True, retry=retry or False, **locks)(run)
            if periodic is not None:
                app.periodic(cron=periodic, periodic_id=name)(registered)
            return fn

        return register

    tick = cron_every(settings.jobs_tick_seconds)

    # -- work a change asks for (deferred with it) ---------------------------------------------------------------
    task("kyc.check", "kyc", Backoff(3, retry_exceptions=TRANSIENT))(services.kyc.run_check)
    task("risk.send", "risk", Backoff(12, retry_exceptions=TRANSIENT))(services.risk.send)
    task("contract.send", "contract", Backoff(12, retry_exceptions=(*TRANSIENT, ContractNotReady)))(
        services.contracts.send)

    # -- sweeps on a schedule (one job at a time each: a periodic job has its queueing lock) -------------------
    def sweep(fn: Callable[[], object]) -> Callable[[int], object]:
        def run(timestamp: int) -> object:
            return fn()

        return run

    task("evidence.flush", "evidence", periodic=tick)(sweep(services.contracts.flush_outbox))
    task("payments.expire_holds", "payments", periodic=tick)(sweep(services.payments.expire_holds))
    task("payments.retry_refunds", "payments", periodic=tick)(sweep(services.payments.retry_refunds))
    task("payments.pay_out_dealers", "payments", periodic=tick)(sweep(services.payments.pay_out_dealers))
    task("payments.settle", "payments", periodic=tick)(sweep(services.payments.settle))
    task("risk.reconcile_referred", "risk", periodic=cron_every(max(30, settings.jobs_tick_seconds)))(
        sweep(services.risk.reconcile_referred))
    task("sessions.purge", "housekeeping", periodic=cron_every(300))(
        sweep(lambda: services.sessions.purge(utcnow())))
    task("kyc.sweep_orphans", "housekeeping", periodic=cron_every(settings.kyc_sweep_seconds))(
        sweep(services.sweep_orphans))
    # biometric images past their retention, every night at 03:00 Beijing time (19:00 UTC)
    task("kyc.purge_biometrics", "housekeeping", periodic="0 19 * * *")(sweep(services.kyc.purge_biometrics))
    task("jobs.prune", "housekeeping", periodic="17 * * * *")(sweep(services.jobs.prune))  # hourly
    # a dead worker's jobs are found once its heartbeat is STALLED old: looking twice as often is enough
    task("jobs.recover_stalled", "housekeeping",
         periodic=cron_every(max(settings.jobs_tick_seconds, settings.jobs_stalled_seconds // 2)))(
        sweep(lambda: services.jobs.retry_stalled(settings.jobs_stalled_seconds)))
    return app


async def work(services: Services, settings: Settings, *, queues: list[str] | None = None, concurrency: int = 4,
               install_signal_handlers: bool = True) -> None:
    """Run jobs until stopped (SIGINT/SIGTERM, or this coroutine cancelled: the running jobs finish first).

    procrastinate stops a worker whose LISTEN connection fails (the database restarted, a network cut) and returns
    as if asked to stop; the jobs stay in the database. Such a worker starts again here, after a pause that grows
    from 1 to 30 seconds while the database stays away, so a restart of PostgreSQL needs nobody to restart it."""
    app = build(services, settings)
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
                    update_heartbeat_interval=max(1.0, settings.jobs_stalled_seconds / 5),
                    stalled_worker_timeout=settings.jobs_stalled_seconds, shutdown_graceful_timeout=30,
                    fetch_job_polling_interval=max(1.0, float(settings.jobs_tick_seconds))))
                asked = asyncio.ensure_future(stopping.wait())
                try:
                    await asyncio.wait({runner, asked}, return_when=asyncio.FIRST_COMPLETED)
                except asyncio.CancelledError:  # cancelled from outside: stop gracefully, then say so
                    runner.cancel()
                    asked.cancel()
                    await asyncio.gather(runner, asked, return_exceptions=True)
                    raise
                asked.cancel()
                if stopping.is_set():
                    runner.cancel()
                    await asyncio.gather(runner, return_exceptions=True)
                    return
                runner.result()  # it stopped by itself: raise what stopped it, if anything
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the database away while starting or running
            log.warning("worker: %s: %s", type(exc).__name__, first_line(exc))
        if time.monotonic() - began > 60:  # it had been running: the next pause starts short again
            pause = 1.0
        log.warning("worker: stopped by itself (its database connection failed); starting again in %.0f s", pause)
        try:
            await asyncio.wait_for(stopping.wait(), pause)
        except TimeoutError:
            pass
        pause = min(30.0, pause * 2)


def run(services: Services, settings: Settings, *, queues: list[str] | None = None, concurrency: int = 4) -> None:
    """``leaseline worker``: the face models are loaded before the first job, so that a face check takes the time
    of the match, not of loading them; then jobs run until SIGINT/SIGTERM."""
    if settings.env != "test":
        from kyc import faces

        faces.api()
    asyncio.run(work(services, settings, queues=queues, concurrency=concurrency))


__all__ = ["QUEUES", "build", "run", "work"]
