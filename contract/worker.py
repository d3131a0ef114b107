"""The contract service's worker (``leaseline worker --service contract``): its jobs, in its own database.

``contract.prepare_final`` renders a new contract's final text (the same figures as the draft, no DRAFT mark) and
stores it with its hash, so that signing, while the customer waits, only signs. It was deferred with the contract
(contract/service.py ``create``); it does nothing for a contract signed or prepared already, so a retry or a
second run changes nothing. Should it never run (no worker), signing renders the text itself.

``ledger.anchor`` (every minute) stamps, with the time-stamping authority, the evidence log's checkpoints that
have no RFC 3161 token yet — those signed while the TSA was down (contract/evidence.py ``anchor_pending``). One
run at a time (its queueing lock); a checkpoint that has its token is never asked for again; a TSA still down
fails the run, logged and kept with the job's errors, and the next run tries again.
"""

from __future__ import annotations

from procrastinate import App

from contract.app import ContractComponents
from contract.service import QUEUE
from infra.db.engine import UNAVAILABLE
from infra.storage import StorageError
from infra.worker import GRACEFUL_SECONDS
from infra.worker import Backoff
from infra.worker import Tasks
from infra.worker import cron_every
from infra.worker import run_until_stopped
from infra.worker import sweep
from infra.worker import work

QUEUES = (QUEUE,)


def build(components: ContractComponents) -> App:
    """The procrastinate app of the contract service's database, with its tasks bound to ``components``."""
    settings, service = components.settings, components.service
    assert service.jobs is not None
    tasks = Tasks(settings.database_url, service.jobs)
    tasks.task("contract.prepare_final", QUEUE, Backoff(5, retry_exceptions=(StorageError, *UNAVAILABLE)))(
        service.prepare_final)
    tasks.task("ledger.anchor", QUEUE, periodic=cron_every(60))(sweep(service.ledger.anchor_pending))
    tasks.housekeeping(QUEUE, tick_seconds=settings.jobs_tick_seconds, stalled_seconds=settings.jobs_stalled_seconds)
    return tasks.app


def run(components: ContractComponents, *, concurrency: int | None = None,
        graceful_seconds: float = GRACEFUL_SECONDS) -> None:
    """Run the service's jobs until SIGINT/SIGTERM (restarting itself while its database is away); asked to stop, the
    running jobs get ``graceful_seconds`` to finish (infra/worker.py ``work``)."""
    settings = components.settings
    run_until_stopped(work(build(components), tick_seconds=settings.jobs_tick_seconds,
                           stalled_seconds=settings.jobs_stalled_seconds, queues=list(QUEUES),
                           concurrency=concurrency or settings.worker_concurrency, graceful_seconds=graceful_seconds))


__all__ = ["QUEUES", "build", "run"]
