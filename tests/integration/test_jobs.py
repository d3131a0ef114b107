"""The job queue (infra/jobs.py, bff/worker.py) on the suite's BFF and its worker: a job commits with the change that
causes it or not at all; a job that fails stays failed with its error, for ops to see and retry (/ops/jobs, audited,
and ``leaseline jobs``); a waiting job can be cancelled; a job whose worker died is run again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text

from tests.integration.test_auth import TIMEOUT
from tests.integration.test_auth import csrf
from tests.integration.test_auth import sign_in

OPS = "ops@demo.leaseline.cn"


def _count(app: Any, task: str) -> int:
    with app.extensions["leaseline"].db.session() as session:
        return int(session.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = :t"),
                                   {"t": task}).scalar_one())


def _wait_state(app: Any, job_id: int, states: tuple[str, ...], timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        job = app.extensions["leaseline"].jobs.job(job_id)
        if job is not None and job.state in states:
            return job
        assert time.monotonic() < deadline, f"job {job_id} is {job.state if job else None}, not {states}"
        time.sleep(0.2)


def test_a_job_commits_with_its_change_or_not_at_all(app: Any) -> None:
    svc = app.extensions["leaseline"]
    later = datetime.now(UTC) + timedelta(hours=1)  # not run by the suite's worker meanwhile
    before = _count(app, "probe.later")
    try:
        with svc.db.transaction():
            svc.jobs.defer("probe.later", {"n": 1}, queue="probe", at=later)
            raise RuntimeError("the change failed")
    except RuntimeError:
        pass
    assert _count(app, "probe.later") == before  # rolled back with it
    with svc.db.transaction():
        job_id = svc.jobs.defer("probe.later", {"n": 2}, queue="probe", at=later)
    assert job_id is not None and svc.jobs.job(job_id).state == "todo"
    # one waiting job per queueing lock: a second defer of the same work is the same job
    with svc.db.transaction():
        first = svc.jobs.defer("probe.later", {"n": 3}, queue="probe", at=later, queueing_lock="probe:x")
        again = svc.jobs.defer("probe.later", {"n": 3}, queue="probe", at=later, queueing_lock="probe:x")
    assert first is not None and again is None
    assert svc.jobs.cancel(first) and svc.jobs.cancel(job_id)
    assert svc.jobs.job(job_id).state == "cancelled" and not svc.jobs.cancel(job_id)  # once


def test_a_failed_job_shows_its_error_to_ops_who_retry_it(app: Any, bff_server: Any) -> None:
    svc = app.extensions["leaseline"]
    with svc.db.transaction():  # a job the task cannot run (no application id): a bug, not retried
        job_id = svc.jobs.defer("risk.send", {}, queue="risk")
    assert job_id is not None
    failed = _wait_state(app, job_id, ("failed",))
    assert failed.attempts == 1 and "TypeError" in failed.last_error and "application_id" in failed.last_error

    base = bff_server.url
    ops = sign_in(base, OPS)
    page = ops.get(f"{base}/ops/jobs", params={"state": "failed"}, timeout=TIMEOUT)
    assert page.status_code == 200 and page.headers["Cache-Control"].startswith("no-store")
    assert f'data-job="{job_id}"' in page.text and "后台任务" in page.text and "TypeError" in page.text
    r = ops.post(f"{base}/ops/jobs/{job_id}/retry", data={"csrf_token": csrf(ops, f"{base}/ops/jobs"),
                                                          "state": "failed"}, timeout=TIMEOUT, allow_redirects=False)
    assert r.status_code == 303 and "notice=done" in r.headers["Location"]
    again = _wait_state(app, job_id, ("failed",), timeout=30)  # run again (and failed again: the bug is there)
    assert again.attempts > failed.attempts and again.last_error
    events = svc.audit.search(action="jobs.retry")
    assert any(e.target == f"job:{job_id}" and e.outcome == "success" for e in events)
    # a job that is not failed cannot be retried: refused, audited, nothing changed
    r = ops.post(f"{base}/ops/jobs/999999999/retry", data={"csrf_token": csrf(ops, f"{base}/ops/jobs")},
                 timeout=TIMEOUT, allow_redirects=False)
    assert r.status_code == 303 and "notice=refused" in r.headers["Location"]

    # the terminal sees the same
    env = {**os.environ, "LEASELINE_DATABASE_URL": app.config["SETTINGS"].database_url, "LEASELINE_ENV": "test"}
    listed = subprocess.run([sys.executable, "-m", "leaseline", "jobs", "list", "--state", "failed", "--json"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert listed.returncode == 0, listed.stderr[-2000:]
    out = json.loads(listed.stdout)
    [row] = [j for j in out["jobs"] if j["id"] == job_id]
    assert row["task"] == "risk.send" and row["queue"] == "risk" and "TypeError" in row["last_error"]
    assert out["counts"]["risk"]["failed"] >= 1


def test_jobs_that_succeeded_a_day_ago_are_pruned_and_failed_ones_stay(db_url: str) -> None:
    from infra.db import Database
    from infra.jobs import JobQueue

    db = Database(db_url)
    svc = type("Components", (), {"db": db, "jobs": JobQueue(db)})
    later = datetime.now(UTC) + timedelta(hours=1)
    with svc.db.transaction():
        old, recent, failed = (svc.jobs.defer("probe.prune", {"n": n}, queue="probe", at=later) for n in range(3))
    with svc.db.session() as session:  # as the worker leaves them: finished, one of them 25 hours ago
        for job_id, state in ((old, "succeeded"), (recent, "succeeded"), (failed, "failed")):
            session.execute(text("UPDATE procrastinate_jobs SET status = 'doing' WHERE id = :id"), {"id": job_id})
            session.execute(text("UPDATE procrastinate_jobs SET status = CAST(:s AS procrastinate_job_status) "
                                 "WHERE id = :id"), {"id": job_id, "s": state})
        session.execute(text("UPDATE procrastinate_events SET at = now() - interval '25 hours' WHERE job_id = :id"),
                        {"id": old})
        session.execute(text("UPDATE procrastinate_events SET at = now() - interval '25 hours' WHERE job_id = :id"),
                        {"id": failed})
    try:
        assert svc.jobs.prune() == 1
        assert svc.jobs.job(old) is None
        assert svc.jobs.job(recent).state == "succeeded" and svc.jobs.job(failed).state == "failed"
    finally:
        db.dispose()


def test_a_job_whose_worker_died_is_run_again(app: Any) -> None:
    """A job left ``doing`` by a worker that stopped sending heartbeats (killed) is found and run again by the
    periodic ``jobs.recover_stalled`` job of a live worker."""
    svc = app.extensions["leaseline"]
    with svc.db.transaction():
        job_id = svc.jobs.defer("probe.orphaned", {}, queue="probe-dead", at=datetime.now(UTC) + timedelta(hours=1))
    assert job_id is not None
    with svc.db.session() as session:  # as a killed worker leaves it: taken, its worker's heartbeat long gone
        worker_id = session.execute(text("INSERT INTO procrastinate_workers (last_heartbeat) VALUES "
                                         "(now() - interval '1 hour') RETURNING id")).scalar_one()
        session.execute(text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w, scheduled_at = NULL "
                             "WHERE id = :id"), {"w": worker_id, "id": job_id})
    assert svc.jobs.job(job_id).stalled
    # retried (then failed: no such task) by the sweep, which looks every 15 s (half the suite's 30 s limit)
    job = _wait_state(app, job_id, ("todo", "failed"), timeout=60)
    assert job.attempts >= 1
    svc.jobs.cancel(job_id)


def test_a_stalled_sweep_whose_next_run_waits_is_ended_not_retried(db_url: str) -> None:
    """A periodic sweep's job stalls (its worker killed mid-run); meanwhile its next run was deferred and waits
    for the lock the stalled one holds. Retrying the stalled one would make a second job with the same queueing
    lock (refused by procrastinate's unique index, which failed the whole recovery: every sweep stopped for good).
    It is ended ``aborted`` with a reason for ops instead, and the other stalled jobs are retried as before."""
    from infra.db import Database
    from infra.jobs import JobQueue

    db = Database(db_url)
    queue = JobQueue(db)
    later = datetime.now(UTC) + timedelta(hours=1)
    with db.transaction():
        sweep = queue.defer("probe.sweep", {}, queue="probe-sweep", lock="probe.sweep", queueing_lock="probe.sweep",
                            at=later)
        other = queue.defer("probe.other", {}, queue="probe-sweep", at=later)
    with db.session() as session:  # both taken by a worker whose heartbeat is long gone
        worker_id = session.execute(text("INSERT INTO procrastinate_workers (last_heartbeat) VALUES "
                                         "(now() - interval '1 hour') RETURNING id")).scalar_one()
        session.execute(text("UPDATE procrastinate_jobs SET status = 'doing', worker_id = :w WHERE id = ANY(:ids)"),
                        {"w": worker_id, "ids": [sweep, other]})
    with db.transaction():  # the sweep's next run, deferred on schedule, waiting
        following = queue.defer("probe.sweep", {}, queue="probe-sweep", lock="probe.sweep",
                                queueing_lock="probe.sweep", at=later)
    try:
        assert following is not None and queue.job(sweep).stalled
        assert queue.retry(sweep) is False  # ops cannot make a second one either (no error page)
        # a limit no live worker reaches (the suite's own worker shares this database): the dead one's jobs — the
        # other retried, the sweep not (ended below). Another test's worker stopped mid-job long ago may have left a
        # stalled job of its own in this shared database, retried too: only this test's jobs are checked
        retried = queue.retry_stalled(600)
        assert other in retried and sweep not in retried and following not in retried, retried
        ended = queue.job(sweep)
        assert ended.state == "aborted" and "next run" in ended.last_error
        # the other, retried, is due now: the suite's own worker (every queue) may have taken it already
        assert queue.job(other).state != "aborted" and queue.job(following).state == "todo"
    finally:
        for job_id in (sweep, other, following):
            queue.cancel(job_id)
        db.dispose()


def test_a_job_s_log_lines_carry_the_request_id_that_deferred_it(db_url: str) -> None:
    """The worker logs each job's run, done or failed, with its duration and the request id that deferred it (the
    JSON formatter reads the id when the line is written): the done line was written after the id was reset."""
    import io
    import logging
    from types import SimpleNamespace

    from infra.db import Database
    from infra.jobs import JobQueue
    from infra.logs import JsonFormatter
    from infra.worker import Tasks

    db = Database(db_url)
    queue = JobQueue(db)
    with db.transaction():
        job_id = queue.defer("probe.logged", {}, queue="probe-log", at=datetime.now(UTC) + timedelta(hours=1))
    tasks = Tasks(db_url, queue)

    def works() -> str:
        return "ok"

    def breaks() -> None:
        raise RuntimeError("no such thing")

    tasks.task("probe.works", "probe-log")(works)
    tasks.task("probe.breaks", "probe-log")(breaks)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter(service="worker"))
    jobs_log = logging.getLogger("leaseline.jobs")
    jobs_log.addHandler(handler)
    level = jobs_log.level
    jobs_log.setLevel(logging.INFO)
    context = SimpleNamespace(job=SimpleNamespace(id=job_id, queue="probe-log", attempts=0))
    try:
        assert tasks.app.tasks["probe.works"].func(context, request="req-works") == "ok"
        try:
            tasks.app.tasks["probe.breaks"].func(context, request="req-breaks")
        except RuntimeError:
            pass
        else:
            raise AssertionError("the task's error must reach procrastinate (it retries or fails the job)")
    finally:
        jobs_log.removeHandler(handler)
        jobs_log.setLevel(level)
        queue.cancel(job_id or 0)
        db.dispose()
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    done = [x for x in lines if "probe.works" in x["msg"]]
    failed = [x for x in lines if "probe.breaks" in x["msg"]]
    assert len(done) == 1 and " done in " in done[0]["msg"] and done[0]["request_id"] == "req-works"
    assert len(failed) == 1 and " failed after " in failed[0]["msg"] and failed[0]["request_id"] == "req-breaks"


def _newest_done(db: Any, task: str) -> int:
    with db.session() as session:
        return int(session.execute(text("SELECT coalesce(max(id), 0) FROM procrastinate_jobs WHERE task_name = :t "
                                        "AND status = 'succeeded'"), {"t": task}).scalar_one())


@pytest.mark.parametrize("side_task", ["deferrer", "update_heartbeats"])
def test_a_worker_one_of_whose_side_tasks_ended_starts_again_and_its_sweeps_go_on(side_task: str, s3_server: Any,
                                                                                   caplog: Any) -> None:
    """procrastinate defers every sweep of a service from one side task, ``deferrer``, and keeps the worker's
    heartbeat from another; when one ends while the worker goes on (cancelled here: procrastinate's own monitor of
    its side tasks does not survive a cancelled one), the jobs that requests defer still ran but the sweeps
    (evidence, refunds, settlements, stalled jobs) stopped for good, or the running jobs looked abandoned. The
    worker notices within its watch period and starts again: a new registration, and the sweeps go on."""
    import asyncio
    import logging

    from infra.db.migrate import upgrade
    from tests.common.worker import WorkerThread
    from tests.conftest import build_app
    from tests.conftest import postgres_database
    from tests.conftest import s3_config

    for url in postgres_database("leaseline_side_task"):
        upgrade(url)
        app = build_app(url, **s3_config(s3_server), risk_url="http://127.0.0.1:9", contract_url="http://127.0.0.1:9")
        db = app.extensions["leaseline"].db
        try:
            with caplog.at_level(logging.ERROR, logger="leaseline.jobs"), WorkerThread(app) as worker:
                deadline = time.monotonic() + 30
                while not _newest_done(db, "evidence.flush"):  # the sweep runs every 2 s
                    assert time.monotonic() < deadline, "the sweep never ran"
                    time.sleep(0.2)
                first = _workers(db)

                def end_it() -> None:
                    for task in asyncio.all_tasks(worker.loop):
                        if task.get_name() == side_task:
                            task.cancel()

                worker.loop.call_soon_threadsafe(end_it)
                time.sleep(1)
                before = _newest_done(db, "evidence.flush")
                deadline = time.monotonic() + 45  # watched every 5 s; the restart lets running jobs finish first
                while _newest_done(db, "evidence.flush") <= before or _workers(db) == first:
                    assert time.monotonic() < deadline, f"no new worker, or the sweeps stopped, with the {side_task}"
                    time.sleep(0.2)
            assert any(f"side task {side_task} ended" in r.getMessage() for r in caplog.records), [
                r.getMessage() for r in caplog.records]
        finally:
            db.dispose()


def _workers(db: Any) -> set[int]:
    with db.session() as session:
        return set(session.execute(text("SELECT id FROM procrastinate_workers")).scalars())


def _watch(wall: list[float], periodic: bool = True) -> str:
    """Run the worker's watch (infra/worker.py ``_side_task_lost``) over a worker that never ends, with a wall clock
    read from ``wall`` in turn (the steady clock is the real one)."""
    import asyncio
    from types import SimpleNamespace

    from infra.worker import _side_task_lost

    reads = iter(wall)
    app = SimpleNamespace(periodic_registry=SimpleNamespace(periodic_tasks={"sweep": object()} if periodic else {}))

    async def run() -> str:
        runner = asyncio.get_running_loop().create_future()
        watch = asyncio.ensure_future(_side_task_lost(app, runner, 0.01, wall=lambda: next(reads, wall[-1])))
        done, _ = await asyncio.wait({watch}, timeout=2)
        runner.cancel()
        if not done:
            watch.cancel()
            return ""
        return watch.result()

    # a thread of its own: in the whole suite this thread may run an event loop already (the browser tests')
    found: list[str] = []
    thread = threading.Thread(target=lambda: found.append(asyncio.run(run())), name="test-watch")
    thread.start()
    thread.join(10)
    assert found, "the watch did not finish"
    return found[0]


def test_a_wall_clock_step_back_restarts_the_worker_a_step_forward_does_not() -> None:
    """procrastinate's deferrer books each sweep by wall-clock time and defers none until the clock is past the last
    one booked: after the clock steps back an hour (NTP; in the suite, a test that moved ``time.time`` for every
    thread) the sweeps stopped for that hour. The worker's watch starts it again; a step forward needs nothing."""
    start = 1_800_000_000.0
    assert "wall clock went back 3600 s" in _watch([start, start - 3600])
    assert _watch([start, start + 3600]) == ""  # a step forward: the deferrer catches up by itself
    assert _watch([start, start - 30]) == ""  # under a minute: only that long a delay
    assert _watch([start, start - 3600], periodic=False) == ""  # nothing periodic to lose
