"""The evidence log (区块链存证 done as a transparency log): append-only entries in the contract service's
database, a Merkle tree over them (RFC 6962, :mod:`contract.ledger`), signed checkpoints, proofs, anchoring.

Every key event of a lease — consent, KYC outcome, plan accepted, risk decision, contract generated, each
signature, payment — is one entry: canonical JSON bytes holding ids, hashes and amounts, never personal
data (the log is public, as a transparency log's reads are). Entries get consecutive indexes: each append
takes ``max(idx) + 1`` and retries when another process took that index first (the primary key decides), so
several processes on PostgreSQL append safely without a lock table. Each process keeps the tree of leaf
hashes in memory and catches up from the table before answering, so any process can prove any entry.

After each append a checkpoint (tree size, root, time) is signed with the log's Ed25519 key, stored, and
handed to the anchors (:class:`FileAnchor`, :class:`StoreAnchor`; a notary or blockchain would be another).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from contract.db.models import CheckpointRow
from contract.db.models import LedgerEntryRow
from contract.ledger import Checkpoint
from contract.ledger import MerkleTree
from contract.ledger import Report
from contract.ledger import SignedCheckpoint
from contract.ledger import encode_entry
from contract.ledger import leaf_hash
from contract.ledger import sign
from contract.ledger import verify_log
from infra.db.engine import Database
from infra.keyfiles import create_once
from infra.storage import ObjectStore
from infra.storage import StorageError

log = logging.getLogger(__name__)
APPEND_ATTEMPTS = 20


class LedgerError(LookupError):
    """An index or size outside the log (the API answers 404 or 422)."""


@dataclass(frozen=True)
class Appended:
    index: int
    leaf_hash: bytes
    created: bool  # False: the same idempotency key was appended before; that entry is returned


@dataclass(frozen=True)
class NewEntry:
    """An entry to append: ``at`` defaults to now; ``idempotency_key`` makes a retry return the first entry."""

    kind: str
    subject: str
    data: Mapping[str, Any]
    at: datetime | None = None
    idempotency_key: str | None = None


class Anchor(Protocol):
    """Publishes a signed checkpoint somewhere outside our database (a file, S3, a notary, a blockchain)."""

    def publish(self, checkpoint: SignedCheckpoint) -> None: ...


class FileAnchor:
    """One JSON line per checkpoint in a local file (e.g. ``var/ledger/checkpoints.jsonl``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def publish(self, checkpoint: SignedCheckpoint) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(checkpoint.to_json(), sort_keys=True) + "\n")


class StoreAnchor:
    """Each checkpoint as ``ledger/checkpoints/<size>.json`` in object storage (versioned, encrypted)."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def publish(self, checkpoint: SignedCheckpoint) -> None:
        body = json.dumps(checkpoint.to_json(), sort_keys=True).encode()
        self.store.put(f"ledger/checkpoints/{checkpoint.checkpoint.tree_size:012d}.json", body, "application/json")


def load_or_create_key(path: Path) -> Ed25519PrivateKey:
    """The log's Ed25519 signing key: PEM at ``path``, made on first run (0600, written once)."""
    pem = create_once(path, lambda: Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
        "evidence log signing key")
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} is not an Ed25519 private key")
    return key


