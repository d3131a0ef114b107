"""The first evidence log (clear entries, public until migration 0003) is frozen, never rewritten, and continued by
the commitment log: its first leaf is a signed statement naming the old log's final checkpoint, and every old
entry is committed again, in order, so it stays provable (in both logs) to those entitled to its bundle.

That move is a one-off command, ``leaseline ledger migrate`` (idempotent, resumable, one checkpoint at the end),
run before the new contract service starts; the service itself only checks, with a few index reads, that it was
done, and otherwise refuses to start naming the command. From schema 0004 on the old log takes no new entry (an
old version of the service still running during a deploy is refused, not silently continued)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from click.testing import CliRunner
from click.testing import Result
from sqlalchemy import delete
from sqlalchemy import event
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import DBAPIError

from contract.db.migrate import upgrade
from contract.db.models import CheckpointRow
from contract.db.models import LeafRow
from contract.db.models import LegacyEntryRow
from contract.db.models import OpeningRow
from contract.db.models import SignatureRow
from contract.evidence import EvidenceLog
from contract.evidence import load_or_create_key
from contract.ledger import encode_entry
from contract.ledger import leaf_hash
from contract.ledger.commitments import leaf_commitment
from contract.ledger.commitments import read_log_start
from infra.db.engine import Database
from tests.common import evidence
from tests.common.first_log import AT
from tests.common.first_log import write_first_log
from tests.conftest import DATABASES
from tests.conftest import postgres_database

pytestmark = pytest.mark.db
ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "leaseline.test/evidence"
CONTRACT = "c" * 32
#: what the contract service logged before 0003 (kind, subject, data, idempotency key)
OLD = [
    ("consent_given", "app-old-1", {"purpose": "sensitive_pi", "text_sha256": "ab" * 32}, "app-old-1:consent:pi"),
    ("risk_decision", "app-old-1", {"outcome": "approve", "pd": "0.156281", "reasons": ["AUTO_APPROVE"]},
     "app-old-1:risk:r1"),
    ("contract_signed", "app-old-1", {"contract_id": CONTRACT, "number": "LL20261130ABCDEF", "sha256": "cd" * 32},
     f"contract_signed:{CONTRACT}"),
    ("payment", "app-old-1", {"amount": "27960.00", "stripe_intent": "pi_old_1"}, "payment:p1:succeeded:1"),
    ("risk_decision", "app-old-2", {"outcome": "decline", "pd": "0.61", "reasons": ["DELINQUENT"]}, None),
]


@pytest.fixture(params=DATABASES)
def url() -> Iterator[str]:
    yield from postgres_database("leaseline_evm")


@pytest.fixture
def first_log(url: str, tmp_path: Path) -> tuple[list[bytes], bytes]:
    """The database at ``url`` as the contract service left it at 0002, then its schema brought to head (as a
    new version's start, or ``leaseline ledger migrate``, does first)."""
    written = write_first_log(url, tmp_path / "ledger.pem", OLD, ORIGIN)
    upgrade(url)
    return written


@pytest.fixture
def cli_env(url: str, tmp_path: Path, s3_server: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The contract service's settings for ``leaseline ledger …`` on this database (and SeaweedFS for anchoring)."""
    env = {"LEASELINE_CONTRACT_DATABASE_URL": url, "LEASELINE_LEDGER_SIGNING_KEY_PATH": str(tmp_path / "ledger.pem"),
           "LEASELINE_LEDGER_ORIGIN": ORIGIN, "LEASELINE_VAR_DIR": str(tmp_path),
           "LEASELINE_S3_ENDPOINT_URL": s3_server.endpoint_url, "LEASELINE_S3_ACCESS_KEY": s3_server.access_key,
           "LEASELINE_S3_SECRET_KEY": s3_server.secret_key,
           "LEASELINE_CONTRACT_BUCKET": f"contracts-{uuid.uuid4().hex[:8]}"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


def new_log(db: Database, key_path: Path) -> EvidenceLog:
    return EvidenceLog(db, load_or_create_key(key_path), f"{ORIGIN}/v2", legacy_origin=ORIGIN)


def leaseline(*args: str) -> Result:
    from leaseline.cli import main

    return CliRunner().invoke(main, list(args))


def counts(db: Database) -> tuple[int, int, int]:
    """(leaves, openings, checkpoints) of the commitment log."""
    with db.session() as session:
        leaves, openings, checkpoints = (int(session.scalar(select(func.count()).select_from(t)) or 0)
                                         for t in (LeafRow, OpeningRow, CheckpointRow))
    return leaves, openings, checkpoints


def test_the_first_log_is_frozen_linked_and_committed_again(url: str, tmp_path: Path, cli_env: dict[str, str],
                                                             first_log: tuple[list[bytes], bytes]) -> None:
    from contract.legacy_migration import migrate

    raws, old_root = first_log
    key_path = tmp_path / "ledger.pem"
    db = Database(url)
    try:
        # two runs of the migration at once, a third later: one start statement, each old entry committed once
        logs = [new_log(db, key_path) for _ in range(3)]
        threads = [threading.Thread(target=migrate, args=(log,)) for log in logs[:2]]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert migrate(logs[2]).recommitted == 0
        log = logs[2]
        log.start()
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
        # an old entry's bundle proves it in both logs, checked independently, for those entitled to the first
        # log's proof (its audit path holds unsalted hashes of other people's entries): others get the new log's
        key = log.public_key.public_bytes_raw()
        assert log.bundle(2).to_json()["previous_log"] is None
        bundle = log.bundle(2, previous_log=True).to_json()
        assert evidence.opened(bundle, key)["data"]["pd"] == "0.156281"
        assert bundle["previous_log"]["index"] == 1 and bundle["previous_log"]["checkpoint"]["tree_size"] == len(OLD)
        assert evidence.failures({**bundle, "previous_log": {**bundle["previous_log"], "index": 0}}, key) == [
            "previous log inclusion"]
        # new appends come after the old entries
        assert log.append("payment", "app-new-1", {"amount": "1.00"}).index == len(OLD) + 1

        done = leaseline("ledger", "verify")
        assert done.exit_code == 0, done.output
        assert f"first evidence log (frozen, private) intact: {len(OLD)} entries" in done.output
        assert f"evidence log intact: {len(OLD) + 2} entries" in done.output
        # the bundle checked offline by the command line, with the published key
        path = tmp_path / "bundle.json"
        path.write_text(json.dumps(bundle))
        published = base64.b64encode(key).decode()
        done = leaseline("ledger", "check-bundle", str(path), "--public-key", published)
        assert done.exit_code == 0 and "was entry 1 of the first log" in done.output and "0.156281" in done.output
        path.write_text(json.dumps({**bundle, "opening": {**bundle["opening"], "salt": "00" * 32}}))
        done = leaseline("ledger", "check-bundle", str(path), "--public-key", published)
        assert done.exit_code != 0 and "does NOT prove" in done.output, done.output
        # a saved checkpoint of either log is checked against the log it names
        saved = tmp_path / "saved.jsonl"
        saved.write_text(json.dumps(start.previous.to_json()) + "\n")
        assert leaseline("ledger", "verify", "--checkpoint", str(saved)).exit_code == 0
        # a changed entry of the frozen log is still found, and named
        with db.session() as session:
            session.execute(update(LegacyEntryRow).where(LegacyEntryRow.idx == 1).values(
                entry=raws[1].replace(b"approve", b"decline")))
        done = leaseline("ledger", "verify")
        assert done.exit_code != 0 and "first evidence log (frozen, private) NOT intact" in done.output, done.output
        assert "first bad entry 1" in done.output
    finally:
        db.dispose()


def test_the_api_gives_an_old_entry_s_first_log_proof_only_when_asked(
        url: str, tmp_path: Path, s3_server: Any, first_log: tuple[list[bytes], bytes]) -> None:
    """The BFF asks for it for auditors and the lessor's staff only (tests/integration/test_evidence_access.py): its
    audit path holds the unsalted leaf hashes of other people's entries, which a guess could be checked against."""
    from contract.legacy_migration import migrate
    from tests.common.contract import ContractServer
    from tests.common.tsa import TsaServer

    key_path = tmp_path / "ledger.pem"
    db = Database(url)
    try:
        migrate(new_log(db, key_path))
        key = new_log(db, key_path).public_key.public_bytes_raw()
    finally:
        db.dispose()
    with TsaServer() as tsa, ContractServer(url, tmp_path, s3_server, tsa, ledger_key_path=str(key_path),
                                            ledger_origin=ORIGIN) as server:
        opening, headers = f"{server.url}/api/v1/ledger/openings/2", server.headers("ledger:read")

        def bundle(**params: str) -> dict[str, Any]:
            r = requests.get(opening, params=params, headers=headers, timeout=10)
            assert r.status_code == 200, r.text[:300]
            return dict(r.json()["bundle"])

        for plain in (bundle(), bundle(previous_log="false")):
            assert plain["previous_log"] is None and evidence.opened(plain, key)["data"]["pd"] == "0.156281"
        full = bundle(previous_log="true")
        assert full["previous_log"]["index"] == 1 and evidence.failures(full, key) == []
        refused = requests.get(opening, params={"previous_log": "yes"}, headers=headers, timeout=10)
        assert refused.status_code == 400 and refused.json()["errors"][0]["field"] == "previous_log", refused.text


def test_an_unmigrated_first_log_stops_the_service_starting_and_nothing_is_written(
        url: str, tmp_path: Path, first_log: tuple[list[bytes], bytes]) -> None:
    db = Database(url)
    try:
        log = new_log(db, tmp_path / "ledger.pem")
        with pytest.raises(RuntimeError, match="run `leaseline ledger migrate`"):
            log.start()
        with pytest.raises(RuntimeError, match="run `leaseline ledger migrate`"):  # nor does an append start it
            log.append("payment", "app-new-1", {"amount": "1.00"})
        assert counts(db) == (0, 0, 0)
    finally:
        db.dispose()


def test_leaseline_ledger_migrate_moves_the_first_log_once_with_one_checkpoint(
        url: str, tmp_path: Path, cli_env: dict[str, str], s3_server: Any,
        first_log: tuple[list[bytes], bytes]) -> None:
    done = leaseline("ledger", "migrate")
    assert done.exit_code == 0, done.output
    assert f"committed the first log's {len(OLD)} entries again" in done.output, done.output
    db = Database(url)
    try:
        # one checkpoint for the whole move, signed, stored and anchored once (the file and S3)
        assert counts(db) == (len(OLD) + 1, len(OLD), 1)
        anchored = (tmp_path / "ledger" / "checkpoints.jsonl").read_text().splitlines()
        assert [json.loads(line)["tree_size"] for line in anchored] == [len(OLD) + 1]
        from infra.storage import S3ObjectStore

        store = S3ObjectStore(endpoint_url=s3_server.endpoint_url, bucket=cli_env["LEASELINE_CONTRACT_BUCKET"],
                              access_key=s3_server.access_key, secret_key=s3_server.secret_key)
        assert store.list_keys("ledger/v2/checkpoints/") == [f"ledger/v2/checkpoints/{len(OLD) + 1:012d}.json"]
        with db.session() as session:
            assert set(session.scalars(select(SignatureRow.ledger_index))) == {3}
        # run again (every `leaseline up` does): nothing to do, nothing signed
        again = leaseline("ledger", "migrate")
        assert again.exit_code == 0 and "nothing to migrate" in again.output, again.output
        assert counts(db) == (len(OLD) + 1, len(OLD), 1)
        new_log(db, tmp_path / "ledger.pem").start()  # and the service starts
        assert leaseline("ledger", "verify").exit_code == 0
    finally:
        db.dispose()


def test_an_interrupted_migration_resumes_where_it_stopped(url: str, tmp_path: Path, cli_env: dict[str, str],
                                                            first_log: tuple[list[bytes], bytes]) -> None:
    """A run stopped after its first batch (leaf 0 and the first two old entries committed, signatures not yet
    renumbered, no checkpoint): the service still refuses to start, and the next run commits the rest once."""
    assert leaseline("ledger", "migrate").exit_code == 0
    db = Database(url)
    try:
        with db.session() as session:  # back to the state a run stopped after its first batch would leave
            session.execute(delete(OpeningRow).where(OpeningRow.idx > 2))
            session.execute(delete(LeafRow).where(LeafRow.idx > 2))
            session.execute(delete(CheckpointRow))
            session.execute(update(SignatureRow).values(ledger_index=2))
            first = [bytes(leaf) for leaf in session.scalars(select(LeafRow.leaf).order_by(LeafRow.idx))]
        with pytest.raises(RuntimeError, match="leaseline ledger migrate"):
            new_log(db, tmp_path / "ledger.pem").start()
        done = leaseline("ledger", "migrate")
        assert done.exit_code == 0 and f"committed the first log's {len(OLD) - 2} entries again" in done.output, \
            done.output
        assert counts(db) == (len(OLD) + 1, len(OLD), 1)
        with db.session() as session:
            leaves = [bytes(leaf) for leaf in session.scalars(select(LeafRow.leaf).order_by(LeafRow.idx))]
            assert leaves[:3] == first  # what was done stays as it was
            assert [r for r in session.scalars(select(OpeningRow.legacy_idx).order_by(OpeningRow.idx))] == [
                0, 1, 2, 3, 4]
            assert set(session.scalars(select(SignatureRow.ledger_index))) == {3}
        assert leaseline("ledger", "verify").exit_code == 0
    finally:
        db.dispose()


def test_a_migrated_log_starts_with_a_few_index_reads_and_writes_nothing(
        url: str, tmp_path: Path, cli_env: dict[str, str], first_log: tuple[list[bytes], bytes]) -> None:
    """Every start of every process for ever: no counting of either log, no rewriting of signature rows."""
    assert leaseline("ledger", "migrate").exit_code == 0
    db = Database(url)
    db.engine.connect().close()  # the driver's own first queries (PostgreSQL's version, settings) are not ours
    statements: list[str] = []
    event.listen(db.engine, "before_cursor_execute", lambda _c, _cur, sql, *_: statements.append(sql))
    try:
        new_log(db, tmp_path / "ledger.pem").start()
        assert len(statements) <= 3, statements
        assert all(s.lstrip().upper().startswith("SELECT") and "COUNT(" not in s.upper() for s in statements), \
            statements
    finally:
        db.dispose()


def test_the_first_log_takes_no_new_entry_once_the_schema_is_upgraded(
        url: str, tmp_path: Path, first_log: tuple[list[bytes], bytes]) -> None:
    """What an old version of the contract service, still running during a deploy, would do: refused."""
    raw = encode_entry("payment", "app-old-3", {"amount": "2.00"}, AT)
    db = Database(url)
    try:
        with pytest.raises(DBAPIError, match="contract_ledger_entries is closed"), db.session() as session:
            session.execute(insert(LegacyEntryRow), {"idx": len(OLD), "entry": raw, "leaf_hash": leaf_hash(raw),
                                                     "kind": "payment", "subject": "app-old-3",
                                                     "idempotency_key": None, "created_at": AT})
        with db.session() as session:
            assert session.scalar(select(func.count()).select_from(LegacyEntryRow)) == len(OLD)
    finally:
        db.dispose()


def test_leaseline_serve_contract_refuses_an_unmigrated_log_in_one_line(
        url: str, tmp_path: Path, cli_env: dict[str, str], first_log: tuple[list[bytes], bytes]) -> None:
    env = {**os.environ, **cli_env, "LEASELINE_ENV": "test"}
    result = subprocess.run([sys.executable, "-m", "leaseline", "serve", "contract", "--port", "9"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, env=env, check=False)
    assert result.returncode == 2, (result.stdout[-2000:], result.stderr[-2000:])
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"Error: evidence log: {len(OLD)} entries of the first log are not committed into the commitment log yet: "
        "run `leaseline ledger migrate` (once, before the new contract service starts)"), result.stderr


def test_a_fresh_log_starts_with_a_statement_that_continues_nothing(tmp_path: Path) -> None:
    """No first log: nothing to migrate; the first process to start writes the start statement (race-safe: leaf 0
    is the primary key), and ``leaseline ledger migrate`` would find nothing to do."""
    for url in postgres_database("leaseline_evm_fresh"):
        upgrade(url)
        db = Database(url)
        try:
            logs = [new_log(db, tmp_path / "ledger.pem") for _ in range(2)]
            threads = [threading.Thread(target=log.start) for log in logs]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            log = logs[0]
            assert log.append("payment", "app-1", {"amount": "1.00"}).index == 1
            start = read_log_start(log.entry(0)[0])
            assert start.previous is None and start.verify(log.public_key)
            assert log.audit().ok and log.legacy.size() == 0
        finally:
            db.dispose()
