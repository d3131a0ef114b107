"""The pure core of ``leaseline ledger verify``: re-derive the whole log from its stored entry bytes and hold
it against the stored leaf hashes and every signed checkpoint.

The entry bytes are the evidence, so everything is recomputed from them. The stored leaf hashes locate an
edit exactly when only the entry was changed; the signed checkpoints still catch an edit made together with
its leaf hash, but can only bound where it is (between the last checkpoint that still matches and the first
that no longer does), since a root does not say which leaf changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from itertools import pairwise

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract.ledger.checkpoint import SignedCheckpoint
from contract.ledger.checkpoint import verify
from contract.ledger.commitments import Opening
from contract.ledger.merkle import MerkleTree
from contract.ledger.merkle import leaf_hash
from contract.ledger.merkle import verify_consistency

#: How many further mismatching entries a report lists by index before only counting them.
LISTED = 10


@dataclass(frozen=True)
class Report:
    """The verdict on a log of ``tree_size`` entries. ``first_bad_index`` is the first entry known to be
    changed or missing, or, when only a checkpoint betrays the change, the lowest index it can be at.
    ``checked_checkpoints`` counts the checkpoints examined, whatever their outcome."""

    ok: bool
    tree_size: int
    first_bad_index: int | None
    problems: list[str]
    checked_checkpoints: int


@dataclass(frozen=True)
class Trusted:
    """A checkpoint whose signature verified, with its position in the list given (to name it)."""

    position: int
    signed: SignedCheckpoint

    @property
    def size(self) -> int:
        return self.signed.checkpoint.tree_size

    def name(self) -> str:
        return f"checkpoint {self.position} (size {self.size})"


def verify_log(
    entries: Sequence[bytes],
    stored_leaf_hashes: Sequence[bytes],
    checkpoints: Sequence[SignedCheckpoint],
    public_key: Ed25519PublicKey,
) -> Report:
    """Check that every entry still hashes to its stored leaf hash, that every checkpoint is signed by
    ``public_key`` and commits to the log's current first ``tree_size`` entries, that each later checkpoint
    provably extends the earlier one, and that the checkpoints come in log order."""
    problems: list[str] = []
    recomputed = [leaf_hash(entry) for entry in entries]
    tree = MerkleTree(recomputed)
    known_bad = check_leaves(recomputed, stored_leaf_hashes, problems)
    check_order(checkpoints, problems)
    trusted = check_signatures(checkpoints, public_key, problems)
    matching: list[int] = []
    mismatching: list[Trusted] = []
    for item in trusted:
        if item.size > len(entries):
            problems.append(f"{item.name()}: the log holds only {len(entries)} entries; "
                            f"entries from index {len(entries)} on were removed")
            known_bad.append(len(entries))
        elif tree.root(item.size) != item.signed.checkpoint.root_hash:
            problems.append(f"{item.name()}: the first {item.size} entries no longer hash to its signed root")
            mismatching.append(item)
        else:
            matching.append(item.size)
    fitting = [item for item in trusted if item.size <= len(entries)]
    check_consistency(tree, fitting, {item.position for item in mismatching}, problems)
    first_bad = min(known_bad, default=None)
    unexplained = [item for item in mismatching if first_bad is None or first_bad >= item.size]
    if unexplained:
        first_bad = locate_rewrite(min(unexplained, key=lambda item: item.size), matching, problems)
    return Report(not problems, len(entries), first_bad, problems, len(checkpoints))


def check_leaves(recomputed: Sequence[bytes], stored: Sequence[bytes], problems: list[str]) -> list[int]:
    """Compare each recomputed leaf hash with the stored one; returns the indexes known to be bad."""
    bad = [index for index, (mine, theirs) in enumerate(zip(recomputed, stored, strict=False)) if mine != theirs]
    if bad:
        problems.append(f"entry {bad[0]}: its stored bytes no longer hash to its stored leaf hash")
    if len(bad) > 1:
        listed = ", ".join(str(index) for index in bad[1 : LISTED + 1])
        more = " …" if len(bad) > LISTED + 1 else ""
        problems.append(f"{len(bad) - 1} later entries no longer match their stored leaf hashes either: {listed}{more}")
    if len(stored) != len(recomputed):
        problems.append(f"the log holds {len(recomputed)} entries but {len(stored)} stored leaf hashes; "
                        f"from index {min(len(stored), len(recomputed))} on they have no counterpart")
        bad.append(min(len(stored), len(recomputed)))
    return bad


def check_order(checkpoints: Sequence[SignedCheckpoint], problems: list[str]) -> None:
    """A log only grows and time only moves on: a later checkpoint with a smaller size or an earlier time is a
    rollback (or the list was not given in log order)."""
    for position in range(1, len(checkpoints)):
        before, after = checkpoints[position - 1].checkpoint, checkpoints[position].checkpoint
        if after.tree_size < before.tree_size:
            problems.append(f"checkpoint {position} (size {after.tree_size}) is smaller than "
                            f"checkpoint {position - 1} before it (size {before.tree_size})")
        if after.timestamp < before.timestamp:
            problems.append(f"checkpoint {position} is dated before checkpoint {position - 1}")


def check_signatures(
    checkpoints: Sequence[SignedCheckpoint], public_key: Ed25519PublicKey, problems: list[str]
) -> list[Trusted]:
    """The checkpoints signed by the log's key; the others are reported and prove nothing about the log."""
    trusted: list[Trusted] = []
    for position, signed in enumerate(checkpoints):
        if verify(signed, public_key):
            trusted.append(Trusted(position, signed))
        else:
            problems.append(f"checkpoint {position} (size {signed.checkpoint.tree_size}): "
                            "its signature does not verify with the log's public key")
    return trusted


