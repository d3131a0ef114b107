"""The job queue under faults, with real ``leaseline worker`` processes (as two machines would run them):

* two workers racing over 500 due jobs: each job run once, by one of them, and both took some;
* a worker killed (SIGKILL) in the middle of a risk request whose answer it never heard: a new worker finds the
  job stalled (no heartbeat), runs it again, and the application is decided once, on the one assessment the risk
  service holds for it (the same application id gives back the same assessment);
* the same for a contract request (one contract in the contract service), for the evidence log's flush (each
  entry once in the log) and for the contract service's own job (the final text rendered ahead, stored once);
* SIGTERM: a worker finishes what it runs and exits 0.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from sqlalchemy import text

from infra.applications import Scope
from tests.common.hold import HoldProxy
from tests.conftest import LiveServer
from tests.conftest import build_app
from tests.conftest import postgres_database
from tests.conftest import s3_config
from tests.conftest import stripe_config

pytestmark = pytest.mark.db
STALLED_SECONDS = 3


class WorkerProcess:
    """``leaseline worker`` in a process of its own, on the BFF database ``url`` (or, with ``service="contract"``,
    on the contract service whose environment ``env`` gives)."""

    def __init__(self, url: str, *, queues: str, concurrency: int = 4, service: str = "bff",
                 env: dict[str, str] | None = None, **settings: str) -> None:
        env = {**(env or os.environ), "LEASELINE_ENV": "test", "LEASELINE_JOBS_TICK_SECONDS": "1",
               "LEASELINE_JOBS_STALLED_SECONDS": str(STALLED_SECONDS),
               **({"LEASELINE_DATABASE_URL": url} if service == "bff" else {}),
               **{f"LEASELINE_{k.upper()}": v for k, v in settings.items()}}
        self.log = Path(os.environ.get("LEASELINE_VAR_DIR", ".")) / f"worker-{time.monotonic_ns()}.log"
        self._out = self.log.open("wb")
        self.process = subprocess.Popen([sys.executable, "-m", "leaseline", "worker", "--service", service,
                                         "--queues", queues, "--concurrency", str(concurrency)], env=env,
                                        stdout=self._out, stderr=subprocess.STDOUT)

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


@pytest.fixture()
def own_db() -> Iterator[str]:
    """A database of its own: no other test's job waits on the queues the test's workers take."""
    from infra.db.migrate import upgrade

    for url in postgres_database("leaseline_faults_own"):
        upgrade(url)
        yield url


def test_workers_killed_mid_contract_request_and_mid_evidence_flush_leave_one_of_each(
        own_db: str, s3_server: Any, risk_server: Any, contract_server: Any,
        card_images: tuple[bytes, bytes]) -> None:
    """The contract service does what it is asked and the worker never hears it: the contract is made, the
    evidence appended. The job runs again on a new worker and finds them (the contract per application, each
    entry per its idempotency key): one contract, each entry once, the outbox emptied."""
    from infra.applications import Scope
    from tests.common.worker import WorkerThread
    from tests.integration.test_reviews import persona_id
    from tests.integration.test_reviews import to_risk

    faults_db = own_db
    upstream = urlsplit(contract_server.url)
    host, port = str(upstream.hostname), int(upstream.port or 80)
    s3 = {"s3_endpoint_url": s3_server.endpoint_url, "s3_access_key": s3_server.access_key,
          "s3_secret_key": s3_server.secret_key}
    app = build_app(faults_db, **s3_config(s3_server), risk_url=risk_server.url, contract_url=contract_server.url)
    svc = app.extensions["leaseline"]
    repo = svc.applications.repo
    try:
        with (HoldProxy(host, port, trigger=b"POST /api/v1/contracts ") as contracts,
              HoldProxy(host, port, trigger=b"POST /api/v1/ledger/batches ") as ledger,
              WorkerThread(app, queues=["kyc", "risk"]), LiveServer(app) as bff):
            # -- a contract request whose answer is lost ----------------------------------------------------
            via_contracts = {**s3, "risk_url": risk_server.url, "contract_url": contracts.url}
            with WorkerProcess(faults_db, queues="contract", **via_contracts) as first:
                app_id = to_risk(bff.url, card_images, persona_id("10"))  # a clean file: approved automatically
                _wait(contracts.held.is_set, 90, "the contract requested", first)
                first.process.kill()
                first.process.wait(10)
            assert repo.get(app_id, Scope()).status == "contract_pending"
            with WorkerProcess(faults_db, queues="contract,housekeeping", **via_contracts) as second:
                _wait(lambda: repo.get(app_id, Scope()).status == "contract_ready", 90,
                      "the contract recorded after the restart", second)
                assert second.stop() == 0
            assert contracts.requests >= 2
            with contract_server_db(contract_server) as session:
                made = session.execute(text("SELECT id FROM contract_contracts WHERE application_id = :a"),
                                       {"a": app_id}).scalars().all()
            assert len(made) == 1 and repo.get(app_id, Scope()).contract_id == made[0]

            # -- an evidence batch whose answer is lost ------------------------------------------------------
            keys = [e.key for e in repo.outbox_due(_now()) if e.application_id == app_id]
            assert keys, "the contract request queued the application's evidence"
            via_ledger = {**s3, "risk_url": risk_server.url, "contract_url": ledger.url}
            with WorkerProcess(faults_db, queues="evidence", **via_ledger) as first:
                _wait(ledger.held.is_set, 60, "the evidence sent", first)
                first.process.kill()
                first.process.wait(10)
            with WorkerProcess(faults_db, queues="evidence,housekeeping", **via_ledger) as second:
                _wait(lambda: not [e for e in repo.outbox_due(_now() + timedelta(days=1))
                                   if e.application_id == app_id], 90, "the outbox emptied after the restart", second)
                assert second.stop() == 0
            assert ledger.requests >= 2
            with contract_server_db(contract_server) as session:
                logged = dict(session.execute(text(
                    "SELECT idempotency_key, count(*) FROM contract_evidence_openings WHERE idempotency_key = ANY(:k) "
                    "GROUP BY idempotency_key"), {"k": keys}).all())
            assert logged == {key: 1 for key in keys}
    finally:
        svc.db.dispose()


def test_a_worker_killed_mid_settlement_refund_leaves_one_refund_at_stripe(own_db: str, stripe_server: Any) -> None:
    """A closed lease's settlement refunds the deposit less the deduction; the worker is killed after Stripe made
    the refund and before it heard so. The refund stays ``pending`` (its amount reserved); the next worker looks
    at Stripe before sending it again, finds the refund carrying our refund id, records it, and settles the lease:
    one refund at Stripe (localstripe keeps no idempotency keys, and Stripe prunes them after 24 hours), one
    evidence entry."""
    from bff.payments.settlement import settlement_refund_id
    from tests.integration.test_payment_settlement import DEPOSIT
    from tests.integration.test_payment_settlement import OPS
    from tests.integration.test_payment_settlement import delivered_lease
    from tests.integration.test_payment_settlement import outbox_kinds
    from tests.integration.test_payment_settlement import staff_actor
    from tests.integration.test_payment_settlement import stripe_refunds
    from tests.integration.test_payment_settlement import term_ended

    app = build_app(own_db, **stripe_config(stripe_server))
    svc = app.extensions["leaseline"]
    upstream = urlsplit(stripe_server.api_base)
    try:
        with (LiveServer(app) as bff,
              # localstripe refuses a refund's ``reason`` (400) and the gateway sends it again without: the second
              # request is the one that makes the refund
              HoldProxy(str(upstream.hostname), int(upstream.port or 80), trigger=b"POST /v1/refunds ", nth=2)
              as proxy):
            app_id = delivered_lease(bff, DEPOSIT)
            term_ended(app, app_id)
            deposit = {p.kind: p for p in svc.payments.store.for_application(app_id)}["deposit"]
            svc.payments.settlement.close(staff_actor(app, OPS), svc.applications.repo.get(app_id, Scope()), 10_000,
                                          "划痕修复")
            stripe = {"stripe_api_base": proxy.url, "stripe_secret_key": stripe_server.secret_key,
                      "stripe_webhook_secret": stripe_server.webhook_secret,
                      "payments_stale_seconds": "3", "refund_retry_seconds": "3"}
            with WorkerProcess(own_db, queues="payments", **stripe) as first:
                _wait(proxy.held.is_set, 60, "the deposit refund sent", first)
                first.process.kill()
                first.process.wait(10)
            refund = svc.payments.store.refund(settlement_refund_id(app_id))
            assert refund is not None and refund.status == "pending"
            with WorkerProcess(own_db, queues="payments,housekeeping", **stripe) as second:
                _wait(lambda: svc.payments.store.term(app_id).settlement == "settled", 90,
                      "the lease settled after the restart", second)
                assert second.stop() == 0
            assert proxy.requests == 2  # looked up, not sent again
        expected = deposit.amount - 10_000
        assert stripe_refunds(stripe_server, str(deposit.intent_id)) == [expected]
        done = svc.payments.store.refund(settlement_refund_id(app_id))
        assert done is not None and done.status == "succeeded" and done.amount == expected
        assert svc.payments.store.term(app_id).refunded == expected
        assert outbox_kinds(app, app_id).count("refund") == 1
    finally:
        svc.db.dispose()


def test_a_worker_killed_mid_dealer_transfer_sends_it_again_under_its_key_once(own_db: str,
                                                                             stripe_server: Any) -> None:
    """The dealer's share of a captured down payment: the worker is killed after Stripe made the transfer and before
    it heard so; the share stays ``sending``. Past the stale limit a new worker sends it again with the same
    Idempotency-Key (Stripe answers with the transfer it made: one transfer) and records it sent once, with one
    evidence entry. Stripe Connect is absent from localstripe: the transfers reach a fake answering with the
    Transfer object of Stripe's API reference, behind the proxy that loses the first answer."""
    from tests.common.stripe import fake_stripe
    from tests.integration.test_payment_settlement import DEPOSIT
    from tests.integration.test_payment_settlement import paid_lease
    from tests.integration.test_stripe_gateway import TRANSFER_FIXTURE

    app = build_app(own_db, **stripe_config(stripe_server))
    svc = app.extensions["leaseline"]
    account = "acct_1MTfjCQ9PRzxEwkZ"
    connect = fake_stripe()
    fake, url = next(connect)
    upstream = urlsplit(url)
    try:
        app_id = paid_lease(app, DEPOSIT)
        upfront = {p.kind: p for p in svc.payments.store.for_application(app_id)}["upfront"]
        assert upfront.transfer_status == "due" and upfront.dealer_share > 0
        dealer = svc.accounts.dealer(upfront.dealer_id)
        svc.accounts.set_dealer_details(dealer.id, dealer.credit_code or "", dealer.address or "", account)
        fake.answers[("POST", "/v1/transfers")] = (200, {**TRANSFER_FIXTURE, "amount": upfront.dealer_share})
        with HoldProxy(str(upstream.hostname), int(upstream.port or 80), trigger=b"POST /v1/transfers ") as proxy:
            stripe = {"stripe_api_base": proxy.url, "stripe_secret_key": "sk_test_fake_0123456789",
                      "stripe_webhook_secret": stripe_server.webhook_secret, "payments_stale_seconds": "3"}
            with WorkerProcess(own_db, queues="payments", **stripe) as first:
                _wait(proxy.held.is_set, 60, "the transfer sent", first)
                first.process.kill()
                first.process.wait(10)
            sending = svc.payments.store.get(upfront.id)
            assert sending is not None and sending.transfer_status == "sending"
            with WorkerProcess(own_db, queues="payments,housekeeping", **stripe) as second:
                _wait(lambda: getattr(svc.payments.store.get(upfront.id), "transfer_status", "") == "sent", 90,
                      "the transfer recorded after the restart", second)
                assert second.stop() == 0
        sent = [r for r in fake.requests if r.path == "/v1/transfers"]
        assert len(sent) == 2 and {r.headers["Idempotency-Key"] for r in sent} == {f"transfer:{upfront.id}"}
        assert {r.form["amount"] for r in sent} == {str(upfront.dealer_share)}
        done = svc.payments.store.get(upfront.id)
        assert done is not None and done.transfer_id == TRANSFER_FIXTURE["id"]
        with svc.db.session() as session:
            entries = session.execute(text("SELECT count(*) FROM evidence_outbox WHERE key = :k"),
                                      {"k": f"transfer:{upfront.id}"}).scalar_one()
        assert entries == 1
    finally:
        next(connect, None)
        svc.db.dispose()


