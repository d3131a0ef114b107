"""The evidence log anchored to a third party (issue 16 §7): each new checkpoint carries an RFC 3161 token from
the time-stamping authority over SHA-256 of its signed bytes. The contract service over real HTTP, its own
database, its real worker (procrastinate) and the local TSA (tests/common/tsa.py), which is down at first: the log
goes on unanchored, the ``ledger.anchor`` job fails visibly, then anchors once the TSA is back, and again adds
nothing. Tokens are checked by our verifier (contract/ledger/timestamps.py) and by ``openssl ts -verify``."""

from __future__ import annotations

import base64
import json
import logging
import shutil
import subprocess
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import func
from sqlalchemy import select

from contract.db.models import CheckpointRow
from contract.db.models import CheckpointTimestampRow
from contract.evidence import AnchorFailed
from contract.ledger import SignedCheckpoint
from contract.ledger.bundle import Bundle
from contract.ledger.bundle import verify_bundle
from contract.ledger.timestamps import AnchoredCheckpoint
from contract.ledger.timestamps import message_imprint
from contract.ledger.timestamps import verify_timestamp
from contract.service import QUEUE
from leaseline.cli import main
from tests.common.contract import ContractServer
from tests.common.contract import free_port
from tests.common.risk import risk_database
from tests.common.tsa import TsaServer
from tests.common.worker import ContractWorkerThread

pytestmark = pytest.mark.db
TIMEOUT = 30


@pytest.fixture(scope="module")
def tsa() -> TsaServer:
    """The service's TSA, its port known but nothing listening yet: a TSA that is down."""
    return TsaServer(port=free_port())


@pytest.fixture(scope="module")
def contracts(tmp_path_factory: pytest.TempPathFactory, s3_server: Any, tsa: TsaServer) -> Iterator[ContractServer]:
    var = tmp_path_factory.mktemp("contract-anchoring")
    with risk_database(var) as url, ContractServer(url, var, s3_server, tsa, worker=False) as server:
        yield server


def append(server: ContractServer, subject: str) -> dict[str, Any]:
    r = requests.post(f"{server.url}/api/v1/ledger/entries", headers=server.headers("ledger:append"),
                      json={"kind": "payment", "subject": subject, "data": {"amount": "1.00"}}, timeout=TIMEOUT)
    assert r.status_code == 201, r.text[:300]
    return dict(r.json())


def published(server: ContractServer) -> AnchoredCheckpoint:
    r = requests.get(f"{server.url}/api/v1/ledger/checkpoint", timeout=TIMEOUT)
    assert r.status_code == 200
    return AnchoredCheckpoint.from_json(r.json())


def run_anchor_job(server: ContractServer, worker: ContractWorkerThread) -> Any:
    """Defer ``ledger.anchor`` now (as its schedule does, with its queueing lock) and wait for the worker to end it."""
    jobs = server.components.service.jobs
    deadline = time.monotonic() + 60
    # None: the schedule's own run waits already (its queueing lock); once it has ended, ours goes in
    while (job_id := jobs.defer("ledger.anchor", {"timestamp": 0}, queue=QUEUE, lock="ledger.anchor",
                                queueing_lock="ledger.anchor")) is None:
        assert time.monotonic() < deadline, "a ledger.anchor run never ended"
        time.sleep(0.1)
    while (job := jobs.job(job_id)) is None or job.state not in ("succeeded", "failed"):
        assert time.monotonic() < deadline, f"ledger.anchor still {job.state if job else 'missing'}"
        time.sleep(0.1)
    return job


def stamps(server: ContractServer) -> dict[int, bytes]:
    with server.components.db.session() as session:
        return {row.tree_size: bytes(row.token) for row in session.scalars(select(CheckpointTimestampRow))}


def openssl_verifies(signed: SignedCheckpoint, token: bytes, root: Any, folder: Path) -> bool:
    """An independent check: OpenSSL's own RFC 3161 verifier (imprint, signature, chain, timeStamping EKU)."""
    (folder / "token.der").write_bytes(token)
    (folder / "root.pem").write_bytes(root.public_bytes(serialization.Encoding.PEM))
    done = subprocess.run(["openssl", "ts", "-verify", "-token_in", "-in", str(folder / "token.der"), "-digest",
                           message_imprint(signed).hex(), "-sha256", "-CAfile", str(folder / "root.pem")],
                          capture_output=True, text=True, timeout=30, check=False)
    return done.returncode == 0 and "Verification: OK" in done.stdout