def check_consistency(
    tree: MerkleTree, trusted: Sequence[Trusted], stale: set[int], problems: list[str]
) -> None:
    """Each checkpoint must extend the one before it in size: prove it from the log and verify the proof
    against both signed roots (two roots signed for one size must be equal, else the log showed a split view).

    A failure says something new only while the newer checkpoint still matches the log: then the log signed
    a history that does not extend the older signed one (it was rewritten and signed again). Once the newer
    root is ``stale`` (no longer matches), a proof built from the changed log fails for that reason alone,
    already reported, so the pair is skipped.
    """
    chain = sorted(trusted, key=lambda item: item.size)
    for older, newer in pairwise(chain):
        if older.size == 0 or newer.position in stale:
            continue  # every tree extends the empty one; a stale newer root is reported already
        proof = tree.consistency_proof(older.size, newer.size)
        if not verify_consistency(older.size, newer.size, older.signed.checkpoint.root_hash,
                                  newer.signed.checkpoint.root_hash, proof):
            problems.append(f"{newer.name()} is not consistent with {older.name()}: the history it signs does not "
                            f"extend the one signed at size {older.size}, so the log was rewritten and signed again")


def locate_rewrite(first: Trusted, matching: Sequence[int], problems: list[str]) -> int:
    """Bound an edit that left the stored leaf hashes consistent: it lies after the largest smaller size whose
    checkpoint still matches and before the size of the first checkpoint that no longer does."""
    start = max((size for size in matching if size < first.size), default=0)
    problems.append(f"entries {start}..{first.size - 1}: changed together with their stored leaf hashes "
                    f"(only {first.name()} shows it); the first changed entry is at index {start} or later")
    return start


def verify_openings(leaves: Sequence[bytes], openings: Sequence[tuple[int, Opening]], problems: list[str]) -> list[int]:
    """The private side of a commitment log: each opening (index, clear entry and salt) must open its leaf
    exactly, and every leaf after the first (the log start statement) must have one, or the entry it commits to
    can no longer be shown to anyone. Returns the indexes found bad; their problems go to ``problems``."""
    bad = []
    have = set()
    for index, opening in openings:
        have.add(index)
        if not 0 < index < len(leaves) or not opening.opens(leaves[index]):
            bad.append(index)
    if bad:
        listed = ", ".join(str(index) for index in bad[:LISTED])
        more = " …" if len(bad) > LISTED else ""
        problems.append(f"{len(bad)} private entries no longer match the commitments in their public leaves: "
                        f"entry {listed}{more}")
    missing = [index for index in range(1, len(leaves)) if index not in have]
    if missing:
        problems.append(f"{len(missing)} public leaves have no private entry (nothing left to prove them with): "
                        f"entry {', '.join(str(i) for i in missing[:LISTED])}{' …' if len(missing) > LISTED else ''}")
    return bad + missing
