"""The public side of the evidence log is commitments only (contract/ledger/commitments.py): the leaf format, its
hiding and binding, the signed log start statement, the proof bundle checked by our code and by the independent
tests/common/evidence.py, and the audit of openings against their leaves."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from datetime import UTC
from datetime import datetime
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from contract.ledger import Checkpoint
from contract.ledger import MerkleTree
from contract.ledger import encode_entry
from contract.ledger import leaf_hash
from contract.ledger import sign
from contract.ledger.audit import verify_openings
from contract.ledger.bundle import Bundle
from contract.ledger.bundle import Inclusion
from contract.ledger.bundle import verify_bundle
from contract.ledger.commitments import Opening
from contract.ledger.commitments import commit
from contract.ledger.commitments import leaf_commitment
from contract.ledger.commitments import log_start
from contract.ledger.commitments import new_salt
from contract.ledger.commitments import read_log_start
from tests.common import evidence

AT = datetime(2026, 12, 1, 8, 30, tzinfo=UTC)
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
ENTRY = encode_entry("risk_decision", "app-1", {"outcome": "approve", "pd": "0.156281", "reasons": ["AUTO_APPROVE"]},
                     AT)


def test_a_commitment_is_the_tagged_salted_sha256_of_the_entry() -> None:
    salt = bytes(range(32))
    expected = hashlib.sha256(b"leaseline.cn/evidence/commitment/v1\x00" + salt + ENTRY).digest()
    assert commit(ENTRY, salt) == expected
    leaf = Opening(ENTRY, salt).leaf()
    assert leaf == b'{"commitment":"' + expected.hex().encode() + b'","v":2}'
    assert leaf_commitment(leaf) == expected and Opening(ENTRY, salt).opens(leaf)
    with pytest.raises(ValueError, match="32 bytes"):
        commit(ENTRY, b"short")


def test_the_leaf_names_nothing_and_differs_with_each_salt() -> None:
    """Hiding: the same decision twice gives unrelated leaves, and none holds any of the entry's text."""
    leaves = {Opening(ENTRY, new_salt()).leaf() for _ in range(50)}
    assert len(leaves) == 50
    for leaf in leaves:
        parsed = json.loads(leaf)
        assert set(parsed) == {"commitment", "v"} and parsed["v"] == 2
        assert re.fullmatch(r"[0-9a-f]{64}", parsed["commitment"])  # 32 random-looking bytes, nothing else
        # around the digest, the leaf says nothing (the digest itself may spell "2026" by chance: 64 hex digits)
        rest = leaf.replace(parsed["commitment"].encode(), b"")
        assert rest == b'{"commitment":"","v":2}'
        for word in (b"app-1", b"approve", b"0.156281", b"risk_decision", b"AUTO_APPROVE"):  # not hex: never
            assert word not in leaf


@given(st.binary(min_size=1, max_size=200), st.binary(min_size=32, max_size=32), st.integers(0, 31))
def test_another_entry_or_salt_does_not_open_the_leaf(entry: bytes, salt: bytes, flip: int) -> None:
    """Binding, as far as a test can show it: one changed bit anywhere opens nothing."""
    leaf = Opening(entry, salt).leaf()
    other_salt = salt[:flip] + bytes([salt[flip] ^ 1]) + salt[flip + 1:]
    assert not Opening(entry, other_salt).opens(leaf)
    assert not Opening(entry + b" ", salt).opens(leaf)
    assert not Opening(entry, salt[:31]).opens(leaf)


@pytest.mark.parametrize("leaf", [
    b'{"commitment":"' + b"A" * 64 + b'","v":2}',  # upper case
    b'{"v":2,"commitment":"' + b"a" * 64 + b'"}',  # key order
    b'{"commitment":"' + b"a" * 64 + b'","v":2} ',  # trailing space
    b'{"commitment":"' + b"a" * 62 + b'","v":2}',  # short
    ENTRY,  # a clear entry
])
def test_anything_but_the_canonical_commitment_leaf_is_not_one(leaf: bytes) -> None:
    assert leaf_commitment(leaf) is None


def previous() -> Any:
    return sign(Checkpoint("leaseline.test/evidence", 5, hashlib.sha256(b"root").digest(), AT), KEY)


