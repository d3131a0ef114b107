"""Moving the first evidence log into the commitment log: ``leaseline ledger migrate``, once, before the new
contract service starts (README, "Evidence log", for the deploy order).

The move (:func:`migrate`) writes leaf 0, the start statement naming the first log's final checkpoint, commits
every entry of the first log again in index order (same clear bytes, a fresh salt, the same idempotency key,
``legacy_idx`` naming where it was) in batches of one transaction each, renumbers the signature rows of old
contracts to their entries in the new log, and signs one checkpoint at the end, which the anchors publish.

It is idempotent (an entry already committed, by its first-log index, is not committed twice; a finished move
finds nothing to do) and resumable (a run stopped midway leaves a prefix of the first log committed, and the next
run continues after it). The renumbering happens in the transaction of the last batch, so "the first log's last
entry is committed" means the whole move is done: that is what every contract process checks when it starts
(:meth:`contract.evidence.EvidenceLog.start`, three index reads), refusing to start before.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import literal
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Session

from contract.db.models import OpeningRow
from contract.db.models import SignatureRow
from contract.evidence import Committed
from contract.evidence import EvidenceLog
from contract.ledger import SignedCheckpoint
from contract.ledger.commitments import Opening
from contract.ledger.commitments import new_salt

log = logging.getLogger(__name__)
BATCH = 500  # old entries per transaction


@dataclass(frozen=True)
class Migrated:
    """What one run did: ``started`` it wrote the start statement, ``recommitted`` old entries committed by it,
    ``checkpoint`` the one checkpoint signed at its end (None: nothing was left to move)."""

    started: bool
    recommitted: int
    checkpoint: SignedCheckpoint | None
    first_log_size: int


def migrate(evidence: EvidenceLog, batch: int = BATCH) -> Migrated:
    """Move the first log into ``evidence`` (see the module's docstring); safe to run again, and beside another
    run. Without a first log there is nothing to move: only the start statement, as any start writes it."""
    progress = evidence.progress()
    if progress.first_log_last is None:
        evidence.start()
        return Migrated(not progress.started, 0, None, 0)
    size = progress.first_log_last + 1
    if not progress.unmoved:
        return Migrated(False, 0, None, size)
    started = False
    if not progress.started:
        started = evidence.write_start(evidence.legacy.final_checkpoint(), sign_checkpoint=False)
    moved = 0
    after = -1 if progress.moved_last is None else progress.moved_last
    while entries := evidence.legacy.entries_after(after, batch):
        last = entries[-1].idx == progress.first_log_last  # the database refuses new first-log entries (0004)
        appended = evidence.commit(
            [Committed(e.kind, e.subject, Opening(e.entry, new_salt()), e.idempotency_key, e.idx) for e in entries],
            sign_checkpoint=False, also=renumber_signatures if last else None)
        moved += sum(a.created for a in appended)
        after = entries[-1].idx
    checkpoint = evidence.checkpoint()
    log.info("evidence log %s: the first log's %s entries are committed into it (%s by this run), checkpoint %s",
             evidence.origin, size, moved, checkpoint.checkpoint.tree_size)
    return Migrated(started, moved, checkpoint, size)


def renumber_signatures(session: Session) -> None:
    """Point each old contract's signature rows at its ``contract_signed`` entry in the new log, in one UPDATE.
    The entry is found by the idempotency key the contract service has always given it, ``contract_signed:<contract
    id>`` (contract/service.py), and a re-committed entry keeps its key, so running it again changes nothing."""
    moved = (select(OpeningRow.idx)
             .where(OpeningRow.legacy_idx.is_not(None),
                    OpeningRow.idempotency_key == literal("contract_signed:").concat(SignatureRow.contract_id))
             .scalar_subquery())
    session.execute(update(SignatureRow).where(moved.is_not(None)).values(ledger_index=moved))
