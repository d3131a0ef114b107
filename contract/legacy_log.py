"""The first evidence log, frozen: its entries were public in clear, so they are no longer served to anyone.

Until migration 0003 every entry (application id, amounts, Stripe intent ids, credit decisions) was a public
leaf. Rewriting that history would break every checkpoint already published, so the first log stays exactly as
it is, in its own tables, and nothing writes to it again. The new log (:class:`contract.evidence.EvidenceLog`)
continues it:

* its first leaf is a statement signed by the log key naming this log's final signed checkpoint (size, root
  hash, time, signature), so both logs form one history that anyone can follow from the public side;
* every entry of this log is committed again into the new one, in order (same clear bytes, a fresh salt,
  ``legacy_idx`` naming where it was), so an old contract's public check works like a new one and an old
  entry's proof bundle carries both proofs: the new log's, and this log's under its final checkpoint, which
  was published when the entry was logged.

Re-committing is a one-off command, ``leaseline ledger migrate`` (:mod:`contract.legacy_migration`: idempotent,
one ``legacy_idx`` each, and resumable), run before the new contract service starts; every process of the service
checks that it was done (:meth:`contract.evidence.EvidenceLog.start`) and refuses to start otherwise, so all of it
is done before anything new is appended. From contract migration 0004 on the database refuses any new entry here.
``leaseline ledger verify`` audits this log as before (:meth:`LegacyLog.audit`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import func
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from contract.db.models import CheckpointRow
from contract.db.models import LegacyCheckpointRow
from contract.db.models import LegacyEntryRow
from contract.ledger import Checkpoint
from contract.ledger import MerkleTree
from contract.ledger import Report
from contract.ledger import SignedCheckpoint
from contract.ledger import sign
from contract.ledger import verify_log
from contract.ledger.bundle import Inclusion
from infra.db.engine import Database


@dataclass(frozen=True)
class LegacyEntry:
    """One entry of the first log, as it is re-committed into the new one."""

    idx: int
    entry: bytes
    kind: str
    subject: str
    idempotency_key: str | None


class LegacyLog:
    """Read-only access to the first log: its size, final checkpoint, entries not yet re-committed, proofs."""

    def __init__(self, db: Database, key: Ed25519PrivateKey, origin: str,
                 clock: Callable[[], datetime]) -> None:
        self.db, self.key, self.origin, self.clock = db, key, origin, clock
        self._tree: MerkleTree | None = None
        self._lock = threading.Lock()

    def size(self) -> int:
        with self.db.session() as session:
            return int(session.scalar(select(func.count()).select_from(LegacyEntryRow)) or 0)

    def final_checkpoint(self, *, sign_missing: bool = True) -> SignedCheckpoint | None:
        """The signed checkpoint of the whole first log, None when it is empty. Every append signed one, so it is
        normally stored; if the last one never was (a crash in between), it is signed now, as it stands, unless
        ``sign_missing`` is false (an audit only reads)."""
        size = self.size()
        if size == 0:
            return None
        with self.db.session() as session:
            row = session.get(LegacyCheckpointRow, size)
            if row is not None:
                return stored_checkpoint(row)
            if not sign_missing:
                return None
            latest = session.scalar(select(LegacyCheckpointRow).order_by(LegacyCheckpointRow.tree_size.desc()))
            origin = latest.origin if latest is not None else self.origin
        tree = self.tree()
        made = sign(Checkpoint(origin, size, tree.root(size), self.clock()), self.key)
        try:
            with self.db.session() as session:
                session.add(LegacyCheckpointRow(tree_size=size, root_hash=made.checkpoint.root_hash,
                                                timestamp=made.checkpoint.timestamp, origin=origin,
                                                signature=made.signature, public_key=made.public_key))
        except IntegrityError:  # another process signed it at the same moment: theirs stands
            with self.db.session() as session:
                row = session.get(LegacyCheckpointRow, size)
                assert row is not None
                return stored_checkpoint(row)
        return made

    def entries_after(self, after: int, limit: int = 500) -> list[LegacyEntry]:
        """The next ``limit`` entries after index ``after``, in log order (to re-commit them)."""
        with self.db.session() as session:
            rows = session.scalars(select(LegacyEntryRow).where(LegacyEntryRow.idx > after)
                                   .order_by(LegacyEntryRow.idx).limit(limit)).all()
            return [LegacyEntry(r.idx, bytes(r.entry), r.kind, r.subject, r.idempotency_key) for r in rows]

    def tree(self) -> MerkleTree:
        """The frozen tree over the stored leaf hashes (built once: nothing is appended any more)."""
        with self._lock:
            if self._tree is None:
                with self.db.session() as session:
                    leaves = session.scalars(select(LegacyEntryRow.leaf_hash).order_by(LegacyEntryRow.idx)).all()
                self._tree = MerkleTree(bytes(leaf) for leaf in leaves)
            return self._tree

    def inclusion(self, index: int) -> Inclusion | None:
        """Entry ``index``'s proof under the final checkpoint (for entitled parties only: the audit path holds
        unsalted hashes of other people's entries). A read: the move signed a missing final checkpoint already."""
        final = self.final_checkpoint(sign_missing=False)
        tree = self.tree()
        if final is None or not 0 <= index < final.checkpoint.tree_size <= len(tree):
            return None
        with self.db.session() as session:
            row = session.get(LegacyEntryRow, index)
            assert row is not None
            leaf = bytes(row.leaf_hash)
        return Inclusion(index, leaf, tree.inclusion_proof(index, final.checkpoint.tree_size), final)

    def audit(self, extra: Sequence[SignedCheckpoint] = ()) -> Report:
        """Recompute the first log from its stored entry bytes and check all its checkpoints (and ``extra``
        ones of its origin) — as ``leaseline ledger verify`` always did."""
        with self.db.session() as session:
            rows = session.execute(select(LegacyEntryRow.entry, LegacyEntryRow.leaf_hash).order_by(
                LegacyEntryRow.idx)).all()
            stored = [stored_checkpoint(r) for r in session.scalars(select(LegacyCheckpointRow)
                                                          .order_by(LegacyCheckpointRow.tree_size))]
        checkpoints = sorted([*stored, *extra], key=lambda c: (c.checkpoint.tree_size, c.checkpoint.timestamp))
        return verify_log([bytes(r[0]) for r in rows], [bytes(r[1]) for r in rows], checkpoints,
                          self.key.public_key())

    def origins(self) -> set[str]:
        """The origins the first log's checkpoints name (to route a saved checkpoint to the right log)."""
        with self.db.session() as session:
            return set(session.scalars(select(LegacyCheckpointRow.origin).distinct())) | {self.origin}


def stored_checkpoint(row: LegacyCheckpointRow | CheckpointRow) -> SignedCheckpoint:
    """The signed checkpoint a stored row holds (either log's checkpoint table)."""
    return SignedCheckpoint(Checkpoint(row.origin, row.tree_size, bytes(row.root_hash), row.timestamp),
                            bytes(row.signature), bytes(row.public_key))
