"""The evidence log (区块链存证 done as a transparency log): a Merkle tree (RFC 6962, :mod:`contract.ledger`) of
public leaves that are commitments only, signed checkpoints, proofs, anchoring; the clear entries kept private.

Every key event of a lease — consent, KYC outcome, plan accepted, risk decision, contract generated, each
signature, payment — is one clear entry (canonical JSON: the application it is about, hashes, amounts, the
decision). The public leaf is only a salted commitment to it (:mod:`contract.ledger.commitments`), so the public
log, its proofs and its checkpoints name no person, contract, amount or decision; the clear entry and its salt
(its *opening*) stay in ``contract_evidence_openings`` and go only to a caller with the ``ledger:read`` scope (the
BFF, which gives them to the customer, the lessor's staff by role and dealer, and the auditor, logging each
disclosure) as a proof bundle (:mod:`contract.ledger.bundle`) that anyone holding it can check offline.

Leaves get consecutive indexes: each append takes ``max(idx) + 1`` and retries when another process took that
index first (the primary key decides), so several processes on PostgreSQL append safely without a lock table.
Index 0 is the log start statement, which links the first log, whose entries were public in clear and which is
frozen now (:mod:`contract.legacy_log`); ``leaseline ledger migrate`` (:mod:`contract.legacy_migration`) commits
that log's entries into this one once, and every process only checks that it was done (:meth:`EvidenceLog.start`).
Each process keeps the tree of leaf hashes in memory and catches up from the table before answering, so any
process can prove any entry.

After each append a checkpoint (tree size, root, time) is signed with the log's Ed25519 key, stored, and
handed to the anchors (:class:`FileAnchor`, :class:`StoreAnchor`; a notary or blockchain would be another). With a
time-stamping authority configured, each new checkpoint is also stamped by it (RFC 3161, over SHA-256 of its
signed bytes: :mod:`contract.ledger.timestamps`), the token kept beside it: a third party's word for when the tree
head existed (issue 16 §7). A TSA that is down never stops the log: the checkpoint is published unanchored and
the worker's ``ledger.anchor`` job (:meth:`EvidenceLog.anchor_pending`) stamps it later.
The log's origin is the configured one with ``/v2`` (:func:`current_origin`): the first log's checkpoints,
signed with the same key, name the configured origin, and two logs under one name would look like a split view.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from pathlib import Path
from typing import Any
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func
from sqlalchemy import insert
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from contract.db.models import CheckpointRow
from contract.db.models import CheckpointTimestampRow
from contract.db.models import LeafRow
from contract.db.models import LegacyEntryRow
from contract.db.models import OpeningRow
from contract.evidence_audit import audit_log
from contract.ledger import Checkpoint
from contract.ledger import MerkleTree
from contract.ledger import Report
from contract.ledger import SignedCheckpoint
from contract.ledger import encode_entry
from contract.ledger import leaf_hash
from contract.ledger import sign
from contract.ledger.bundle import Bundle
from contract.ledger.bundle import Inclusion
from contract.ledger.commitments import Opening
from contract.ledger.commitments import log_start
from contract.ledger.commitments import new_salt
from contract.ledger.timestamps import AnchoredCheckpoint
from contract.ledger.timestamps import TimestampToken
from contract.ledger.timestamps import message_imprint
from contract.ledger.timestamps import verify_timestamp
from contract.legacy_log import LegacyLog
from contract.legacy_log import stored_checkpoint
from contract.signing.asyncio_bridge import outside_event_loop
from infra.db.engine import Database
from infra.keyfiles import create_once
from infra.storage import ObjectStore
from infra.storage import StorageError

log = logging.getLogger(__name__)
APPEND_ATTEMPTS = 20
MIGRATE_COMMAND = "leaseline ledger migrate"
#: after a failed stamp, new checkpoints are not stamped while they are signed for this long (the job does it): a
#: TSA that hangs would otherwise add its timeout to every append
STAMP_PAUSE_SECONDS = 60.0
#: checkpoints the ``ledger.anchor`` job stamps in one run at most
ANCHOR_BATCH = 100


def current_origin(configured: str) -> str:
    """The commitment log's origin: the configured name (the first log's) with ``/v2``."""
    return f"{configured}/v2"


class LedgerError(LookupError):
    """An index or size outside the log (the API answers 404 or 422)."""


class AnchorFailed(RuntimeError):
    """The time-stamping authority gave no usable token for a checkpoint (down, refused, or a token that does not
    stamp it): the checkpoint stays unanchored until the ``ledger.anchor`` job succeeds."""


class LedgerNotMigrated(RuntimeError):
    """The first log is not (wholly) committed into this one: the contract service refuses to start, and to
    append, until ``leaseline ledger migrate`` has run (ARCHITECTURE.md: an unmigrated schema names its fix)."""

    def __init__(self, unmoved: int) -> None:
        super().__init__(f"evidence log: {unmoved} entries of the first log are not committed into the commitment "
                         f"log yet: run `{MIGRATE_COMMAND}` (once, before the new contract service starts)")
        self.unmoved = unmoved


@dataclass(frozen=True)
class Progress:
    """How far the move of the first log into this one is (:meth:`EvidenceLog.progress`)."""

    started: bool  # leaf 0, the start statement, is there
    first_log_last: int | None  # the first log's last index; None: it has no entry
    moved_last: int | None  # the last index of the first log committed into this one

    @property
    def unmoved(self) -> int:
        """How many entries of the first log are not committed here yet. The move goes in index order, one
        transaction per batch, so what is committed is always a prefix of the first log."""
        if self.first_log_last is None:
            return 0
        return self.first_log_last - (-1 if self.moved_last is None else self.moved_last)


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


@dataclass(frozen=True)
class Committed:
    """A clear entry with its salt, ready to insert: the public leaf and the private opening."""

    kind: str
    subject: str
    opening: Opening
    key: str | None
    legacy_idx: int | None = None

    def leaf(self) -> bytes:
        return self.opening.leaf()


@dataclass(frozen=True)
class Opened:
    """What the private side knows of one leaf: its opening and what it is about."""

    index: int
    kind: str
    subject: str
    opening: Opening
    legacy_idx: int | None


class Anchor(Protocol):
    """Publishes a signed checkpoint somewhere outside our database (a file, S3, a notary, a blockchain)."""

    def publish(self, checkpoint: SignedCheckpoint) -> None: ...


class TimeStamping(Protocol):
    """An RFC 3161 time-stamping authority's client (pyHanko's ``pyhanko.sign.timestamps.HTTPTimeStamper``)."""

    async def async_timestamp(self, message_digest: bytes, md_algorithm: str) -> Any:
        """A TimeStampToken (an ``asn1crypto.cms.ContentInfo``) over ``message_digest``; ``OSError`` (pyHanko's
        ``TimestampRequestError``) when the TSA cannot be reached or refuses."""
        ...


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
    """Each checkpoint as ``<prefix>/<size>.json`` in object storage (versioned, encrypted). The first log's
    were under ``ledger/checkpoints``; this log's go under ``ledger/v2/checkpoints``, beside them."""

    def __init__(self, store: ObjectStore, prefix: str = "ledger/v2/checkpoints") -> None:
        self.store, self.prefix = store, prefix

    def publish(self, checkpoint: SignedCheckpoint) -> None:
        body = json.dumps(checkpoint.to_json(), sort_keys=True).encode()
        self.store.put(f"{self.prefix}/{checkpoint.checkpoint.tree_size:012d}.json", body, "application/json")


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
    """The commitment log. ``origin`` is its own name (:func:`current_origin`); ``legacy_origin`` the first log's."""

    def __init__(self, db: Database, key: Ed25519PrivateKey, origin: str, anchors: Sequence[Anchor] = (),
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC), *, legacy_origin: str = "",
                 timestamper: TimeStamping | None = None, tsa_roots: Sequence[x509.Certificate] = ()) -> None:
        """``timestamper``: the TSA that stamps each checkpoint (None: none is, and each says ``anchored: false``);
        ``tsa_roots``: its trusted roots, against which a token is checked before it is kept."""
        self.db, self.key, self.origin, self.anchors, self.clock = db, key, origin, list(anchors), clock
        self.timestamper, self.tsa_roots = timestamper, list(tsa_roots)
        self._stamp_paused_until = 0.0
        self.public_key = key.public_key()
        self.legacy = LegacyLog(db, key, legacy_origin or origin.removesuffix("/v2"), clock)
        self._tree = MerkleTree()
        self._lock = threading.Lock()
        self._started = False

    # -- the start: the first leaf, and the check that the first log was committed again -------------------
    def progress(self) -> Progress:
        """Where the move of the first log stands: three reads of one row each by primary key or unique index
        (leaf 0, the first log's last index, the last re-committed one), whatever the size of either log."""
        with self.db.session() as session:
            started = session.scalar(select(LeafRow.idx).where(LeafRow.idx == 0)) is not None
            first_log_last = session.scalar(select(func.max(LegacyEntryRow.idx)))
            moved_last = None
            if first_log_last is not None:
                moved_last = session.scalar(select(func.max(OpeningRow.legacy_idx)))
        return Progress(started, first_log_last, moved_last)

    def start(self) -> None:
        """Make sure, before serving or appending, that leaf 0 is the signed log start statement and that every
        entry of the first log is committed into this log; :class:`LedgerNotMigrated` when it is not (``leaseline
        ledger migrate`` does that, once, with one checkpoint at the end: :mod:`contract.legacy_migration`).

        A database without a first log has nothing to move: the first process to start writes the start statement
        itself, one insert and one checkpoint, once (race-safe: leaf 0 is a primary key, and the first log takes no
        entry from contract migration 0004 on, so it stays empty). Afterwards a start is :meth:`progress` only."""
        if self._started:
            return
        progress = self.progress()
        if progress.unmoved:
            raise LedgerNotMigrated(progress.unmoved)
        if not progress.started:
            self.write_start(None)
        self._started = True

    def write_start(self, previous: SignedCheckpoint | None, *, sign_checkpoint: bool = True) -> bool:
        """Write leaf 0, the signed start statement naming ``previous`` (the first log's final checkpoint, None:
        there is none); False when another process wrote it first (theirs stands). ``sign_checkpoint``: sign a
        checkpoint of the log after it (the move signs one at its end instead)."""
        statement = log_start(self.origin, self.clock(), previous, self.key)
        raw = statement.leaf()
        try:
            with self.db.session() as session:
                session.add(LeafRow(idx=0, leaf=raw, leaf_hash=leaf_hash(raw), created_at=statement.at))
        except IntegrityError:  # another process started the log at the same moment: its statement stands
            return False
        log.info("evidence log %s started%s", self.origin, f" after {previous.checkpoint.origin} at size "
                 f"{previous.checkpoint.tree_size}" if previous else "")
        if sign_checkpoint:
            self.checkpoint()
        return True

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
        written. Each entry gets its own fresh salt: its leaf is a commitment, its opening stays private."""
        now = self.clock()
        committed = [Committed(item.kind, item.subject[:64], Opening(
            encode_entry(item.kind, item.subject, item.data, item.at or now), new_salt()), item.idempotency_key)
            for item in entries]
        self.start()
        return self.commit(committed)

    def commit(self, entries: Sequence[Committed], *, sign_checkpoint: bool = True,
               also: Callable[[Session], None] | None = None) -> list[Appended]:
        """Insert prepared commitments with consecutive indexes in one transaction (an entry whose idempotency key
        or first-log index is in the log already returns that entry) and, unless ``sign_checkpoint`` is false, sign
        a checkpoint. ``also`` runs in the same transaction after the inserts (the move renumbers signatures
        so)."""
        leaves = [(item, raw, leaf_hash(raw)) for item, raw in ((item, item.leaf()) for item in entries)]
        for _ in range(APPEND_ATTEMPTS):
            known = self._known(entries)
            results: list[Appended] = []
            rows: list[dict[str, Any]] = []
            openings: list[dict[str, Any]] = []
            now = self.clock()
            try:
                with self.db.session() as session:
                    index = int(session.scalar(select(func.coalesce(func.max(LeafRow.idx) + 1, 0))) or 0)
                    if index == 0:
                        raise RuntimeError("the evidence log has no start statement: call start() first")
                    batch: dict[str, Appended] = {}
                    for item, raw, leaf in leaves:
                        tag = _tag(item)
                        if tag and tag in known:
                            results.append(known[tag])
                            continue
                        if tag and tag in batch:
                            results.append(Appended(batch[tag].index, batch[tag].leaf_hash, False))
                            continue
                        rows.append({"idx": index, "leaf": raw, "leaf_hash": leaf, "created_at": now})
                        openings.append({"idx": index, "entry": item.opening.entry, "salt": item.opening.salt,
                                         "kind": item.kind, "subject": item.subject, "idempotency_key": item.key,
                                         "legacy_idx": item.legacy_idx})
                        appended = Appended(index, leaf, True)
                        if tag:
                            batch[tag] = appended
                        results.append(appended)
                        index += 1
                    if rows:  # bulk inserts (executemany), the leaves first: each opening refers to its leaf
                        session.execute(insert(LeafRow), rows)
                        session.execute(insert(OpeningRow), openings)
                    if also is not None:
                        also(session)
            except IntegrityError:  # another process took these indexes (or one of the keys) first: look again
                continue
            if rows and sign_checkpoint:
                self.checkpoint()
            return results
        raise RuntimeError("could not append to the evidence log: too much contention")

    def _known(self, entries: Sequence[Committed]) -> dict[str, Appended]:
        """The entries appended before, by idempotency key (``key:…``) or first-log index (``legacy:…``)."""
        keys = [e.key for e in entries if e.key]
        olds = [e.legacy_idx for e in entries if e.legacy_idx is not None]
        found: dict[str, Appended] = {}
        with self.db.session() as session:
            for start in range(0, max(len(keys), len(olds)), 500):
                where = []
                if keys[start:start + 500]:
                    where.append(OpeningRow.idempotency_key.in_(keys[start:start + 500]))
                if olds[start:start + 500]:
                    where.append(OpeningRow.legacy_idx.in_(olds[start:start + 500]))
                for row in session.execute(select(OpeningRow.idempotency_key, OpeningRow.legacy_idx,
                                                  LeafRow.idx, LeafRow.leaf_hash).join(
                        LeafRow, LeafRow.idx == OpeningRow.idx).where(or_(*where))):
                    appended = Appended(row[2], bytes(row[3]), False)
                    if row[0]:
                        found[f"key:{row[0]}"] = appended
                    if row[1] is not None:
                        found[f"legacy:{row[1]}"] = appended
        return found

    # -- the tree ------------------------------------------------------------------------------------------
    def _synced(self) -> MerkleTree:
        """The in-memory tree caught up with the table (leaves other processes appended). Call with
        ``self._lock`` held; the tree only grows, so a proof for a given size never changes."""
        with self.db.session() as session:
            rows = session.execute(select(LeafRow.idx, LeafRow.leaf_hash).where(
                LeafRow.idx >= len(self._tree)).order_by(LeafRow.idx)).all()
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
        signed, stored, published and, with a TSA, stamped (:meth:`stamp`; a failure leaves it to the job)."""
        with self._lock:
            tree = self._synced()
            size, root = len(tree), tree.root(len(tree))
        with self.db.session() as session:
            row = session.get(CheckpointRow, size)
            if row is not None:
                return stored_checkpoint(row)
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
                return stored_checkpoint(row)
        for anchor in self.anchors:
            try:
                anchor.publish(signed)
            except (OSError, StorageError) as exc:  # best effort: the next checkpoint covers this one
                log.warning("evidence log: anchoring checkpoint %s with %s failed: %s", size,
                            type(anchor).__name__, exc)
        if self.timestamper is not None and time.monotonic() >= self._stamp_paused_until:
            try:
                self.stamp(signed)
            except Exception as exc:  # noqa: BLE001 - the log goes on: the entry is in, the job stamps it later
                self._stamp_paused_until = time.monotonic() + STAMP_PAUSE_SECONDS
                log.warning("evidence log: checkpoint %s published unanchored (the ledger.anchor job will stamp "
                            "it): %s", size, exc)
        return signed

    # -- the third party: RFC 3161 timestamps of the checkpoints ------------------------------------------------
    def published(self) -> AnchoredCheckpoint:
        """The current checkpoint (:meth:`checkpoint`) with its RFC 3161 token, if it has one yet."""
        signed = self.checkpoint()
        return AnchoredCheckpoint(signed, self.anchor_of(signed.checkpoint.tree_size))

    def anchor_of(self, tree_size: int) -> TimestampToken | None:
        """The token kept for the checkpoint of ``tree_size``; None: not anchored (yet)."""
        with self.db.session() as session:
            row = session.get(CheckpointTimestampRow, tree_size)
            return TimestampToken(bytes(row.token), row.gen_time) if row is not None else None

    def stamp(self, signed: SignedCheckpoint) -> bool:
        """Ask the TSA for a token over SHA-256 of ``signed``'s body (RFC 3161 §2.4.1, nonce checked by pyHanko),
        check it, and keep it; False when the checkpoint had one already (another process's stays). Raises
        :class:`AnchorFailed` when the TSA cannot be reached or its token does not stamp this checkpoint."""
        if self.timestamper is None:
            raise AnchorFailed("no time-stamping authority is configured")
        stamper, digest = self.timestamper, message_imprint(signed)
        try:
            # pyHanko's client is async only; a request thread or a sync job has no event loop of its own
            reply = outside_event_loop(lambda: asyncio.run(stamper.async_timestamp(digest, "sha256")))
            token = TimestampToken.read(reply.dump())
        except (OSError, ValueError) as exc:  # TimestampRequestError is an OSError, a timeout too
            raise AnchorFailed(f"the time-stamping authority gave no token: {exc}") from exc
        # a TSA's error or an intercepted reply must not be kept as our anchor; its time is not judged here (a
        # late stamp by the job is still a proof the checkpoint existed by then)
        problems = (verify_timestamp(signed, token.token, self.tsa_roots, within=None) if self.tsa_roots
                    else [] if token.imprint() == ("sha256", digest) else ["the token stamps other bytes"])
        if problems:
            raise AnchorFailed(f"the time-stamping authority's token does not hold: {'; '.join(problems)}")
        with self.db.session() as session:
            added = session.execute(pg_insert(CheckpointTimestampRow).values(
                tree_size=signed.checkpoint.tree_size, token=token.token, gen_time=token.gen_time,
                created_at=self.clock()).on_conflict_do_nothing(index_elements=["tree_size"])).rowcount
        self._stamp_paused_until = 0.0
        return bool(added)

    def anchor_pending(self, limit: int = ANCHOR_BATCH) -> int:
        """Stamp up to ``limit`` checkpoints that have no token yet, the newest first (it is the one served, and
        it covers every earlier entry), one at a time; the number of tokens kept. The ``ledger.anchor`` job, so
        safe to run again: a checkpoint that has its token is never asked for again. Without a TSA, nothing.
        :class:`AnchorFailed` (logged and kept by the job) ends the run at the first failure: the TSA is
        likely down for the others too, and the next run tries again."""
        if self.timestamper is None:
            return 0
        with self.db.session() as session:
            rows = session.scalars(select(CheckpointRow).outerjoin(
                CheckpointTimestampRow, CheckpointTimestampRow.tree_size == CheckpointRow.tree_size).where(
                CheckpointTimestampRow.tree_size.is_(None)).order_by(CheckpointRow.tree_size.desc()).limit(limit))
            pending = [stored_checkpoint(row) for row in rows]
        added = 0
        for signed in pending:
            added += self.stamp(signed)
        if added:
            log.info("evidence log: %d checkpoint(s) anchored by the time-stamping authority (the newest: size %s)",
                     added, pending[0].checkpoint.tree_size)
        return added

    def entry(self, index: int) -> tuple[bytes, bytes]:
        """The exact public leaf bytes and leaf hash of leaf ``index``."""
        with self.db.session() as session:
            row = session.get(LeafRow, index)
            if row is None:
                raise LedgerError(f"no entry {index}")
            return bytes(row.leaf), bytes(row.leaf_hash)

    def listing(self, subject: str) -> list[tuple[int, str, str]]:
        """(index, kind, time of the event) of every entry about ``subject``, oldest first (private)."""
        with self.db.session() as session:
            rows = session.execute(select(OpeningRow.idx, OpeningRow.kind, OpeningRow.entry).where(
                OpeningRow.subject == subject).order_by(OpeningRow.idx)).all()
        return [(idx, kind, str(json.loads(bytes(entry))["at"])) for idx, kind, entry in rows]

    def opened(self, index: int) -> Opened:
        """Leaf ``index``'s opening (private); :class:`LedgerError` when it has none (no such leaf, or the start)."""
        with self.db.session() as session:
            row = session.get(OpeningRow, index)
            if row is None:
                raise LedgerError(f"no opening for entry {index}")
            return Opened(row.idx, row.kind, row.subject, Opening(bytes(row.entry), bytes(row.salt)), row.legacy_idx)

    def bundle(self, index: int, *, previous_log: bool = False) -> Bundle:
        """Entry ``index``'s proof bundle under the current checkpoint: its opening, its leaf, its audit path,
        and, with ``previous_log``, for an entry of the first log, its proof there: only for auditors and the
        lessor's staff, as its audit path holds unsalted hashes of other people's entries (the BFF decides)."""
        opened = self.opened(index)
        published = self.published()
        size = published.signed.checkpoint.tree_size
        raw, leaf = self.entry(index)
        proof = Inclusion(index, leaf, self.inclusion(index, size), published.signed)
        previous = None
        if previous_log and opened.legacy_idx is not None:
            previous = self.legacy.inclusion(opened.legacy_idx)
        return Bundle(opened.opening, raw, proof, previous, published.anchor)

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
        """Recompute the whole log and check it (:func:`contract.evidence_audit.audit_log`) — ``leaseline
        ledger verify``; ``extra``: checkpoints saved by an outside party, e.g. from the anchor file."""
        return audit_log(self, extra)


def _tag(item: Committed) -> str | None:
    if item.key:
        return f"key:{item.key}"
    return f"legacy:{item.legacy_idx}" if item.legacy_idx is not None else None

