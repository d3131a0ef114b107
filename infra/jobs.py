"""The job queue: procrastinate (https://procrastinate.readthedocs.io) on the service's own PostgreSQL database.

A job is deferred in the same transaction as the state change that causes it (:meth:`JobQueue.defer` runs
procrastinate's own ``procrastinate_defer_jobs_v1`` on the session of the open unit of work,
``Database.transaction()``): no job for a change that rolled back, no change without its job. Its insert
notifies the workers (LISTEN/NOTIFY) when the transaction commits. Workers are ``leaseline worker`` processes
(bff/worker.py); the web processes only defer.

This module is also what ops read and act on: the jobs by queue and state, the failed and stalled ones with
their last error (``job_errors``: procrastinate keeps no error text), retry and cancel.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from datetime import timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from infra.db import Database
from infra.db.models import utcnow
from infra.logs import request_id

#: the jobs' states as procrastinate names them, in the order ops read them
STATES = ("todo", "doing", "failed", "succeeded", "cancelled", "aborted")
#: a running job whose worker sent no heartbeat for this long is stalled (its worker died): it is retried
STALLED_AFTER_SECONDS = 30.0
#: how long a job that succeeded is kept (ops see the day's; the evidence of what it did is in our own tables)
KEEP_SUCCEEDED = timedelta(hours=24)

_DEFER = text("SELECT procrastinate_defer_jobs_v1(ARRAY[ROW(:queue, :task, :priority, :lock, :queueing_lock, "
              "CAST(:args AS jsonb), :at)::procrastinate_job_to_defer_v1])")


def defer_in(session: Session, task: str, args: Mapping[str, Any], *, queue: str, lock: str | None = None,
             queueing_lock: str | None = None, at: datetime | None = None) -> None:
    """Queue ``task(**args)`` in ``session``'s transaction (:meth:`JobQueue.defer` joins only a
    ``Database.transaction()``; the close of business's batch is a plain session): the job exists with the change
    that caused it, or not at all. ``at``: not before then (None: at once)."""
    session.execute(_DEFER, {"queue": queue, "task": task, "priority": 0, "lock": lock,
                             "queueing_lock": queueing_lock, "at": at,
                             "args": json.dumps({**args, "request": request_id.get()}, ensure_ascii=False)})


@dataclass(frozen=True)
class JobRow:
    id: int
    queue: str
    task: str
    state: str
    attempts: int
    scheduled_at: datetime | None
    started_at: datetime | None
    last_error: str
    stalled: bool

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "queue": self.queue, "task": self.task, "state": self.state,
                "attempts": self.attempts, "last_error": self.last_error, "stalled": self.stalled,
                "scheduled_at": self.scheduled_at.isoformat() if self.scheduled_at else None,
                "started_at": self.started_at.isoformat() if self.started_at else None}


class JobQueue:
    """One service's queue: procrastinate's tables in its database, and ``errors`` (the table of the attempts'
    errors: ``job_errors`` in the BFF's, ``contract_job_errors`` in the contract service's)."""

    def __init__(self, db: Database, errors: str = "job_errors") -> None:
        if errors not in ("job_errors", "contract_job_errors"):
            raise ValueError(f"unknown table of job errors: {errors}")
        self.db, self.errors = db, errors

    # -- deferring -----------------------------------------------------------------------------------------------
    def defer(self, task: str, args: Mapping[str, Any], *, queue: str = "default", lock: str | None = None,
              queueing_lock: str | None = None, at: datetime | None = None, priority: int = 0) -> int | None:
        """Queue ``task(**args)``, in the open unit of work when there is one (else on its own). Returns the job's
        id, or None when ``queueing_lock`` already has a job waiting (that job will do the same work)."""
        # the request that caused the job goes along: the worker logs the job's run with its id
        args = {**args, "request": request_id.get()}
        params = {"queue": queue, "task": task, "priority": priority, "lock": lock, "queueing_lock": queueing_lock,
                  "args": json.dumps(args, ensure_ascii=False), "at": at}
        with self.db.session() as session:
            try:
                with session.begin_nested():
                    ids = session.execute(_DEFER, params).scalar_one()
            except IntegrityError as exc:
                if queueing_lock is not None and "procrastinate_jobs_queueing_lock_idx" in str(exc.orig):
                    return None
                raise
        return int(ids[0])

    # -- what ops see ------------------------------------------------------------------------------------------
    def counts(self) -> dict[str, dict[str, int]]:
        """Jobs by queue, then by state."""
        with self.db.session() as session:
            rows = session.execute(text("SELECT queue_name, status::text, count(*) FROM procrastinate_jobs "
                                        "GROUP BY queue_name, status ORDER BY queue_name"))
            counts: dict[str, dict[str, int]] = {}
            for queue, state, n in rows:
                counts.setdefault(queue, {s: 0 for s in STATES})[state] = int(n)
            return counts

    def jobs(self, *, states: tuple[str, ...] = (), stalled_only: bool = False, queue: str | None = None,
             job_id: int | None = None, limit: int = 100, stalled_after: float = STALLED_AFTER_SECONDS
             ) -> list[JobRow]:
        """The newest jobs (in ``states``; only the stalled ones), each with its last error and start time."""
        where, params = ["TRUE"], {"limit": limit, "stalled_after": stalled_after}  # type: list[str], dict[str, Any]
        if states:
            where.append("j.status::text = ANY(:states)")
            params["states"] = list(states)
        if queue:
            where.append("j.queue_name = :queue")
            params["queue"] = queue
        if job_id is not None:
            where.append("j.id = :id")
            params["id"] = job_id
        if stalled_only:
            where.append(f"({_STALLED})")
        sql = f"""
            SELECT j.id, j.queue_name, j.task_name, j.status::text, j.attempts, j.scheduled_at,
                   (SELECT max(e.at) FROM procrastinate_events e WHERE e.job_id = j.id AND e.type = 'started'),
                   (SELECT r.error FROM {self.errors} r WHERE r.job_id = j.id ORDER BY r.id DESC LIMIT 1),
                   ({_STALLED})
              FROM procrastinate_jobs j
             WHERE {" AND ".join(where)}
             ORDER BY j.id DESC LIMIT :limit"""
        with self.db.session() as session:
            return [JobRow(id=r[0], queue=r[1], task=r[2], state=r[3], attempts=r[4], scheduled_at=r[5],
                           started_at=r[6], last_error=r[7] or "", stalled=bool(r[8]))
                    for r in session.execute(text(sql), params)]

    def job(self, job_id: int) -> JobRow | None:
        return next(iter(self.jobs(job_id=job_id, limit=1)), None)

    # -- acting on them ----------------------------------------------------------------------------------------
    def retry(self, job_id: int) -> bool:
        """A failed job (or a stalled one: its worker died) to be run again now. False when it is neither, or when
        a job with its queueing lock waits already (the next run of a sweep: it does the same work)."""
        job = self.job(job_id)
        if job is None or not (job.state == "failed" or (job.state == "doing" and job.stalled)):
            return False
        try:
            with self.db.session() as session:
                session.execute(text("SELECT procrastinate_retry_job_v2(:id, now(), NULL, NULL, NULL)"),
                                {"id": job_id})
        except IntegrityError as exc:  # a job with its queueing lock waits already: that one does the work
            if "procrastinate_jobs_queueing_lock_idx" in str(exc.orig):
                return False
            raise
        return True

    def cancel(self, job_id: int) -> bool:
        """A job waiting to run, cancelled (it will not run). False when it is not waiting."""
        with self.db.session() as session:
            done = session.execute(text("SELECT procrastinate_cancel_job_v1(:id, false, false)"),
                                   {"id": job_id}).scalar_one()
        return done is not None

    def retry_stalled(self, stalled_after: float = STALLED_AFTER_SECONDS) -> list[int]:
        """Every running job whose worker stopped sending heartbeats (killed, its machine gone): run again, in one
        transaction. Each task is idempotent (keys from our own records), so a job that had its effect before the
        kill has it once. Returns the ids retried.

        A stalled job whose queueing lock has a job waiting already (a periodic sweep: the next run was deferred
        while this one hung, and waits for its lock) is not run again but ended ``aborted``, its error saying so:
        the waiting job does the same work, and a second one with that queueing lock cannot exist."""
        with self.db.session() as session:
            # the stalled ones first (materialised), then the change to each: a function in the select list runs
            # for the rows selected only
            superseded = list(session.execute(text(
                f"WITH stalled AS MATERIALIZED (SELECT j.id FROM procrastinate_jobs j WHERE {_STALLED} "
                f"AND {_SUPERSEDED}) "
                "SELECT id, procrastinate_finish_job_v1(id, 'aborted', false) FROM stalled"),
                {"stalled_after": stalled_after}).scalars())
            for job_id in superseded:
                session.execute(text(f"INSERT INTO {self.errors} (job_id, attempt, error, at) "
                                     "SELECT id, attempts, :e, :t FROM procrastinate_jobs WHERE id = :j"),
                                {"j": job_id, "t": utcnow(), "e": "its worker died; the next run, waiting with "
                                                                  "the same queueing lock, does its work"})
            return list(session.execute(text(
                f"WITH stalled AS MATERIALIZED (SELECT j.id FROM procrastinate_jobs j WHERE {_STALLED}) "
                "SELECT id, procrastinate_retry_job_v2(id, now(), NULL, NULL, NULL) FROM stalled"),
                {"stalled_after": stalled_after}).scalars())

    def prune(self, older_than: timedelta = KEEP_SUCCEEDED) -> int:
        """Delete the jobs that succeeded more than ``older_than`` ago, with their events and errors (the periodic
        sweeps alone make some 100,000 a day); failed and cancelled ones stay for ops. Returns how many."""
        with self.db.session() as session:
            deleted = session.execute(text(
                "DELETE FROM procrastinate_jobs j WHERE j.status = 'succeeded' AND EXISTS (SELECT 1 FROM "
                "procrastinate_events e WHERE e.job_id = j.id AND e.type = 'succeeded' AND e.at < now() - :keep)"),
                {"keep": older_than})
            return int(deleted.rowcount)  # type: ignore[attr-defined]

    def record_error(self, job_id: int, attempt: int, error: str) -> None:
        """The error of one attempt (shown to ops beside the job; procrastinate keeps none)."""
        with self.db.session() as session:
            session.execute(text(f"INSERT INTO {self.errors} (job_id, attempt, error, at) VALUES (:j, :a, :e, :t)"),
                            {"j": job_id, "a": attempt, "e": error[:2000], "t": utcnow()})


# a stalled job whose queueing lock another job, waiting, holds already
_SUPERSEDED = ("j.queueing_lock IS NOT NULL AND EXISTS (SELECT 1 FROM procrastinate_jobs t "
               "WHERE t.queueing_lock = j.queueing_lock AND t.status = 'todo')")
# a running job is stalled when its worker's heartbeat is older than :stalled_after seconds, or its worker is gone
_STALLED = ("j.status = 'doing' AND (j.worker_id IS NULL OR EXISTS (SELECT 1 FROM procrastinate_workers w "
            "WHERE w.id = j.worker_id AND w.last_heartbeat < now() - make_interval(secs => :stalled_after)))")


@dataclass(frozen=True)
class Job:
    """A job to defer with a change, in its transaction; a job of the same ``queueing_lock`` already waiting does the
    same work, so none is added. ``lock``: procrastinate's lock, jobs of the same one run one at a time."""

    task: str
    args: Mapping[str, Any]
    queue: str
    queueing_lock: str | None = None
    at: datetime | None = None
    lock: str | None = None

    def defer(self, session: Session) -> None:
        try:
            with session.begin_nested():
                defer_in(session, self.task, self.args, queue=self.queue, lock=self.lock,
                         queueing_lock=self.queueing_lock, at=self.at)
        except IntegrityError as exc:
            if "procrastinate_jobs_queueing_lock_idx" not in str(exc.orig):
                raise


