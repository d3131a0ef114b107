"""Signed checkpoints: the log's Ed25519-signed statement "my first ``tree_size`` entries have this root".

The signed bytes are a C2SP tlog-checkpoint body (https://c2sp.org/tlog-checkpoint) with one extension line::

    leaseline.example/contract-evidence     <- origin: names the log, so a signature cannot serve another log
    8                                       <- tree size, ASCII decimal
    XcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=   <- root hash, standard base64
    timestamp 2025-01-02T03:04:05.000000Z   <- extension line: when it was signed, RFC 3339 UTC (rfc3339.py)

each line ending in ``\\n``. A C2SP signed note's Ed25519 signature is over exactly this note text, so a
checkpoint can later be published as a signed note without signing it again.
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from contract.ledger.merkle import check_hash
from contract.ledger.rfc3339 import format_utc
from contract.ledger.rfc3339 import parse_utc

SIGNATURE_SIZE = 64
PUBLIC_KEY_SIZE = 32
JSON_FIELDS = frozenset({"origin", "tree_size", "root_hash", "timestamp", "signature", "public_key"})
HEX_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Checkpoint:
    """A tree head: the log named ``origin`` had ``root_hash`` over its first ``tree_size`` entries at
    ``timestamp`` (stored in UTC; a naive datetime is refused)."""

    origin: str
    tree_size: int
    root_hash: bytes
    timestamp: datetime

    def __post_init__(self) -> None:
        if not self.origin or any(unicodedata.category(char) == "Cc" for char in self.origin):
            raise ValueError("the origin must be a non-empty line without control characters")
        if isinstance(self.tree_size, bool) or not isinstance(self.tree_size, int) or self.tree_size < 0:
            raise ValueError(f"the tree size must be a non-negative integer, not {self.tree_size!r}")
        check_hash(self.root_hash, "the root hash")
        object.__setattr__(self, "timestamp", parse_utc(format_utc(self.timestamp)))

    def body(self) -> bytes:
        """The bytes that are signed: the C2SP checkpoint body plus the timestamp extension line."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        return f"{self.origin}\n{self.tree_size}\n{root}\ntimestamp {format_utc(self.timestamp)}\n".encode()


@dataclass(frozen=True)
class SignedCheckpoint:
    """A checkpoint with its Ed25519 signature over :meth:`Checkpoint.body` and the raw 32-byte public key
    that made it (carried for the reader's convenience; :func:`verify` trusts only the key it is given)."""

    checkpoint: Checkpoint
    signature: bytes
    public_key: bytes

    def __post_init__(self) -> None:
        if len(self.signature) != SIGNATURE_SIZE:
            raise ValueError(f"an Ed25519 signature is {SIGNATURE_SIZE} bytes, not {len(self.signature)}")
        if len(self.public_key) != PUBLIC_KEY_SIZE:
            raise ValueError(f"a raw Ed25519 public key is {PUBLIC_KEY_SIZE} bytes, not {len(self.public_key)}")

    def to_json(self) -> dict[str, str | int]:
        """The JSON object (a dict ready for ``json.dumps``): hex root, RFC 3339 timestamp, base64 signature/key."""
        return {
            "origin": self.checkpoint.origin,
            "tree_size": self.checkpoint.tree_size,
            "root_hash": self.checkpoint.root_hash.hex(),
            "timestamp": format_utc(self.checkpoint.timestamp),
            "signature": base64.b64encode(self.signature).decode("ascii"),
            "public_key": base64.b64encode(self.public_key).decode("ascii"),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> SignedCheckpoint:
        """Read :meth:`to_json`'s object back, refusing missing or extra fields and non-canonical spellings."""
        if data.keys() != JSON_FIELDS:
            missing, extra = sorted(JSON_FIELDS - data.keys()), sorted(data.keys() - JSON_FIELDS)
            raise ValueError(f"a signed checkpoint needs exactly its six fields (missing {missing}, extra {extra})")
        tree_size = data["tree_size"]
        if isinstance(tree_size, bool) or not isinstance(tree_size, int):
            raise ValueError("tree_size must be a JSON integer")
        root_hash = text_field(data, "root_hash")
        if not HEX_HASH.fullmatch(root_hash):
            raise ValueError("root_hash must be 64 lower-case hex digits")
        checkpoint = Checkpoint(
            origin=text_field(data, "origin"),
            tree_size=tree_size,
            root_hash=bytes.fromhex(root_hash),
            timestamp=parse_utc(text_field(data, "timestamp")),
        )
        return cls(checkpoint, base64_field(data, "signature"), base64_field(data, "public_key"))


def text_field(data: Mapping[str, object], name: str) -> str:
    value = data[name]
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a JSON string")
    return value


def base64_field(data: Mapping[str, object], name: str) -> bytes:
    """Standard base64 with padding, and only its one spelling of the bytes (no stray bits or whitespace)."""
    text = text_field(data, name)
    try:
        value = base64.b64decode(text, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"{name} is not standard base64: {exc}") from exc
    if base64.b64encode(value).decode("ascii") != text:
        raise ValueError(f"{name} is not in canonical base64")
    return value


def sign(checkpoint: Checkpoint, private_key: Ed25519PrivateKey) -> SignedCheckpoint:
    """Sign ``checkpoint``'s body with the log's key."""
    signature = private_key.sign(checkpoint.body())
    return SignedCheckpoint(checkpoint, signature, private_key.public_key().public_bytes_raw())


def verify(signed: SignedCheckpoint, public_key: Ed25519PublicKey) -> bool:
    """Whether ``signed`` was signed by ``public_key`` and names that key: any change to the origin, size, root
    or timestamp, or a signature by another key, gives ``False``."""
    if signed.public_key != public_key.public_bytes_raw():
        return False
    try:
        public_key.verify(signed.signature, signed.checkpoint.body())
    except InvalidSignature:
        return False
    return True

