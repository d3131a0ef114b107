"""The job queue under faults, with real ``leaseline worker`` processes (as two machines would run them):

* two workers racing over 500 due jobs: each job run once, by one of them, and both took some;
* a worker killed (SIGKILL) in the middle of a risk request whose answer it never heard: a new worker finds the
  job stalled (no heartbeat), runs it again, and the application is decided once, on the one assessment the risk
  service holds for it (the same application id gives back the same assessment);
* SIGTERM: a worker finishes what it runs and exits 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import text

from tests.common.hold import HoldProxy
from tests.conftest import LiveServer
from tests.conftest import build_app
from tests.conftest import postgres_database
from tests.conftest import s3_config

pytestmark = pytest.mark.db
STALLED_SECONDS = 3


class WorkerProcess:
    """``leaseline worker`` in a process of its own, on the BFF database ``url``."""

    def __init__(self, url: str, *, queues: str, concurrency: int = 4, **settings: str) -> None:
        env = {**os.environ, "LEASELINE_ENV": "test", "LEASELINE_DATABASE_URL": url,
               "LEASELINE_JOBS_TICK_SECONDS": "1", "LEASELINE_JOBS_STALLED_SECONDS": str(STALLED_SECONDS),
               **{f"LEASELINE_{k.upper()}": v for k, v in settings.items()}}
        self.log = Path(os.environ.get("LEASELINE_VAR_DIR", ".")) / f"worker-{time.monotonic_ns()}.log"
        self._out = self.log.open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "leaseline", "worker", "--queues", queues,
                                         "--concurrency", str(concurrency)], env=env, stdout=self._out,
                                        stderr=subprocess.STDOUT)

    def __enter__(self) -> WorkerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._out.close()

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def stop(self, timeout: float = 30) -> int:
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def _wait(predicate: Any, timeout: float, what: str, *workers: WorkerProcess) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        for w in workers:
            assert w.process.poll() is None, f"a worker exited ({w.process.returncode}): {w.tail()}"
        assert time.monotonic() < deadline, f"{what} within {timeout} s; " + " / ".join(w.tail() for w in workers)
        time.sleep(0.2)


@pytest.fixture(scope="module")
def faults_db() -> Iterator[str]:
    from infra.db.migrate import upgrade

    for url in postgres_database("leaseline_faults"):
        upgrade(url)
        yield url


def test_two_workers_share_500_jobs_each_run_once(faults_db: str) -> None:
    from infra.db import Database
    from infra.jobs import JobQueue

    db = Database(faults_db)
    queue = JobQueue(db)
    try:
        with db.transaction():  # 500 due jobs at once (a no-op each: no such application)
            ids = [queue.defer("risk.send", {"application_id": f"race-{n}"}, queue="risk") for n in range(500)]

        def done() -> bool:
            with db.session() as session:
                return int(session.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE id = ANY(:ids) "
                                                "AND status = 'succeeded'"), {"ids": ids}).scalar_one()) == 500

        with WorkerProcess(faults_db, queues="risk") as a, WorkerProcess(faults_db, queues="risk") as b:
            _wait(done, 180, "500 jobs done", a, b)
            with db.session() as session:
                by_worker = dict(session.execute(text(
                    "SELECT worker_id, count(*) FROM procrastinate_jobs WHERE id = ANY(:ids) GROUP BY worker_id"),
                    {"ids": ids}).all())
                runs = dict(session.execute(text(
                    "SELECT job_id, count(*) FROM procrastinate_events WHERE job_id = ANY(:ids) AND type = 'started' "
                    "GROUP BY job_id"), {"ids": ids}).all())
            assert a.stop() == 0 and b.stop() == 0  # SIGTERM: what runs finishes, then a clean exit
        assert len(by_worker) == 2 and None not in by_worker and sum(by_worker.values()) == 500, by_worker
        assert set(runs) == set(ids) and set(runs.values()) == {1}  # each job started once, by one worker
    finally:
        db.dispose()


def test_a_worker_killed_mid_request_leaves_one_decision(faults_db: str, s3_server: Any, risk_server: Any,
                                                         card_images: tuple[bytes, bytes]) -> None:
    from infra.applications import Scope
    from tests.common.worker import WorkerThread
    from tests.integration.test_reviews import persona_id
    from tests.integration.test_reviews import to_risk

    upstream = urlsplit(risk_server.url)
    with HoldProxy(str(upstream.hostname), int(upstream.port or 80), trigger=b"POST /api/v1/assessments") as proxy:
        # the web side (and its KYC jobs) in the test; the risk jobs in worker processes, through the proxy
        app = build_app(faults_db, **s3_config(s3_server), risk_url=proxy.url)
        repo = app.extensions["leaseline"].applications.repo
        settings = {"risk_url": proxy.url, "s3_endpoint_url": s3_server.endpoint_url,
                    "s3_access_key": s3_server.access_key, "s3_secret_key": s3_server.secret_key}
        try:
            with WorkerThread(app, queues=["kyc"]), LiveServer(app) as bff:
                with WorkerProcess(faults_db, queues="risk", **settings) as first:
                    app_id = to_risk(bff.url, card_images, persona_id("01", "3"))
                    _wait(proxy.held.is_set, 60, "the risk request sent", first)
                    first.process.kill()  # SIGKILL while it waits for the answer the risk service gave
                    first.process.wait(10)
                assert repo.get(app_id, Scope()).status == "risk_pending"
                with WorkerProcess(faults_db, queues="risk,housekeeping", **settings) as second:
                    _wait(lambda: repo.get(app_id, Scope()).status != "risk_pending", 90,
                          "the application decided after the restart", second)
                    assert second.stop() == 0
            decided = [e for e in repo.events(app_id) if e.from_status == "risk_pending"]
            assert len(decided) == 1, decided  # decided once
            assert proxy.requests >= 2  # the lost request and the one the new worker sent
            with risk_server.app.extensions["risk"].db.session() as session:
                assessments = session.execute(text("SELECT id FROM risk_assessments WHERE application_id = :a"),
                                              {"a": app_id}).scalars().all()
            assert len(assessments) == 1 and repo.get(app_id, Scope()).risk_assessment_id == assessments[0]
        finally:
            app.extensions["leaseline"].db.dispose()


@pytest.fixture(scope="module")
def card_images() -> tuple[bytes, bytes]:
    from tests.integration.test_applications import make_card_images

    return make_card_images()


def test_the_database_going_away_under_a_worker_loses_no_job(faults_db: str) -> None:
    """PostgreSQL restarted (here: every connection cut, new ones refused for a few seconds, then back) while a
    worker runs: the worker keeps running or its supervisor's restart finds every job still there; the jobs
    deferred before and after all run, each once."""
    from sqlalchemy.engine import make_url

    from infra.db import Database
    from infra.jobs import JobQueue
    from tests.common.cut import CuttableProxy

    direct = make_url(faults_db)
    db = Database(faults_db)
    queue = JobQueue(db)
    with CuttableProxy(str(direct.host), int(direct.port or 5432)) as proxy:
        through = direct.set(port=proxy.port).render_as_string(hide_password=False)
        try:
            with WorkerProcess(through, queues="risk,housekeeping") as worker:
                before = [queue.defer("risk.send", {"application_id": f"before-{n}"}, queue="risk") for n in range(20)]

                def finished(ids: list[int | None]) -> bool:
                    with db.session() as session:
                        done = session.execute(text("SELECT count(*) FROM procrastinate_jobs WHERE id = ANY(:i) "
                                                    "AND status = 'succeeded'"), {"i": ids}).scalar_one()
                    return int(done) == len(ids)

                _wait(lambda: finished(before), 60, "the first jobs done", worker)
                proxy.cut()
                time.sleep(3)
                during = [queue.defer("risk.send", {"application_id": f"during-{n}"}, queue="risk") for n in range(20)]
                proxy.restore()
                deadline = time.monotonic() + 90
                while not finished(during) and time.monotonic() < deadline:
                    if worker.process.poll() is not None:  # it gave up: a supervisor starts it again
                        break
                    time.sleep(0.5)
                exited = worker.process.poll()
                if exited is None:
                    _wait(lambda: finished(during), 90, "the jobs deferred during the outage done", worker)
            if exited is not None:
                assert exited != 0, "a worker that lost its database must not exit as if all went well"
                with WorkerProcess(through, queues="risk,housekeeping") as again:
                    _wait(lambda: finished(during), 90, "the jobs done after the restart", again)
            with db.session() as session:
                runs = session.execute(text(
                    "SELECT count(*) FROM procrastinate_events WHERE job_id = ANY(:i) AND type = 'started'"),
                    {"i": before + during}).scalar_one()
            assert runs == 40
        finally:
            db.dispose()
