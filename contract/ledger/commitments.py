"""What the public log holds: a salted commitment to each evidence entry, never the entry itself (PIPL).

The clear entry (:mod:`contract.ledger.entries`: kind, subject, time, data) says who applied, what was
decided and what was paid, so it stays in the contract service's private tables with a 32-byte random salt.
Together they are the entry's *opening*. The public leaf — the bytes hashed into the RFC 6962 tree — is only::

    {"commitment":"<64 hex>","v":2}     commitment = SHA-256(TAG ‖ salt ‖ clear entry)

with ``TAG`` = ``leaseline.cn/evidence/commitment/v1`` and a zero byte. The tag separates these hashes from
every other SHA-256 we compute (leaf and node hashes, document hashes); the salt has a fixed length, so
``salt ‖ entry`` splits one way only. Binding: another entry with the same commitment is a SHA-256 collision.
Hiding: with 256 unknown random bits in front, the commitment tells nothing about the entry, even one an
outsider could guess (an application id and "approve"); an unsalted hash of a guessable entry would not hide
it. Whoever is given the opening (the customer, the lessor, a court, an auditor) recomputes the commitment,
then the leaf hash and the root as before, and so proves the entry was logged; nobody else learns anything.

The leaf holds neither the kind nor a time: the kind would tell declines from approvals (a risk decision with
no contract after it) and count each kind of event; a time would let someone who knows when a person was at
the dealer pick out their leaves. What the log still shows is how many leaves were added and when (its
signed checkpoints carry their time), as any transparency log must.

The one other leaf is the first of a log, a *log start* statement (nothing personal in it: log facts only)::

    {"at":"…","origin":"leaseline.cn/evidence/v2","previous":<signed checkpoint or null>,
     "signature":"<base64 Ed25519>","statement":"log_start","v":2}

``previous`` is the final signed checkpoint of the log this one continues (size, root, time, signature, key),
so the two logs form one history without rewriting the old one; ``signature`` is the log key's Ed25519
signature over ``CONTEXT ‖`` the canonical JSON of the other fields. Every leaf is canonical JSON (sorted keys,
no spaces), so the same statement has one spelling and a reader can refuse anything else.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract.ledger.checkpoint import SignedCheckpoint
from contract.ledger.rfc3339 import format_utc
from contract.ledger.rfc3339 import parse_utc

LEAF_VERSION = 2
TAG = b"leaseline.cn/evidence/commitment/v1\x00"
SALT_SIZE = 32
#: what a log start's signature covers before its JSON, so it can never be taken for another signed message
CONTEXT = b"leaseline.cn/evidence/log-start/v1\n"
LOG_START = "log_start"
START_FIELDS = frozenset({"v", "statement", "origin", "at", "previous", "signature"})
COMMITMENT_LEAF = re.compile(rb'\{"commitment":"([0-9a-f]{64})","v":2\}')


def canonical(value: Mapping[str, Any]) -> bytes:
    """Sorted keys, no whitespace, UTF-8: the one spelling of a leaf (as :func:`~contract.ledger.encode_entry`)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def new_salt() -> bytes:
    """32 bytes from the operating system's CSPRNG: what makes a commitment hiding."""
    return secrets.token_bytes(SALT_SIZE)


def commit(entry: bytes, salt: bytes) -> bytes:
    """SHA-256(TAG ‖ salt ‖ entry): the commitment to one clear entry."""
    if len(salt) != SALT_SIZE:
        raise ValueError(f"a salt is {SALT_SIZE} bytes, not {len(salt)}")
    return hashlib.sha256(TAG + salt + entry).digest()


def commitment_leaf(commitment: bytes) -> bytes:
    """The public leaf bytes for a commitment: ``{"commitment":"<hex>","v":2}``."""
    if len(commitment) != 32:
        raise ValueError("a commitment is a 32-byte SHA-256 digest")
    return canonical({"commitment": commitment.hex(), "v": LEAF_VERSION})


def leaf_commitment(leaf: bytes) -> bytes | None:
    """The commitment a public leaf holds, or None when the leaf is not in the commitment format."""
    found = COMMITMENT_LEAF.fullmatch(leaf)
    return bytes.fromhex(found.group(1).decode()) if found else None


@dataclass(frozen=True)
class Opening:
    """A clear entry and its salt: what proves that a public leaf commits to this entry."""

    entry: bytes
    salt: bytes

    def leaf(self) -> bytes:
        """The public leaf this opening opens."""
        return commitment_leaf(commit(self.entry, self.salt))

    def opens(self, leaf: bytes) -> bool:
        """Whether ``leaf`` is exactly the commitment leaf of this entry and salt."""
        return len(self.salt) == SALT_SIZE and leaf == self.leaf()

    def to_json(self) -> dict[str, str]:
        return {"entry": base64.b64encode(self.entry).decode("ascii"), "salt": self.salt.hex()}


@dataclass(frozen=True)
class LogStart:
    """The first leaf of a log: its origin, when it started, the final checkpoint of the log it continues."""

    origin: str
    at: datetime
    previous: SignedCheckpoint | None
    signature: bytes

    def body(self) -> bytes:
        """The signed bytes: CONTEXT, then the canonical JSON of the statement without its signature."""
        return CONTEXT + canonical(self._fields())

    def _fields(self) -> dict[str, Any]:
        return {"v": LEAF_VERSION, "statement": LOG_START, "origin": self.origin, "at": format_utc(self.at),
                "previous": self.previous.to_json() if self.previous else None}

    def leaf(self) -> bytes:
        return canonical({**self._fields(), "signature": base64.b64encode(self.signature).decode("ascii")})

    def verify(self, public_key: Ed25519PublicKey) -> bool:
        """Whether the log key ``public_key`` signed this statement."""
        try:
            public_key.verify(self.signature, self.body())
        except InvalidSignature:
            return False
        return True


def log_start(origin: str, at: datetime, previous: SignedCheckpoint | None, key: Ed25519PrivateKey) -> LogStart:
    """The signed statement that starts the log ``origin`` (continuing ``previous``'s log, if any)."""
    unsigned = LogStart(origin, at, previous, b"")
    return LogStart(origin, at, previous, key.sign(unsigned.body()))


def read_log_start(leaf: bytes) -> LogStart:
    """The log start statement in ``leaf``; :class:`ValueError` for anything else or a non-canonical spelling."""
    try:
        data = json.loads(leaf.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ValueError(f"a log start is UTF-8 JSON: {exc}") from exc
    if not isinstance(data, dict) or data.keys() != START_FIELDS:
        raise ValueError(f"a log start has exactly the fields {', '.join(sorted(START_FIELDS))}")
    if data["v"] != LEAF_VERSION or data["statement"] != LOG_START:
        raise ValueError("not a version 2 log start statement")
    if not isinstance(data["origin"], str) or not isinstance(data["at"], str) or not isinstance(
            data["signature"], str):
        raise ValueError("origin, at and signature are strings")
    previous = data["previous"]
    if previous is not None and not isinstance(previous, dict):
        raise ValueError("previous is a signed checkpoint or null")
    try:
        signature = base64.b64decode(data["signature"], validate=True)
    except binascii.Error as exc:
        raise ValueError(f"the signature is not base64: {exc}") from exc
    start = LogStart(data["origin"], parse_utc(data["at"]),
                     SignedCheckpoint.from_json(previous) if previous is not None else None, signature)
    if start.leaf() != leaf:
        raise ValueError("the log start is not in canonical form")
    return start