# the jobs as arrays, one element each (procrastinate's own procrastinate_defer_jobs_v1 takes an array of them); one
# whose queueing lock has a job waiting already is left out, as Job.defer leaves it
_DEFER_MANY = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY(SELECT ROW(j.queue, j.task, 0, j.lock, j.queueing_lock, j.args, j.at)"
    "::procrastinate_job_to_defer_v1 FROM unnest(CAST(:queues AS varchar[]), CAST(:tasks AS varchar[]), "
    "CAST(:run_locks AS text[]), CAST(:locks AS text[]), CAST(:args AS jsonb[]), CAST(:ats AS timestamptz[])) "
    "WITH ORDINALITY AS j(queue, task, lock, queueing_lock, args, at, n) WHERE j.queueing_lock IS NULL OR NOT EXISTS "
    "(SELECT 1 FROM procrastinate_jobs w WHERE w.queueing_lock = j.queueing_lock AND w.status = 'todo') ORDER BY j.n))")


def defer_jobs(session: Session, jobs: Sequence[Job]) -> int:
    """Defer ``jobs`` in ``session``'s transaction in one statement, as :meth:`Job.defer` defers one: a job whose
    ``queueing_lock`` has a job waiting already (or an earlier one of ``jobs``) is not added. The number added (after
    the fallback: the number tried). A job of the same queueing lock deferred meanwhile by another transaction, not
    yet committed, fails the statement on the lock's index: the jobs are then deferred one by one (each skipped when
    its lock is taken)."""
    seen: set[str] = set()
    todo: list[Job] = []
    for job in jobs:
        if job.queueing_lock is not None:
            if job.queueing_lock in seen:
                continue
            seen.add(job.queueing_lock)
        todo.append(job)
    if not todo:
        return 0
    request = request_id.get()
    params = {"queues": [j.queue for j in todo], "tasks": [j.task for j in todo],
              "run_locks": [j.lock for j in todo], "locks": [j.queueing_lock for j in todo],
              "args": [json.dumps({**j.args, "request": request}, ensure_ascii=False) for j in todo],
              "ats": [j.at for j in todo]}
    if not seen:
        return len(session.execute(_DEFER_MANY, params).scalar_one() or ())
    try:
        with session.begin_nested():
            return len(session.execute(_DEFER_MANY, params).scalar_one() or ())
    except IntegrityError as exc:
        if "procrastinate_jobs_queueing_lock_idx" not in str(exc.orig):
            raise
    for job in todo:
        job.defer(session)
    return len(todo)