class EvidenceLog:
    def __init__(self, db: Database, key: Ed25519PrivateKey, origin: str, anchors: Sequence[Anchor] = (),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.db, self.key, self.origin, self.anchors, self.clock = db, key, origin, list(anchors), clock
        self.public_key = key.public_key()
        self._tree = MerkleTree()
        self._lock = threading.Lock()

    # -- appending -----------------------------------------------------------------------------------------
    def append(self, kind: str, subject: str, data: Mapping[str, Any], *, at: datetime | None = None,
               idempotency_key: str | None = None) -> Appended:
        """Append one entry (``ValueError`` for an unknown kind, a float or a naive time) and sign a new
        checkpoint. The same ``idempotency_key`` again returns the first entry."""
        return self.append_many([NewEntry(kind, subject, data, at, idempotency_key)])[0]

    def append_many(self, entries: Sequence[NewEntry]) -> list[Appended]:
        """Append several entries in one transaction with consecutive indexes, in the order given, and sign one
        checkpoint for them all (the way a busy log batches: one commit and one signature per batch). An
        entry whose idempotency key was appended before, or earlier in the same batch, returns that entry.
        ``ValueError`` (an unknown kind, a float, a naive time) refuses the whole batch before anything is
        written."""
        now = self.clock()
        encoded = []
        for item in entries:
            raw = encode_entry(item.kind, item.subject, item.data, item.at or now)
            encoded.append((item, raw, leaf_hash(raw)))
        for _ in range(APPEND_ATTEMPTS):
            keys = [item.idempotency_key for item, _, _ in encoded if item.idempotency_key]
            known = self._by_keys(keys) if keys else {}
            results: list[Appended] = []
            rows: list[LedgerEntryRow] = []
            try:
                with self.db.session() as session:
                    index = int(session.scalar(select(func.coalesce(func.max(LedgerEntryRow.idx) + 1, 0))) or 0)
                    batch_keys: dict[str, Appended] = {}
                    for item, raw, leaf in encoded:
                        key = item.idempotency_key
                        if key and key in known:
                            results.append(known[key])
                            continue
                        if key and key in batch_keys:
                            results.append(Appended(batch_keys[key].index, batch_keys[key].leaf_hash, False))
                            continue
                        rows.append(LedgerEntryRow(idx=index, entry=raw, leaf_hash=leaf, kind=item.kind,
                                                   subject=item.subject[:64], idempotency_key=key,
                                                   created_at=now))
                        appended = Appended(index, leaf, True)
                        if key:
                            batch_keys[key] = appended
                        results.append(appended)
                        index += 1
                    session.add_all(rows)
                    session.flush()
            except IntegrityError:  # another process took these indexes (or one of the keys) first: look again
                continue
            if rows:
                self.checkpoint()
            return results
        raise RuntimeError("could not append to the evidence log: too much contention")

    def _by_keys(self, keys: Sequence[str]) -> dict[str, Appended]:
        found: dict[str, Appended] = {}
        with self.db.session() as session:
            for start in range(0, len(keys), 500):
                for row in session.execute(select(LedgerEntryRow.idempotency_key, LedgerEntryRow.idx,
                                                  LedgerEntryRow.leaf_hash).where(
                        LedgerEntryRow.idempotency_key.in_(keys[start:start + 500]))):
                    found[row[0]] = Appended(row[1], bytes(row[2]), False)
        return found

    # -- the tree ------------------------------------------------------------------------------------------
    def _synced(self) -> MerkleTree:
        """The in-memory tree caught up with the table (entries other processes appended). Call with
        ``self._lock`` held; the tree only grows, so a proof for a given size never changes."""
        with self.db.session() as session:
            rows = session.execute(select(LedgerEntryRow.idx, LedgerEntryRow.leaf_hash).where(
                LedgerEntryRow.idx >= len(self._tree)).order_by(LedgerEntryRow.idx)).all()
        for idx, leaf in rows:
            if idx != len(self._tree):  # never expected (indexes are taken in order); stop before a gap
                break
            self._tree.append(bytes(leaf))
        return self._tree

    def size(self) -> int:
        with self._lock:
            return len(self._synced())

    def checkpoint(self) -> SignedCheckpoint:
        """The checkpoint of the current tree: the stored one when the size has not grown, else a new one,
        signed, stored and published."""
        with self._lock:
            tree = self._synced()
            size, root = len(tree), tree.root(len(tree))
        with self.db.session() as session:
            row = session.get(CheckpointRow, size)
            if row is not None:
                return _signed(row)
        signed = sign(Checkpoint(self.origin, size, root, self.clock()), self.key)
        try:
            with self.db.session() as session:
                session.add(CheckpointRow(tree_size=size, root_hash=signed.checkpoint.root_hash,
                                          timestamp=signed.checkpoint.timestamp, origin=self.origin,
                                          signature=signed.signature, public_key=signed.public_key))
        except IntegrityError:  # another process signed this size at the same moment: theirs is the one
            with self.db.session() as session:
                row = session.get(CheckpointRow, size)
                assert row is not None
                return _signed(row)
        for anchor in self.anchors:
            try:
                anchor.publish(signed)
            except (OSError, StorageError) as exc:  # best effort: the next checkpoint covers this one
                log.warning("evidence log: anchoring checkpoint %s with %s failed: %s", size,
                            type(anchor).__name__, exc)
        return signed

    def entry(self, index: int) -> tuple[bytes, bytes]:
        """The exact leaf bytes and leaf hash of entry ``index``."""
        with self.db.session() as session:
            row = session.get(LedgerEntryRow, index)
            if row is None:
                raise LedgerError(f"no entry {index}")
            return bytes(row.entry), bytes(row.leaf_hash)

    def entries_of(self, subject: str) -> list[tuple[int, str]]:
        """(index, kind) of every entry about ``subject``, oldest first."""
        with self.db.session() as session:
            return [(i, k) for i, k in session.execute(select(LedgerEntryRow.idx, LedgerEntryRow.kind).where(
                LedgerEntryRow.subject == subject).order_by(LedgerEntryRow.idx))]

    def inclusion(self, index: int, tree_size: int) -> list[bytes]:
        with self._lock:
            tree = self._synced()
            if not 0 <= index < tree_size <= len(tree):
                raise LedgerError(f"index {index} is not in a tree of size {tree_size} (log size {len(tree)})")
            return tree.inclusion_proof(index, tree_size)

    def consistency(self, first: int, second: int) -> list[bytes]:
        with self._lock:
            tree = self._synced()
            if not 0 < first <= second <= len(tree):
                raise LedgerError(f"sizes {first} → {second} are not within the log (size {len(tree)})")
            return tree.consistency_proof(first, second)

    # -- audit -----------------------------------------------------------------------------------------------
    def audit(self, extra: Sequence[SignedCheckpoint] = ()) -> Report:
        """Recompute the whole log from the stored entry bytes and check every stored checkpoint (and
        ``extra`` ones, e.g. a checkpoint saved by an outside party) — ``leaseline ledger verify``."""
        with self.db.session() as session:
            rows = session.execute(select(LedgerEntryRow.entry, LedgerEntryRow.leaf_hash).order_by(
                LedgerEntryRow.idx)).all()
            stored = [_signed(r) for r in session.scalars(select(CheckpointRow).order_by(CheckpointRow.tree_size))]
        checkpoints = sorted([*stored, *extra], key=lambda c: (c.checkpoint.tree_size, c.checkpoint.timestamp))
        return verify_log([bytes(r[0]) for r in rows], [bytes(r[1]) for r in rows], checkpoints, self.public_key)


def _signed(row: CheckpointRow) -> SignedCheckpoint:
    return SignedCheckpoint(Checkpoint(row.origin, row.tree_size, bytes(row.root_hash), row.timestamp),
                            bytes(row.signature), bytes(row.public_key))