def test_with_the_tsa_down_the_log_goes_on_and_the_anchor_job_anchors_once_it_is_back(
        contracts: ContractServer, tsa: TsaServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    appended = append(contracts, "app-down-1")  # answered at once: the stamp failed at start-up, paused since
    assert appended["checkpoint"]["anchored"] is False and appended["checkpoint"]["anchor"] is None
    down = published(contracts)
    assert down.anchor is None and down.signed.checkpoint.tree_size == appended["index"] + 1
    assert stamps(contracts) == {}
    with pytest.raises(AnchorFailed, match="time-stamping authority"):
        contracts.components.ledger.anchor_pending()

    with ContractWorkerThread(contracts.components) as worker:
        failed = run_anchor_job(contracts, worker)
        assert failed.state == "failed" and "time-stamping authority" in failed.last_error  # visible to ops
        assert any("ledger.anchor" in r.getMessage() and "failed" in r.getMessage() for r in caplog.records)
        assert published(contracts).anchor is None

        with tsa:  # the TSA is back
            done = run_anchor_job(contracts, worker)
            assert done.state == "succeeded", done.last_error
            anchored = published(contracts)
            assert anchored.signed == down.signed and anchored.anchor is not None
            kept = stamps(contracts)
            assert anchored.signed.checkpoint.tree_size in kept and len(kept) >= 2  # the start's checkpoint too
            assert verify_timestamp(anchored.signed, anchored.anchor.token, [tsa.root_certificate]) == []

            again = run_anchor_job(contracts, worker)
            assert again.state == "succeeded" and stamps(contracts) == kept  # nothing added, nothing replaced
            assert contracts.components.ledger.anchor_pending() == 0


def test_a_new_checkpoint_carries_a_token_that_verifies_and_fits_only_it(contracts: ContractServer, tsa: TsaServer,
                                                                         tmp_path: Path) -> None:
    with tsa:
        before = published(contracts)
        appended = append(contracts, "app-up-1")
    checkpoint = AnchoredCheckpoint.from_json(appended["checkpoint"])
    assert checkpoint.anchor is not None, "stamped while it was signed"
    assert checkpoint.signed.checkpoint.tree_size == before.signed.checkpoint.tree_size + 1
    assert published(contracts) == checkpoint
    signed, token = checkpoint.signed, checkpoint.anchor.token
    assert verify_timestamp(signed, token, [tsa.root_certificate]) == []
    assert abs(checkpoint.anchor.gen_time - signed.checkpoint.timestamp) < timedelta(seconds=30)
    assert checkpoint.to_json()["anchor"]["token"] == base64.b64encode(token).decode()
    # another checkpoint's token does not anchor this one, nor this token another; another TSA's roots refuse it
    assert before.anchor is not None
    assert "message imprint" in " ".join(verify_timestamp(signed, before.anchor.token, [tsa.root_certificate]))
    assert "message imprint" in " ".join(verify_timestamp(before.signed, token, [tsa.root_certificate]))
    assert "trusted TSA roots" in " ".join(verify_timestamp(signed, token, [TsaServer().root_certificate]))
    if shutil.which("openssl"):
        assert openssl_verifies(signed, token, tsa.root_certificate, tmp_path)
        assert not openssl_verifies(before.signed, token, tsa.root_certificate, tmp_path)

    # the entry's proof bundle carries the same anchored checkpoint, and the bundle verifier checks its token
    r = requests.get(f"{contracts.url}/api/v1/ledger/openings/{appended['index']}",
                     headers=contracts.headers("ledger:read"), timeout=TIMEOUT)
    assert r.status_code == 200, r.text[:300]
    bundle = Bundle.from_json(r.json()["bundle"])
    assert bundle.anchor == checkpoint.anchor
    key = Ed25519PublicKey.from_public_bytes(signed.public_key)
    assert verify_bundle(bundle, key, [tsa.root_certificate]) == []
    assert verify_bundle(Bundle(bundle.opening, bundle.leaf, bundle.proof, None, before.anchor), key,
                         [tsa.root_certificate])
    # and so does `leaseline ledger check-bundle --tsa-roots`, offline
    (tmp_path / "bundle.json").write_text(json.dumps(r.json()["bundle"]), encoding="utf-8")
    (tmp_path / "tsa.pem").write_bytes(tsa.root_certificate.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "other.pem").write_bytes(TsaServer().root_certificate.public_bytes(serialization.Encoding.PEM))
    args = ["ledger", "check-bundle", str(tmp_path / "bundle.json"), "--public-key",
            base64.b64encode(signed.public_key).decode()]
    checked = CliRunner().invoke(main, [*args, "--tsa-roots", str(tmp_path / "tsa.pem")])
    assert checked.exit_code == 0 and "time-stamped" in checked.output, checked.output
    refused = CliRunner().invoke(main, [*args, "--tsa-roots", str(tmp_path / "other.pem")])
    assert refused.exit_code != 0 and "trusted TSA roots" in refused.output, refused.output


def test_the_anchor_job_is_a_periodic_sweep_with_its_queueing_lock(contracts: ContractServer) -> None:
    from contract.worker import build

    app = build(contracts.components)
    task = app.tasks["ledger.anchor"]
    assert task.queueing_lock == "ledger.anchor" and task.lock == "ledger.anchor" and task.queue == QUEUE
    assert any(p.task is task for p in app.periodic_registry.periodic_tasks.values())
    with contracts.components.db.session() as session:  # every checkpoint of the log was anchored above
        assert session.scalar(select(func.count()).select_from(CheckpointTimestampRow)) == session.scalar(
            select(func.count()).select_from(CheckpointRow))
