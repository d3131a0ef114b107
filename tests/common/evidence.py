"""An independent check of an evidence proof bundle, written from its description (README, "Evidence log";
contract/ledger/bundle.py) and importing nothing from ``contract``: what a court's or an auditor's own script
would do with a bundle and the lessor's published log key. The Merkle step is tests/common/rfc9162.py, written
from RFC 9162's text; the rest is SHA-256, base64, JSON and Ed25519."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from tests.common import rfc9162

TAG = b"leaseline.cn/evidence/commitment/v1\x00"


def checkpoint_signed(checkpoint: dict[str, Any], public_key: bytes) -> bool:
    """The C2SP checkpoint body (origin, size, base64 root) plus the ``timestamp`` line, signed with Ed25519."""
    body = (f"{checkpoint['origin']}\n{checkpoint['tree_size']}\n"
            f"{base64.b64encode(bytes.fromhex(checkpoint['root_hash'])).decode()}\n"
            f"timestamp {checkpoint['timestamp']}\n").encode()
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(base64.b64decode(checkpoint["signature"]), body)
    except InvalidSignature:
        return False
    return True


def failures(bundle: dict[str, Any], public_key: bytes) -> list[str]:
    """The steps of the check that fail (none: the bundle proves its clear entry was logged)."""
    failed = []
    entry = base64.b64decode(bundle["opening"]["entry"])
    salt = bytes.fromhex(bundle["opening"]["salt"])
    leaf = base64.b64decode(bundle["leaf"])
    commitment = hashlib.sha256(TAG + salt + entry).hexdigest()
    if len(salt) != 32 or leaf != b'{"commitment":"' + commitment.encode() + b'","v":2}':
        failed.append("commitment")
    leaf_hash = rfc9162.hash_leaf(leaf)
    if leaf_hash.hex() != bundle["leaf_hash"]:
        failed.append("leaf hash")
    checkpoint = bundle["checkpoint"]
    path = [bytes.fromhex(h) for h in bundle["inclusion"]["audit_path"]]
    if bundle["inclusion"]["tree_size"] != checkpoint["tree_size"] or not rfc9162.verify_inclusion(
            leaf_hash, bundle["index"], checkpoint["tree_size"], path, bytes.fromhex(checkpoint["root_hash"])):
        failed.append("inclusion")
    if not checkpoint_signed(checkpoint, public_key):
        failed.append("checkpoint signature")
    previous = bundle.get("previous_log")
    if previous is not None:  # the same entry's leaf in the first log (its bytes were the leaf there)
        old = previous["checkpoint"]
        old_leaf = rfc9162.hash_leaf(entry)
        if old_leaf.hex() != previous["leaf_hash"] or not rfc9162.verify_inclusion(
                old_leaf, previous["index"], old["tree_size"],
                [bytes.fromhex(h) for h in previous["inclusion"]["audit_path"]], bytes.fromhex(old["root_hash"])):
            failed.append("previous log inclusion")
        if not checkpoint_signed(old, public_key):
            failed.append("previous log checkpoint signature")
    return failed


def opened(bundle: dict[str, Any], public_key: bytes) -> dict[str, Any]:
    """The clear entry of a bundle that checks out (an AssertionError names the failing steps otherwise)."""
    failed = failures(bundle, public_key)
    assert not failed, failed
    return dict(json.loads(base64.b64decode(bundle["opening"]["entry"])))