def test_the_log_start_statement_is_signed_canonical_and_names_the_previous_checkpoint() -> None:
    start = log_start("leaseline.test/evidence/v2", AT, previous(), KEY)
    leaf = start.leaf()
    data = json.loads(leaf)
    assert set(data) == {"v", "statement", "origin", "at", "previous", "signature"}
    assert data["previous"] == previous().to_json() and data["statement"] == "log_start"
    read = read_log_start(leaf)
    assert read == start and read.verify(KEY.public_key())
    assert not read.verify(Ed25519PrivateKey.generate().public_key())
    # any change to what was signed, here the previous log's size, breaks the signature
    changed = read_log_start(leaf.replace(b'"tree_size":5', b'"tree_size":6'))
    assert not changed.verify(KEY.public_key())
    with pytest.raises(ValueError, match="canonical"):
        read_log_start(json.dumps(data, indent=1).encode())
    with pytest.raises(ValueError, match="exactly the fields"):
        read_log_start(json.dumps({**data, "subject": "app-1"}, sort_keys=True, separators=(",", ":")).encode())
    assert read_log_start(log_start("x/v2", AT, None, KEY).leaf()).previous is None


def make_bundle(index: int = 2, size: int = 5) -> tuple[Bundle, list[bytes]]:
    """A log of ``size`` leaves (0: a start statement, then commitments) and leaf ``index``'s bundle."""
    openings = [Opening(encode_entry("payment", f"app-{i}", {"amount": f"{i}.00"}, AT), new_salt())
                for i in range(size)]
    leaves = [log_start("t/v2", AT, None, KEY).leaf(), *[o.leaf() for o in openings[1:]]]
    tree = MerkleTree(leaf_hash(leaf) for leaf in leaves)
    checkpoint = sign(Checkpoint("t/v2", size, tree.root(), AT), KEY)
    proof = Inclusion(index, leaf_hash(leaves[index]), tree.inclusion_proof(index), checkpoint)
    return Bundle(openings[index], leaves[index], proof), leaves


def test_a_bundle_checks_out_with_our_code_and_with_independent_code() -> None:
    bundle, _ = make_bundle()
    data = bundle.to_json()
    assert verify_bundle(Bundle.from_json(json.loads(json.dumps(data))), KEY.public_key()) == []
    assert evidence.opened(data, KEY.public_key().public_bytes_raw())["subject"] == "app-2"
    assert data["content"]["data"] == {"amount": "2.00"} and data["previous_log"] is None


@pytest.mark.parametrize(("change", "ours", "theirs"), [
    (lambda b: {**b, "opening": {**b["opening"], "salt": "00" * 32}}, "opening", "commitment"),
    (lambda b: {**b, "opening": {**b["opening"], "entry": base64.b64encode(b"{}").decode()}}, "opening",
     "commitment"),
    (lambda b: {**b, "index": 3}, "audit path", "inclusion"),
    (lambda b: {**b, "inclusion": {**b["inclusion"], "audit_path": list(reversed(b["inclusion"]["audit_path"]))}},
     "audit path", "inclusion"),
    (lambda b: {**b, "checkpoint": {**b["checkpoint"], "timestamp": "2027-01-01T00:00:00.000000Z"}}, "signature",
     "checkpoint signature"),
])
def test_a_changed_bundle_fails_both_checks(change: Any, ours: str, theirs: str) -> None:
    bundle, _ = make_bundle()
    changed = change(bundle.to_json())
    problems = verify_bundle(Bundle.from_json(changed), KEY.public_key())
    assert problems and ours in " ".join(problems)
    assert theirs in evidence.failures(changed, KEY.public_key().public_bytes_raw())


@pytest.mark.parametrize(("change", "message"), [
    (lambda b: {**b, "format": "x"}, "not an evidence bundle"),
    (lambda b: {**b, "opening": None}, "opening"),
    (lambda b: {**b, "leaf_hash": "XY"}, "leaf_hash"),
    (lambda b: {**b, "inclusion": {**b["inclusion"], "tree_size": 99}}, "tree size"),
    (lambda b: {**b, "leaf": "@@"}, "base64"),
])
def test_a_malformed_bundle_is_refused_with_what_is_wrong(change: Any, message: str) -> None:
    bundle, _ = make_bundle()
    with pytest.raises(ValueError, match=message):
        Bundle.from_json(change(bundle.to_json()))


def test_the_audit_finds_an_opening_that_no_longer_opens_its_leaf_and_a_leaf_without_one() -> None:
    openings = [Opening(encode_entry("payment", f"app-{i}", {"amount": f"{i}.00"}, AT), new_salt()) for i in range(6)]
    leaves = [b"start", *[o.leaf() for o in openings[1:]]]
    problems: list[str] = []
    assert verify_openings(leaves, [(i, o) for i, o in enumerate(openings) if i], problems) == [] and not problems
    changed = Opening(openings[3].entry.replace(b"3.00", b"9.00"), openings[3].salt)
    pairs = [(i, changed if i == 3 else o) for i, o in enumerate(openings) if i and i != 5]
    assert verify_openings(leaves, pairs, problems) == [3, 5]
    assert "entry 3" in problems[0] and "entry 5" in problems[1]
