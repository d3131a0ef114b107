"""The contract service over real HTTP for the tests: its own database, SeaweedFS, a local TSA, real tokens."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests
from cryptography.hazmat.primitives import serialization

from tests.common.risk import Tokens

AUDIENCE = "leaseline-contract"


class ContractServer:
    """The contract service on 127.0.0.1 and a free port (werkzeug, threaded), B-T signatures from ``tsa``, and its
    worker in a thread (``worker=False``: none, so no job runs)."""

    def __init__(self, database_url: str, var_dir: Path, s3: Any, tsa: Any, *, worker: bool = True,
                 **config: Any) -> None:
        from contract.app import create_app
        from tests.common.worker import ContractWorkerThread
        from tests.conftest import LiveServer

        self.key_path = var_dir / "service_signing_key.pem"
        roots = var_dir / f"tsa-roots-{uuid.uuid4().hex[:6]}.pem"
        roots.write_bytes(tsa.root_certificate.public_bytes(serialization.Encoding.PEM))
        self.app = create_app({
            "database_url": database_url, "env": "test", "signing_key_path": str(self.key_path),
            "signing_dir": str(var_dir / "signing"), "ledger_key_path": str(var_dir / "ledger_signing_key.pem"),
            "s3_endpoint_url": s3.endpoint_url, "s3_access_key": s3.access_key, "s3_secret_key": s3.secret_key,
            "bucket": f"contracts-{uuid.uuid4().hex[:8]}", "tsa_url": tsa.url, "tsa_roots": str(roots), **config})
        self.tokens = Tokens(self.key_path)
        self.components = self.app.extensions["contract"]
        self._live = LiveServer(self.app)
        self.url = self._live.url
        self.worker = ContractWorkerThread(self.components) if worker else None

    def headers(self, *scopes: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.make(scopes or ('contract:write',), audience=AUDIENCE)}"}

    def env(self, **overrides: str) -> dict[str, str]:
        """Its settings as the environment of another process of the same service (a ``leaseline worker
        --service contract``); ``overrides`` by setting name, e.g. ``s3_endpoint_url``."""
        settings = {**self.components.settings.__dict__, **overrides}
        names = {"database_url": "CONTRACT_DATABASE_URL", "signing_key_path": "SERVICE_SIGNING_KEY_PATH",
                 "signing_dir": "SIGNING_DIR", "ledger_key_path": "LEDGER_SIGNING_KEY_PATH",
                 "s3_endpoint_url": "S3_ENDPOINT_URL", "s3_access_key": "S3_ACCESS_KEY",
                 "s3_secret_key": "S3_SECRET_KEY", "bucket": "CONTRACT_BUCKET", "tsa_url": "TSA_URL",
                 "tsa_roots": "TSA_ROOTS"}
        return {**os.environ, "LEASELINE_ENV": "test",
                **{f"LEASELINE_{env}": str(settings[name]) for name, env in names.items()}}

    def __enter__(self) -> ContractServer:
        self._live.__enter__()
        if self.worker is not None:
            self.worker.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.worker is not None:
            self.worker.stop()
        self._live.__exit__(*exc)
        self.components.dispose()


class ContractProcess:
    """The contract service as its own process, as in production: ``leaseline serve contract`` (gunicorn, two
    workers) on a free port, configured through its environment variables, and its worker (``leaseline worker
    --service contract``) in another.

    The suite's shared contract service runs this way: rendering and signing are CPU-bound Python, and in the
    test process they would hold the interpreter lock the BFF, the risk service and the tests need."""

    def __init__(self, database_url: str, var_dir: Path, s3: Any, tsa: Any) -> None:
        self.key_path = var_dir / "service_signing_key.pem"
        roots = var_dir / f"tsa-roots-{uuid.uuid4().hex[:6]}.pem"
        roots.write_bytes(tsa.root_certificate.public_bytes(serialization.Encoding.PEM))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = var_dir / f"contract-service-{self.port}.log"
        self.env = {**os.environ, "LEASELINE_ENV": "test", "LEASELINE_VAR_DIR": str(var_dir),
                    "LEASELINE_CONTRACT_DATABASE_URL": database_url,
                    "LEASELINE_SERVICE_SIGNING_KEY_PATH": str(self.key_path),
                    "LEASELINE_SIGNING_DIR": str(var_dir / "signing"),
                    "LEASELINE_LEDGER_SIGNING_KEY_PATH": str(var_dir / "ledger_signing_key.pem"),
                    "LEASELINE_S3_ENDPOINT_URL": s3.endpoint_url, "LEASELINE_S3_ACCESS_KEY": s3.access_key,
                    "LEASELINE_S3_SECRET_KEY": s3.secret_key,
                    "LEASELINE_CONTRACT_BUCKET": f"contracts-{uuid.uuid4().hex[:8]}",
                    "LEASELINE_TSA_URL": tsa.url, "LEASELINE_TSA_ROOTS": str(roots)}
        self.tokens = Tokens(self.key_path)
        self._process: subprocess.Popen[bytes] | None = None
        self._worker: subprocess.Popen[bytes] | None = None

    def headers(self, *scopes: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens.make(scopes or ('contract:write',), audience=AUDIENCE)}"}

    def __enter__(self) -> ContractProcess:
        from infra.service_tokens import load_or_create_signing_key

        load_or_create_signing_key(self.key_path)  # made once here, not raced by the two workers
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "leaseline", "serve", "contract", "--port", str(self.port), "--workers", "2"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2])
        deadline = time.monotonic() + 90  # two workers warm up WeasyPrint and the fonts
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"the contract service exited: {self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/api/v1/ledger/checkpoint", timeout=2).status_code == 200:
                    self._start_worker()
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.3)
        self.__exit__()
        raise RuntimeError(f"the contract service did not start: {self.log_path.read_text()[-3000:]}")

    def _start_worker(self) -> None:
        """Its worker, once the service has migrated its database (the worker never migrates)."""
        with (self.log_path.parent / f"contract-worker-{self.port}.log").open("wb") as log:
            self._worker = subprocess.Popen(
                [sys.executable, "-m", "leaseline", "worker", "--service", "contract"],
                env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2])

    def __exit__(self, *exc: object) -> None:
        for process in (self._worker, self._process):
            if process is not None and process.poll() is None:
                process.terminate()
                try:
                    process.wait(15)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(5)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