@pytest.fixture()
def contract_db() -> Iterator[str]:
    """An empty database for a contract service of the test's own (it migrates it when it starts)."""
    yield from postgres_database("leaseline_contract_faults")


def test_the_contract_service_s_worker_killed_mid_job_stores_the_final_text_once(
        tmp_path_factory: pytest.TempPathFactory, s3_server: Any, contract_db: str) -> None:
    """The contract service's own job (the final text rendered ahead of signing): its worker is killed after the
    text reached storage and before it heard so. A new worker renders it again (the same bytes: rendering is
    deterministic) and records it once; the contract then signs that text."""
    from contract.db.models import ContractRow
    from tests.common.contract import ContractServer
    from tests.common.tsa import TsaServer
    from tests.integration.test_contract_service import create
    from tests.integration.test_contract_service import sign_body

    var = tmp_path_factory.mktemp("contract-faults")
    storage = urlsplit(s3_server.endpoint_url)
    url = contract_db
    with (TsaServer() as tsa, ContractServer(url, var, s3_server, tsa, worker=False) as server,
          HoldProxy(str(storage.hostname), int(storage.port or 80), trigger=b"/final-unsigned.pdf") as proxy):
        made = create(server, "app-killed-render")
        env = server.env(s3_endpoint_url=proxy.url)

        def row() -> ContractRow:
            with server.components.db.session() as session:
                found = session.get(ContractRow, made["id"])
                assert found is not None
                session.expunge(found)
                return found

        with WorkerProcess(url, queues="documents", service="contract", env=env) as first:
            _wait(proxy.held.is_set, 60, "the final text stored", first)
            first.process.kill()
            first.process.wait(10)
        assert row().final_key is None
        with WorkerProcess(url, queues="documents", service="contract", env=env) as second:
            _wait(lambda: row().final_key is not None, 90, "the final text recorded after the restart", second)
            assert second.stop() == 0
        assert proxy.requests >= 2
        final = row()
        stored = server.components.service.store.get(str(final.final_key))
        assert hashlib.sha256(stored).hexdigest() == final.final_sha256
        with server.components.db.session() as session:
            runs = session.execute(text("SELECT count(*) FROM procrastinate_events e JOIN procrastinate_jobs j "
                                        "ON j.id = e.job_id WHERE j.task_name = 'contract.prepare_final' "
                                        "AND e.type = 'started'")).scalar_one()
        assert runs == 2  # the killed run and the one after it
        listed = subprocess.run([sys.executable, "-m", "leaseline", "jobs", "--service", "contract", "list",
                                 "--json"], env=server.env(), capture_output=True, text=True, timeout=60)
        assert listed.returncode == 0, listed.stderr
        [job] = [j for j in json.loads(listed.stdout)["jobs"] if j["task"] == "contract.prepare_final"]
        assert job["state"] == "succeeded" and job["queue"] == "documents" and job["attempts"] == 2  # run twice
        r = requests.post(f"{server.url}/api/v1/contracts/{made['id']}/signatures", json=sign_body(),
                          headers=server.headers(), timeout=60)
        assert r.status_code == 200, r.text[:500]


def _now() -> datetime:
    return datetime.now(UTC)


@contextmanager
def contract_server_db(server: Any) -> Iterator[Any]:
    """A session on the contract service's own database (the suite's runs in a process of its own)."""
    from infra.db import Database

    db = Database(server.env["LEASELINE_CONTRACT_DATABASE_URL"])
    try:
        with db.session() as session:
            yield session
    finally:
        db.dispose()


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
