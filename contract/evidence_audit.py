"""The audit of the evidence log (``leaseline ledger verify``): everything recomputed from what is stored.

The public side as any transparency log (:func:`contract.ledger.verify_log`: each leaf against its stored hash,
every signed checkpoint, their consistency); the private side (:func:`contract.ledger.audit.verify_openings`:
each clear entry and salt still open the commitment in its leaf); the start statement (signed by the log key,
naming the first log's final checkpoint as stored); and the first log committed again, each entry once with
its exact bytes (its leaf hash there).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from sqlalchemy import select

from contract.db.models import CheckpointRow
from contract.db.models import LeafRow
from contract.db.models import OpeningRow
from contract.ledger import Report
from contract.ledger import SignedCheckpoint
from contract.ledger import leaf_hash
from contract.ledger import verify_log
from contract.ledger.audit import verify_openings
from contract.ledger.commitments import Opening
from contract.ledger.commitments import read_log_start
from contract.legacy_log import stored_checkpoint

if TYPE_CHECKING:
    from contract.evidence import EvidenceLog


def audit_log(log: EvidenceLog, extra: Sequence[SignedCheckpoint] = ()) -> Report:
    """Recompute the whole log from the stored leaf bytes and check every stored checkpoint (and ``extra``
    ones, e.g. a checkpoint saved by an outside party); check that every opening still opens its leaf,
    that leaf 0 is our signed start statement naming the first log's final checkpoint, and that every entry
    of the first log is committed here with its exact bytes — ``leaseline ledger verify``."""
    with log.db.session() as session:
        rows = session.execute(select(LeafRow.leaf, LeafRow.leaf_hash).order_by(LeafRow.idx)).all()
        stored = [stored_checkpoint(r)
                  for r in session.scalars(select(CheckpointRow).order_by(CheckpointRow.tree_size))]
        openings = [(r.idx, Opening(bytes(r.entry), bytes(r.salt)), r.legacy_idx)
                    for r in session.scalars(select(OpeningRow).order_by(OpeningRow.idx))]
    leaves = [bytes(r[0]) for r in rows]
    checkpoints = sorted([*stored, *extra], key=lambda c: (c.checkpoint.tree_size, c.checkpoint.timestamp))
    report = verify_log(leaves, [bytes(r[1]) for r in rows], checkpoints, log.public_key)
    problems, bad = list(report.problems), []
    bad += verify_openings(leaves, [(i, o) for i, o, _ in openings], problems)
    bad += check_start(log, leaves, problems)
    bad += check_recommitted(log, openings, problems)
    first_bad = min([*bad, *([report.first_bad_index] if report.first_bad_index is not None else [])],
                    default=None)
    return Report(not problems, report.tree_size, first_bad, problems, report.checked_checkpoints)


def check_start(log: EvidenceLog, leaves: Sequence[bytes], problems: list[str]) -> list[int]:
    """Leaf 0 is the log start statement, signed by the log key, naming the first log's final checkpoint."""
    if not leaves:
        return []
    try:
        statement = read_log_start(leaves[0])
    except ValueError as exc:
        problems.append(f"entry 0: not a log start statement ({exc})")
        return [0]
    if not statement.verify(log.public_key):
        problems.append("entry 0: the log start statement's signature does not hold for the log's key")
        return [0]
    final = log.legacy.final_checkpoint(sign_missing=False)
    if log.legacy.size() and final is None:
        problems.append("the first log has no signed checkpoint of its full size")
    if (statement.previous.to_json() if statement.previous else None) != (final.to_json() if final else None):
        problems.append("entry 0: the log start does not name the first log's final checkpoint")
        return [0]
    return []


def check_recommitted(log: EvidenceLog, openings: Sequence[tuple[int, Opening, int | None]],
                       problems: list[str]) -> list[int]:
    """Each entry of the first log is committed here once, with its exact bytes (by its leaf hash there)."""
    legacy = log.legacy.tree()
    bad = []
    seen = set()
    for idx, opening, old in openings:
        if old is None:
            continue
        seen.add(old)
        if not 0 <= old < len(legacy) or leaf_hash(opening.entry) != legacy.leaf_hash(old):
            problems.append(f"entry {idx}: not the first log's entry {old} it says it commits again")
            bad.append(idx)
    if len(seen) != len(legacy):
        problems.append(f"{len(legacy) - len(seen)} entries of the first log are not committed into this one")
    return bad

