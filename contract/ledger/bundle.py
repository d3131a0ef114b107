"""A proof bundle: everything a court or an auditor needs to check one evidence entry offline.

The bundle is one JSON object (``format`` = :data:`FORMAT`)::

    {"format": "leaseline.cn/evidence-bundle/v1", "index": 12,
     "opening": {"entry": "<base64 clear entry>", "salt": "<64 hex>"},
     "content": {…the clear entry, decoded, for reading; the bytes in opening.entry are what count…},
     "leaf": "<base64 public leaf>", "leaf_hash": "<64 hex>",
     "inclusion": {"tree_size": 40, "audit_path": ["<64 hex>", …]},
     "checkpoint": {"origin": …, "tree_size": 40, "root_hash": …, "timestamp": …, "signature": …, "public_key": …,
                    "anchored": true, "anchor": {"token": "<base64 RFC 3161 token>", "gen_time": …} or null},
     "previous_log": null or {"index": 7, "leaf_hash": …, "inclusion": {…}, "checkpoint": {…}}}

Checking it needs SHA-256, Ed25519 and the log's public key (published by the lessor), nothing of ours:

1. commitment = SHA-256("leaseline.cn/evidence/commitment/v1" ‖ 0x00 ‖ salt ‖ entry), and ``leaf`` must be
   exactly ``{"commitment":"<hex of it>","v":2}``;
2. leaf_hash = SHA-256(0x00 ‖ leaf) (RFC 6962 §2.1);
3. the audit path leads from leaf_hash at ``index`` to the checkpoint's root (RFC 9162 §2.1.3.2) and the
   checkpoint's tree size is the proof's;
4. the checkpoint's Ed25519 signature holds over its body (C2SP tlog-checkpoint text plus a ``timestamp`` line,
   :mod:`contract.ledger.checkpoint`) with the log's key;
5. with the TSA's root certificate, the checkpoint's anchor: an RFC 3161 token whose message imprint is SHA-256 of
   that body, signed by the TSA, its genTime close to the checkpoint's time (:mod:`contract.ledger.timestamps`).
   A bundle made before anchoring, or while the TSA was down, has ``"anchored": false`` (or no such field).

An entry logged before the log held commitments (the first log, whose entries were public in clear) also carries
``previous_log``: SHA-256(0x00 ‖ entry) is its leaf hash in that log, proven the same way under that log's final
signed checkpoint, which the new log's first leaf names. It shows the entry was logged when it happened, not
only when it was committed again.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract.ledger.checkpoint import SignedCheckpoint
from contract.ledger.checkpoint import verify
from contract.ledger.commitments import Opening
from contract.ledger.merkle import leaf_hash
from contract.ledger.merkle import verify_inclusion
from contract.ledger.timestamps import AnchoredCheckpoint
from contract.ledger.timestamps import TimestampToken
from contract.ledger.timestamps import verify_timestamp

FORMAT = "leaseline.cn/evidence-bundle/v1"
HEX_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Inclusion:
    """A leaf hash at ``index`` proven in the tree of ``checkpoint`` by ``audit_path``."""

    index: int
    leaf_hash: bytes
    audit_path: Sequence[bytes]
    checkpoint: SignedCheckpoint

    def holds(self, public_key: Ed25519PublicKey) -> list[str]:
        """What is wrong with this proof (nothing: an empty list)."""
        problems = []
        size, root = self.checkpoint.checkpoint.tree_size, self.checkpoint.checkpoint.root_hash
        if not verify_inclusion(self.leaf_hash, self.index, size, self.audit_path, root):
            problems.append(f"the audit path does not lead from leaf {self.index} to the root of the tree of size "
                            f"{size}")
        if not verify(self.checkpoint, public_key):
            problems.append("the checkpoint's signature does not hold for the log's key")
        return problems

    def to_json(self) -> dict[str, Any]:
        return {"tree_size": self.checkpoint.checkpoint.tree_size,
                "audit_path": [h.hex() for h in self.audit_path]}


@dataclass(frozen=True)
class Bundle:
    """One entry's opening, its public leaf and its inclusion proofs (this log, and the first log if it was there),
    and the RFC 3161 anchor of this log's checkpoint when it has one."""

    opening: Opening
    leaf: bytes
    proof: Inclusion
    previous: Inclusion | None = None
    anchor: TimestampToken | None = None

    def to_json(self) -> dict[str, Any]:
        """The bundle as a JSON object (see the module's description)."""
        try:
            content: Any = json.loads(self.opening.entry.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            content = None
        previous = None
        if self.previous is not None:
            previous = {"index": self.previous.index, "leaf_hash": self.previous.leaf_hash.hex(),
                        "inclusion": self.previous.to_json(), "checkpoint": self.previous.checkpoint.to_json()}
        return {"format": FORMAT, "index": self.proof.index, "opening": self.opening.to_json(), "content": content,
                "leaf": base64.b64encode(self.leaf).decode("ascii"), "leaf_hash": self.proof.leaf_hash.hex(),
                "inclusion": self.proof.to_json(),
                "checkpoint": AnchoredCheckpoint(self.proof.checkpoint, self.anchor).to_json(),
                "previous_log": previous}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Bundle:
        """Read :meth:`to_json`'s object back; :class:`ValueError` names what is missing or malformed."""
        if not isinstance(data, Mapping) or data.get("format") != FORMAT:
            raise ValueError(f"not an evidence bundle (format {FORMAT})")
        opening = _object(data, "opening")
        salt = _hash(opening, "salt")
        entry = _base64(opening, "entry")
        proof, anchor = _inclusion(data, _int(data, "index"), _hash(data, "leaf_hash"))
        previous = None
        if data.get("previous_log") is not None:
            old = _object(data, "previous_log")
            previous, _ = _inclusion(old, _int(old, "index"), _hash(old, "leaf_hash"))
        return cls(Opening(entry, salt), _base64(data, "leaf"), proof, previous, anchor)


def verify_bundle(bundle: Bundle, public_key: Ed25519PublicKey,
                  tsa_roots: Sequence[x509.Certificate] | None = None) -> list[str]:
    """Every problem with ``bundle`` against the log key ``public_key``; an empty list means it proves that its
    clear entry was logged (and, with a previous log's proof, logged there too). With ``tsa_roots`` (the TSA's
    root certificates), the checkpoint must also carry an RFC 3161 token that holds (:func:`verify_timestamp`)."""
    problems = []
    if not bundle.opening.opens(bundle.leaf):
        problems.append("the opening (entry and salt) does not hash to the commitment in the leaf")
    if leaf_hash(bundle.leaf) != bundle.proof.leaf_hash:
        problems.append("the leaf hash is not SHA-256(0x00 ‖ leaf)")
    problems += bundle.proof.holds(public_key)
    if bundle.previous is not None:
        if leaf_hash(bundle.opening.entry) != bundle.previous.leaf_hash:
            problems.append("previous log: the entry does not hash to the leaf hash given")
        problems += [f"previous log: {p}" for p in bundle.previous.holds(public_key)]
    if tsa_roots is not None:
        if bundle.anchor is None:
            problems.append("the checkpoint carries no RFC 3161 timestamp (not anchored)")
        else:
            problems += [f"timestamp: {p}" for p in verify_timestamp(bundle.proof.checkpoint, bundle.anchor.token,
                                                                     tsa_roots)]
    return problems


def _inclusion(data: Mapping[str, Any], index: int, leaf: bytes) -> tuple[Inclusion, TimestampToken | None]:
    inclusion = _object(data, "inclusion")
    path = inclusion.get("audit_path")
    if not isinstance(path, list):
        raise ValueError("inclusion.audit_path must be a list of hex hashes")
    hashes = [_hash({"hash": h}, "hash") for h in path]
    published = AnchoredCheckpoint.from_json(_object(data, "checkpoint"))
    checkpoint = published.signed
    if _int(inclusion, "tree_size") != checkpoint.checkpoint.tree_size:
        raise ValueError("the proof's tree size is not the checkpoint's")
    return Inclusion(index, leaf, hashes, checkpoint), published.anchor


def _object(data: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = data.get(name)
    if not isinstance(value, Mapping):
        raise ValueError(f"{name} must be a JSON object")
    return value


def _int(data: Mapping[str, Any], name: str) -> int:
    value = data.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number")
    return value


def _hash(data: Mapping[str, Any], name: str) -> bytes:
    value = data.get(name)
    if not isinstance(value, str) or not HEX_HASH.fullmatch(value):
        raise ValueError(f"{name} must be 64 lower-case hex digits")
    return bytes.fromhex(value)


def _base64(data: Mapping[str, Any], name: str) -> bytes:
    value = data.get(name)
    if not isinstance(value, str):
        raise ValueError(f"{name} must be base64")
    try:
        return base64.b64decode(value, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"{name} is not base64: {exc}") from exc
