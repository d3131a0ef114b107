"""The first evidence log (clear entries, public until migration 0003) is frozen, never rewritten, and continued by
the commitment log: its first leaf is a signed statement naming the old log's final checkpoint, and every old
entry is committed again, in order, so it stays provable (in both logs) to those given its bundle. Starting
twice, or in two processes at once, changes nothing; ``leaseline ledger verify`` checks both logs."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import create_engine
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update

from contract.db.migrate import upgrade
from contract.db.models import ContractRow
from contract.db.models import LegacyCheckpointRow
from contract.db.models import LegacyEntryRow
from contract.db.models import SignatureRow
from contract.evidence import EvidenceLog
from contract.evidence import load_or_create_key
from contract.ledger import Checkpoint
from contract.ledger import MerkleTree
from contract.ledger import encode_entry
from contract.ledger import leaf_hash
from contract.ledger import sign
from contract.ledger.commitments import leaf_commitment
from contract.ledger.commitments import read_log_start
from infra.db.engine import Database
from tests.common import evidence
from tests.conftest import DATABASES

pytestmark = pytest.mark.db
ORIGIN = "leaseline.test/evidence"
AT = datetime(2026, 11, 30, 2, 0, tzinfo=UTC)
#: what the contract service logged before 0003 (kind, subject, data, idempotency key)
OLD = [
    ("consent_given", "app-old-1", {"purpose": "sensitive_pi", "text_sha256": "ab" * 32}, "app-old-1:consent:pi"),
    ("risk_decision", "app-old-1", {"outcome": "approve", "pd": "0.156281", "reasons": ["AUTO_APPROVE"]},
     "app-old-1:risk:r1"),
    ("contract_signed", "app-old-1", {"contract_id": "c" * 32, "number": "LL20261130ABCDEF", "sha256": "cd" * 32},
     "contract_signed:" + "c" * 32),
    ("payment", "app-old-1", {"amount": "27960.00", "stripe_intent": "pi_old_1"}, "payment:p1:succeeded:1"),
    ("risk_decision", "app-old-2", {"outcome": "decline", "pd": "0.61", "reasons": ["DELINQUENT"]}, None),
]


@pytest.fixture(params=DATABASES)
def url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'contract.db'}"
        return
    from tests.conftest import postgres_database

    yield from postgres_database("leaseline_evm")


def write_first_log(url: str, key_path: Path) -> tuple[list[bytes], bytes]:
    """The database as the contract service left it at revision 0002: the clear entries, a signed checkpoint
    after each append (as it signed them), and a signed contract whose signature rows name the old index."""
    upgrade(url, "0002")
    key = load_or_create_key(key_path)
    engine = create_engine(url)
    tree, raws = MerkleTree(), []
    with engine.begin() as conn:
        for i, (kind, subject, data, idem) in enumerate(OLD):
            at = AT + timedelta(minutes=i)
            raw = encode_entry(kind, subject, data, at)
            raws.append(raw)
            tree.append(leaf_hash(raw))
            conn.execute(insert(LegacyEntryRow), {"idx": i, "entry": raw, "leaf_hash": leaf_hash(raw), "kind": kind,
                                                  "subject": subject, "idempotency_key": idem, "created_at": at})
            cp = sign(Checkpoint(ORIGIN, i + 1, tree.root(), at), key)
            conn.execute(insert(LegacyCheckpointRow), {
                "tree_size": i + 1, "root_hash": cp.checkpoint.root_hash, "timestamp": at, "origin": ORIGIN,
                "signature": cp.signature, "public_key": cp.public_key})
        conn.execute(insert(ContractRow), {
            "id": "c" * 32, "number": "LL20261130ABCDEF", "application_id": "app-old-1", "dealer_id": "d",
            "status": "signed", "snapshot_enc": "x", "lessee_masked": "王*", "draft_key": "k", "draft_sha256": "0" * 64,
            "pages": 3, "signed_sha256": "cd" * 32, "created_at": AT, "signed_at": AT})
        for role in ("lessor_certification", "lessee", "lessor"):
            conn.execute(insert(SignatureRow), {
                "contract_id": "c" * 32, "role": role, "signer": "x", "certificate_serial": "1",
                "certificate_sha256": "0" * 64, "identity": {}, "ledger_index": 2, "signed_at": AT})
    engine.dispose()
    return raws, tree.root()


def new_log(db: Database, key_path: Path) -> EvidenceLog:
    return EvidenceLog(db, load_or_create_key(key_path), f"{ORIGIN}/v2", legacy_origin=ORIGIN)


def test_the_first_log_is_frozen_linked_and_committed_again(url: str, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    key_path = tmp_path / "ledger.pem"
    raws, old_root = write_first_log(url, key_path)
    upgrade(url)
    db = Database(url)
    try:
        # two processes start at once, a third later: one start statement, each old entry committed once
        logs = [new_log(db, key_path) for _ in range(3)]
        threads = [threading.Thread(target=log.start) for log in logs[:2]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        logs[2].start()
        log = logs[2]
        assert log.size() == len(OLD) + 1
        # leaf 0: the log key's signed statement naming the first log's final checkpoint
        start = read_log_start(log.entry(0)[0])
        assert start.verify(log.public_key) and start.origin == f"{ORIGIN}/v2"
        assert start.previous is not None and start.previous.checkpoint.tree_size == len(OLD)
        assert start.previous.checkpoint.root_hash == old_root and start.previous.checkpoint.origin == ORIGIN
        # then every old entry, in order, as a commitment: the public side names nobody any more
        for i, raw in enumerate(raws):
            leaf, _ = log.entry(i + 1)
            assert leaf_commitment(leaf) is not None and b"app-old" not in leaf
            opened = log.opened(i + 1)
            assert opened.opening.entry == raw and opened.legacy_idx == i and opened.opening.opens(leaf)
        # the old log is untouched (nothing rewritten) and still verifies against its own checkpoints
        report = log.legacy.audit()
        assert report.ok and report.tree_size == len(OLD) and report.checked_checkpoints == len(OLD)
        assert log.audit().ok
        # a retry of an old append (same idempotency key) finds the committed entry: nothing appended twice
        again = log.append("payment", "app-old-1", {"amount": "27960.00", "stripe_intent": "pi_old_1"},
                           idempotency_key="payment:p1:succeeded:1")
        assert not again.created and again.index == 4 and log.size() == len(OLD) + 1
        # the signed contract's signature rows name its entry in the new log
        with db.session() as session:
            assert set(session.scalars(select(SignatureRow.ledger_index))) == {3}
        # an old entry's bundle proves it in both logs, checked independently
        key = log.public_key.public_bytes_raw()
        bundle = log.bundle(2).to_json()
        assert evidence.opened(bundle, key)["data"]["pd"] == "0.156281"
        assert bundle["previous_log"]["index"] == 1 and bundle["previous_log"]["checkpoint"]["tree_size"] == len(OLD)
        assert evidence.failures({**bundle, "previous_log": {**bundle["previous_log"], "index": 0}}, key) == [
            "previous log inclusion"]
        # new appends come after the old entries
        assert log.append("payment", "app-new-1", {"amount": "1.00"}).index == len(OLD) + 1

        monkeypatch.setenv("LEASELINE_CONTRACT_DATABASE_URL", url)
        monkeypatch.setenv("LEASELINE_LEDGER_SIGNING_KEY_PATH", str(key_path))
        monkeypatch.setenv("LEASELINE_LEDGER_ORIGIN", ORIGIN)
        monkeypatch.setenv("LEASELINE_S3_SECRET_KEY", "unused")
        from leaseline.cli import main

        done = CliRunner().invoke(main, ["ledger", "verify"])
        assert done.exit_code == 0, done.output
        assert f"first evidence log (frozen, private) intact: {len(OLD)} entries" in done.output
        assert f"evidence log intact: {len(OLD) + 2} entries" in done.output
        # the bundle checked offline by the command line, with the published key
        path = tmp_path / "bundle.json"
        path.write_text(json.dumps(bundle))
        published = base64.b64encode(key).decode()
        done = CliRunner().invoke(main, ["ledger", "check-bundle", str(path), "--public-key", published])
        assert done.exit_code == 0 and "was entry 1 of the first log" in done.output and "0.156281" in done.output
        path.write_text(json.dumps({**bundle, "opening": {**bundle["opening"], "salt": "00" * 32}}))
        done = CliRunner().invoke(main, ["ledger", "check-bundle", str(path), "--public-key", published])
        assert done.exit_code != 0 and "does NOT prove" in done.output, done.output
        # a saved checkpoint of either log is checked against the log it names
        saved = tmp_path / "saved.jsonl"
        saved.write_text(json.dumps(start.previous.to_json()) + "\n")
        assert CliRunner().invoke(main, ["ledger", "verify", "--checkpoint", str(saved)]).exit_code == 0
        # a changed entry of the frozen log is still found, and named
        with db.session() as session:
            session.execute(update(LegacyEntryRow).where(LegacyEntryRow.idx == 1).values(
                entry=raws[1].replace(b"approve", b"decline")))
        done = CliRunner().invoke(main, ["ledger", "verify"])
        assert done.exit_code != 0 and "first evidence log (frozen, private) NOT intact" in done.output, done.output
        assert "first bad entry 1" in done.output
    finally:
        db.dispose()


def test_a_fresh_log_starts_with_a_statement_that_continues_nothing(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    upgrade(url)
    db = Database(url)
    try:
        log = new_log(db, tmp_path / "ledger.pem")
        assert log.append("payment", "app-1", {"amount": "1.00"}).index == 1  # appending starts the log first
        start = read_log_start(log.entry(0)[0])
        assert start.previous is None and start.verify(log.public_key)
        assert log.audit().ok and log.legacy.size() == 0
    finally:
        db.dispose()
