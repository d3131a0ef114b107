"""contract.ledger: the evidence log's Merkle tree, checkpoints, entries and audit.

Known answers come from transparency-dev/merkle (``testonly/constants.go`` for the leaves and roots,
``proof/verify_test.go`` for the proofs, the same vectors as certificate-transparency's C++ tests); every
proof is also checked by the independent RFC 9162 verifier in ``tests/common/rfc9162.py``.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from datetime import UTC
from datetime import datetime
from datetime import timedelta
from datetime import timezone
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from contract.ledger import EMPTY_ROOT
from contract.ledger import KINDS
from contract.ledger import Checkpoint
from contract.ledger import MerkleTree
from contract.ledger import SignedCheckpoint
from contract.ledger import consistency_proof
from contract.ledger import decode_entry
from contract.ledger import encode_entry
from contract.ledger import inclusion_proof
from contract.ledger import leaf_hash
from contract.ledger import node_hash
from contract.ledger import root_hash
from contract.ledger import sha256_hex
from contract.ledger import sign
from contract.ledger import verify
from contract.ledger import verify_consistency
from contract.ledger import verify_inclusion
from contract.ledger import verify_log
from tests.common import rfc9162

# ------------------------------------------------------------------------------ known answers

LEAVES = [bytes.fromhex(h) for h in (
    "", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f",
)]
LEAF_HASHES = [leaf_hash(leaf) for leaf in LEAVES]
#: RootHashes(): the root of the first n leaves, n = 0..8.
ROOTS = [bytes.fromhex(h) for h in (
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
)]
#: NodeHashes()[0]: the leaf hashes.
NODE_LEAVES = [bytes.fromhex(h) for h in (
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
    "0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7",
    "07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7",
    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    "4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658",
    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
    "46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1",
)]
H = {name: bytes.fromhex(value) for name, value in {
    "0ebc": "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
    "5f08": "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
    "6b47": "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
    "ca85": "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
    "d37e": "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "fac5": "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
}.items()}
# The reference numbers leaves from 1; these indexes are 0-based.
INCLUSION_PROOFS = [
    (0, 1, []),
    (0, 8, [NODE_LEAVES[1], H["5f08"], H["6b47"]]),
    (5, 8, [NODE_LEAVES[4], H["ca85"], H["d37e"]]),
    (2, 3, [H["fac5"]]),
    (1, 5, [NODE_LEAVES[0], H["5f08"], NODE_LEAVES[4]]),
]
CONSISTENCY_PROOFS = [
    (1, 1, []),
    (1, 8, [NODE_LEAVES[1], H["5f08"], H["6b47"]]),
    (6, 8, [H["0ebc"], H["ca85"], H["d37e"]]),
    (2, 5, [H["5f08"], NODE_LEAVES[4]]),
    (6, 7, [H["0ebc"], NODE_LEAVES[6], H["d37e"]]),
]


def test_leaf_hashes_and_empty_root_match_the_reference() -> None:
    assert LEAF_HASHES == NODE_LEAVES
    assert EMPTY_ROOT == ROOTS[0]
    assert node_hash(NODE_LEAVES[0], NODE_LEAVES[1]) == ROOTS[2]


@pytest.mark.parametrize("size", range(9))
def test_roots_match_the_reference(size: int) -> None:
    assert root_hash(LEAF_HASHES[:size]) == ROOTS[size]
    assert MerkleTree(LEAF_HASHES).root(size) == ROOTS[size]


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_PROOFS)
def test_inclusion_proofs_match_the_reference(index: int, size: int, proof: list[bytes]) -> None:
    assert inclusion_proof(LEAF_HASHES, index, size) == proof
    assert rfc9162.verify_inclusion(LEAF_HASHES[index], index, size, proof, ROOTS[size])
    assert verify_inclusion(LEAF_HASHES[index], index, size, proof, ROOTS[size])


@pytest.mark.parametrize(("first", "second", "proof"), CONSISTENCY_PROOFS)
def test_consistency_proofs_match_the_reference(first: int, second: int, proof: list[bytes]) -> None:
    assert consistency_proof(LEAF_HASHES, first, second) == proof
    assert rfc9162.verify_consistency(first, second, ROOTS[first], ROOTS[second], proof)
    assert verify_consistency(first, second, ROOTS[first], ROOTS[second], proof)


def test_appending_gives_the_same_tree_as_building() -> None:
    tree = MerkleTree()
    for index, value in enumerate(LEAF_HASHES):
        assert tree.append(value) == index
        assert tree.root() == ROOTS[index + 1]
    assert len(tree) == 8
    assert [tree.root(size) for size in range(9)] == ROOTS


@pytest.mark.parametrize(("call", "message"), [
    (lambda: inclusion_proof(LEAF_HASHES, 8, 8), "leaf index 8 is outside a tree of size 8"),
    (lambda: inclusion_proof(LEAF_HASHES, -1, 8), "leaf index -1"),
    (lambda: inclusion_proof(LEAF_HASHES, 0, 9), "tree size 9 is outside 0..8"),
    (lambda: inclusion_proof(LEAF_HASHES, 0, 0), "outside a tree of size 0"),
    (lambda: consistency_proof(LEAF_HASHES, 5, 4), "first size 5 is larger than second size 4"),
    (lambda: consistency_proof(LEAF_HASHES, 0, 4), "first size of at least 1"),
    (lambda: consistency_proof(LEAF_HASHES, 1, 9), "tree size 9 is outside 0..8"),
    (lambda: MerkleTree(LEAF_HASHES).root(9), "tree size 9"),
    (lambda: MerkleTree([b"not a digest"]), "leaf hash 0 must be 32 bytes"),
    (lambda: MerkleTree().append(LEAF_HASHES[0].hex().encode()), "leaf hash must be 32 bytes"),
])
def test_bad_arguments_are_refused_with_a_clear_message(call: Callable[[], object], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        call()


# ------------------------------------------------------------------------------ every small tree

MAX_SIZE = 70


def distinct_leaves(size: int, salt: bytes = b"") -> list[bytes]:
    """Leaf hashes of distinct entries: with equal leaves a proof for one index is also one for its twin."""
    return [leaf_hash(salt + index.to_bytes(2, "big")) for index in range(size)]


@pytest.mark.parametrize("size", range(1, MAX_SIZE + 1))
def test_every_inclusion_proof_verifies_independently(size: int) -> None:
    leaves = distinct_leaves(size)
    tree, root = MerkleTree(leaves), root_hash(leaves)
    for index in range(size):
        proof = tree.inclusion_proof(index, size)
        assert proof == inclusion_proof(leaves, index, size)
        assert rfc9162.verify_inclusion(leaves[index], index, size, proof, root)
        assert verify_inclusion(leaves[index], index, size, proof, root)


@pytest.mark.parametrize("second", range(1, MAX_SIZE + 1))
def test_every_consistency_proof_verifies_independently(second: int) -> None:
    leaves = distinct_leaves(second)
    tree = MerkleTree(leaves)
    for first in range(1, second + 1):
        proof = tree.consistency_proof(first, second)
        assert proof == consistency_proof(leaves, first, second)
        roots = (root_hash(leaves[:first]), root_hash(leaves))
        assert rfc9162.verify_consistency(first, second, *roots, proof)
        assert verify_consistency(first, second, *roots, proof)


def flip(proof: list[bytes], position: int, byte: int) -> list[bytes]:
    changed = bytearray(proof[position])
    changed[byte] ^= 0x10
    return proof[:position] + [bytes(changed)] + proof[position + 1:]


def both_verify_inclusion(leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes) -> bool:
    """Both verifiers' verdict, which must always be the same, valid proof or not."""
    independent = rfc9162.verify_inclusion(leaf, index, size, proof, root)
    assert verify_inclusion(leaf, index, size, proof, root) == independent
    return independent


def both_verify_consistency(first: int, second: int, roots: tuple[bytes, bytes], proof: list[bytes]) -> bool:
    independent = rfc9162.verify_consistency(first, second, *roots, proof)
    assert verify_consistency(first, second, *roots, proof) == independent
    return independent


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, MAX_SIZE), salt=st.binary(max_size=8), data=st.data())
def test_a_tampered_inclusion_proof_fails(size: int, salt: bytes, data: st.DataObject) -> None:
    leaves = distinct_leaves(size, salt)
    index = data.draw(st.integers(0, size - 1), label="index")
    proof, root = inclusion_proof(leaves, index, size), root_hash(leaves)
    assert both_verify_inclusion(leaves[index], index, size, proof, root)
    assert not both_verify_inclusion(leaf_hash(b"changed" + salt), index, size, proof, root)
    other = data.draw(st.integers(-1, size).filter(lambda value: value != index), label="other index")
    assert not both_verify_inclusion(leaves[index], other, size, proof, root)
    # A path does not carry the size (the signed checkpoint binds size and root), so n ± 1 may verify;
    # doubling or halving it always changes the path's length.
    assert not both_verify_inclusion(leaves[index], index, size * 2, proof, root)
    assert not both_verify_inclusion(leaves[index], index, size // 2, proof, root)
    wrong_size = data.draw(st.integers(0, 2 * MAX_SIZE), label="any size")
    both_verify_inclusion(leaves[index], index, wrong_size, proof, root)  # whatever it says, both must say it
    if proof:
        position = data.draw(st.integers(0, len(proof) - 1), label="position")
        byte = data.draw(st.integers(0, 31), label="byte")
        assert not both_verify_inclusion(leaves[index], index, size, flip(proof, position, byte), root)
        assert not both_verify_inclusion(leaves[index], index, size, proof[:-1], root)
    assert not both_verify_inclusion(leaves[index], index, size, proof + [root], root)


@settings(max_examples=300, deadline=None)
@given(second=st.integers(2, MAX_SIZE), salt=st.binary(max_size=8), data=st.data())
def test_a_tampered_consistency_proof_fails(second: int, salt: bytes, data: st.DataObject) -> None:
    leaves = distinct_leaves(second, salt)
    first = data.draw(st.integers(1, second - 1), label="first")
    proof = consistency_proof(leaves, first, second)
    roots = (root_hash(leaves[:first]), root_hash(leaves))
    assert both_verify_consistency(first, second, roots, proof)
    # A proof from a size that is a power of two holds nothing of the old tree, so it fits a changed old tree
    # and its changed new root equally well: only a change on one side only must fail.
    changed_at = data.draw(st.integers(0, second - 1), label="changed leaf")
    changed = leaves[:changed_at] + [leaf_hash(b"changed" + salt)] + leaves[changed_at + 1:]
    assert not both_verify_consistency(first, second, (roots[0], root_hash(changed)), proof)
    if changed_at < first:
        assert not both_verify_consistency(first, second, (root_hash(changed[:first]), roots[1]), proof)
    assert not both_verify_consistency(first, second, roots[::-1], proof)
    for wrong_first, wrong_second in [(first - 1, second), (first + 1, second), (first ^ 2, second),
                                      (first, second * 2), (first, second // 2)]:
        assert not both_verify_consistency(wrong_first, wrong_second, roots, proof)
    position = data.draw(st.integers(0, len(proof) - 1), label="position")
    byte = data.draw(st.integers(0, 31), label="byte")
    assert not both_verify_consistency(first, second, roots, flip(proof, position, byte))
    assert not both_verify_consistency(first, second, roots, proof[:-1])
    assert not both_verify_consistency(first, second, roots, proof + [roots[1]])
    assert not both_verify_consistency(first, second, roots, [roots[0]] + proof)


@settings(max_examples=100, deadline=None)
@given(size=st.integers(0, 300), cut=st.data())
def test_a_tree_grown_by_appends_answers_for_every_earlier_size(size: int, cut: st.DataObject) -> None:
    leaves = distinct_leaves(size)
    built = cut.draw(st.integers(0, size), label="built")
    tree = MerkleTree(leaves[:built])
    for value in leaves[built:]:
        tree.append(value)
    earlier = cut.draw(st.integers(0, size), label="earlier size")
    assert tree.root(earlier) == root_hash(leaves[:earlier]) == MerkleTree(leaves).root(earlier)


# ------------------------------------------------------------------------------ checkpoints

KEY = Ed25519PrivateKey.generate()
ORIGIN = "leaseline.test/contract-evidence"
AT = datetime(2025, 1, 2, 3, 4, 5, 6, tzinfo=UTC)


def checkpoint(size: int = 8, root: bytes = ROOTS[8], at: datetime = AT) -> Checkpoint:
    return Checkpoint(origin=ORIGIN, tree_size=size, root_hash=root, timestamp=at)


def test_the_signed_body_is_a_c2sp_checkpoint_with_a_timestamp_line() -> None:
    assert checkpoint().body() == (
        b"leaseline.test/contract-evidence\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n"
        b"timestamp 2025-01-02T03:04:05.000006Z\n"
    )


def test_a_signed_checkpoint_verifies_and_survives_json() -> None:
    signed = sign(checkpoint(), KEY)
    assert verify(signed, KEY.public_key())
    document = signed.to_json()
    assert document == {
        "origin": ORIGIN,
        "tree_size": 8,
        "root_hash": ROOTS[8].hex(),
        "timestamp": "2025-01-02T03:04:05.000006Z",
        "signature": document["signature"],
        "public_key": document["public_key"],
    }
    assert len(str(document["signature"])) == 88 and len(str(document["public_key"])) == 44
    again = SignedCheckpoint.from_json(json.loads(json.dumps(document)))
    assert again == signed
    assert verify(again, KEY.public_key())


def test_timestamps_are_kept_in_utc() -> None:
    shanghai = AT.astimezone(timezone(timedelta(hours=8)))
    assert checkpoint(at=shanghai) == checkpoint()
    assert checkpoint(at=shanghai).timestamp.tzinfo is UTC
    with pytest.raises(ValueError, match="naive"):
        checkpoint(at=datetime(2025, 1, 2, 3, 4, 5))


@pytest.mark.parametrize("change", [
    {"tree_size": 7},
    {"root_hash": ROOTS[7]},
    {"timestamp": AT + timedelta(microseconds=1)},
    {"origin": "leaseline.test/another-log"},
])
def test_any_change_to_a_signed_checkpoint_fails_verification(change: dict[str, Any]) -> None:
    signed = sign(checkpoint(), KEY)
    forged = dataclasses.replace(signed, checkpoint=dataclasses.replace(signed.checkpoint, **change))
    assert not verify(forged, KEY.public_key())


def test_another_key_fails_verification() -> None:
    other = Ed25519PrivateKey.generate()
    signed = sign(checkpoint(), other)
    assert not verify(signed, KEY.public_key())
    relabelled = dataclasses.replace(signed, public_key=KEY.public_key().public_bytes_raw())
    assert not verify(relabelled, KEY.public_key())
    assert not verify(sign(checkpoint(), KEY), other.public_key())


@pytest.mark.parametrize(("change", "message"), [
    ({"extra": 1}, "extra"),
    ({"root_hash": ROOTS[8].hex().upper()}, "lower-case hex"),
    ({"tree_size": "8"}, "tree_size must be a JSON integer"),
    ({"tree_size": True}, "tree_size must be a JSON integer"),
    ({"tree_size": -1}, "non-negative"),
    ({"timestamp": "2025-01-02T03:04:05Z"}, "RFC 3339"),
    ({"signature": "not base64!"}, "signature is not standard base64"),
    ({"public_key": "AAAA"}, "32 bytes"),
    ({"origin": "two\nlines"}, "control characters"),
])
def test_bad_json_is_refused(change: dict[str, object], message: str) -> None:
    document: dict[str, object] = {**sign(checkpoint(), KEY).to_json(), **change}
    with pytest.raises(ValueError, match=message):
        SignedCheckpoint.from_json(document)


# ------------------------------------------------------------------------------ entries


def test_an_entry_is_canonical_json() -> None:
    raw = encode_entry("payment", "app-42", {"amount": "12345.60", "currency": "CNY", "note": "首付"}, AT)
    assert raw == (
        '{"at":"2025-01-02T03:04:05.000006Z","data":{"amount":"12345.60","currency":"CNY","note":"首付"},'
        '"kind":"payment","subject":"app-42","v":1}'
    ).encode()
    again = encode_entry("payment", "app-42", {"note": "首付", "currency": "CNY", "amount": "12345.60"},
                         AT.astimezone(timezone(timedelta(hours=8))))
    assert again == raw


@settings(max_examples=200, deadline=None)
@given(
    kind=st.sampled_from(sorted(KINDS)),
    subject=st.text(min_size=1),
    data=st.dictionaries(st.text(), st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=10,
    )),
    at=st.datetimes(timezones=st.just(UTC)),
)
def test_entries_decode_to_what_encodes_them_again(
    kind: str, subject: str, data: dict[str, object], at: datetime
) -> None:
    raw = encode_entry(kind, subject, data, at)
    entry = decode_entry(raw)
    assert entry == {"v": 1, "kind": kind, "subject": subject, "at": at, "data": data}
    assert encode_entry(entry["kind"], entry["subject"], entry["data"], entry["at"]) == raw
    assert encode_entry(kind, subject, dict(reversed(list(data.items()))), at) == raw


@pytest.mark.parametrize(("kind", "data", "at", "message"), [
    ("payment", {"amount": 12345.6}, AT, "data.amount is a float"),
    ("payment", {"lines": [{"amount": 1.5}]}, AT, r"data.lines\[0\].amount is a float"),
    ("payment", {"amount": Decimal("1.50")}, AT, "Decimal"),
    ("payment", {1: "x"}, AT, "keys must be strings"),
    ("payment", {"amount": "1.50"}, datetime(2025, 1, 2), "naive"),
    ("wire_transfer", {}, AT, "unknown evidence kind 'wire_transfer'"),
    ("payment", {"note": "\ud800"}, AT, "surrogates not allowed"),  # a lone surrogate has no UTF-8 form
])
def test_entries_refuse_what_has_no_single_spelling(
    kind: str, data: dict[object, object], at: datetime, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        encode_entry(kind, "app-42", data, at)  # type: ignore[arg-type]


@pytest.mark.parametrize(("raw", "message"), [
    (b'{"at":"2025-01-02T03:04:05.000006Z","data":{},"kind":"payment","subject":"a","v":1.0}', "non-integer"),
    (b'{"data":{},"at":"2025-01-02T03:04:05.000006Z","kind":"payment","subject":"a","v":1}', "canonical"),
    (b'{"at":"2025-01-02T03:04:05.000006Z","data":{},"kind":"payment","subject":"a","v":2}', "version 2"),
    (b'{"at":"2025-01-02T03:04:05.000006Z","data":{},"kind":"payment","subject":"a"}', "exactly the fields"),
    (b'{"at":"2025-01-02T03:04:05Z","data":{},"kind":"payment","subject":"a","v":1}', "RFC 3339"),
    (b"\xff", "UTF-8 JSON"),
])
def test_decoding_refuses_what_encode_entry_would_not_write(raw: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        decode_entry(raw)


def test_sha256_hex_is_the_lower_case_digest() -> None:
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


# ------------------------------------------------------------------------------ audit


def evidence_log(size: int) -> list[bytes]:
    return [encode_entry("payment", f"app-{index}", {"amount": f"{index}.00"}, AT + timedelta(minutes=index))
            for index in range(size)]


def signed_at(entries: list[bytes], size: int, minutes: int = 0) -> SignedCheckpoint:
    root = root_hash([leaf_hash(entry) for entry in entries[:size]])
    return sign(checkpoint(size, root, AT + timedelta(minutes=minutes)), KEY)


def test_a_clean_log_verifies() -> None:
    entries = evidence_log(100)
    checkpoints = [signed_at(entries, 0), signed_at(entries, 37, 1), signed_at(entries, 64, 2),
                   signed_at(entries, 100, 3)]
    report = verify_log(entries, [leaf_hash(entry) for entry in entries], checkpoints, KEY.public_key())
    assert report.ok, report.problems
    assert (report.tree_size, report.first_bad_index, report.problems, report.checked_checkpoints) == (100, None, [], 4)


def test_a_changed_entry_is_named_by_its_index() -> None:
    entries = evidence_log(100)
    stored = [leaf_hash(entry) for entry in entries]
    checkpoints = [signed_at(entries, 40), signed_at(entries, 100, 1)]
    entries[57] = encode_entry("payment", "app-57", {"amount": "0.57"}, AT)
    report = verify_log(entries, stored, checkpoints, KEY.public_key())
    assert not report.ok
    assert report.first_bad_index == 57
    assert report.problems[0] == "entry 57: its stored bytes no longer hash to its stored leaf hash"
    assert "checkpoint 1 (size 100): the first 100 entries no longer hash to its signed root" in report.problems
    assert not any("checkpoint 0" in problem for problem in report.problems)


def test_a_forged_checkpoint_signature_is_reported() -> None:
    entries = evidence_log(20)
    honest = signed_at(entries, 20)
    forged = dataclasses.replace(honest, signature=bytes(64))
    report = verify_log(entries, [leaf_hash(entry) for entry in entries], [forged], KEY.public_key())
    assert not report.ok
    assert report.first_bad_index is None
    assert report.problems == ["checkpoint 0 (size 20): its signature does not verify with the log's public key"]


def test_two_honest_checkpoints_are_consistent() -> None:
    entries = evidence_log(50)
    older, newer = signed_at(entries, 21), signed_at(entries, 50, 1)
    older_root, newer_root = older.checkpoint.root_hash, newer.checkpoint.root_hash
    proof = consistency_proof([leaf_hash(entry) for entry in entries], 21, 50)
    assert rfc9162.verify_consistency(21, 50, older_root, newer_root, proof)
    assert verify_log(entries, [leaf_hash(entry) for entry in entries], [older, newer], KEY.public_key()).ok


def test_a_rewrite_before_the_older_checkpoint_fails_it_even_with_rewritten_leaf_hashes() -> None:
    entries = evidence_log(50)
    checkpoints = [signed_at(entries, 10), signed_at(entries, 21, 1), signed_at(entries, 50, 2)]
    entries[15] = encode_entry("refund", "app-15", {"amount": "15.00"}, AT)
    report = verify_log(entries, [leaf_hash(entry) for entry in entries], checkpoints, KEY.public_key())
    assert not report.ok
    assert "checkpoint 1 (size 21): the first 21 entries no longer hash to its signed root" in report.problems
    assert "checkpoint 0 (size 10)" not in " ".join(report.problems)
    assert report.first_bad_index == 10  # the rewrite lies between the sizes 10 and 21
    assert "entries 10..20: changed together with their stored leaf hashes" in report.problems[-1]


def test_history_rewritten_and_signed_again_is_inconsistent() -> None:
    entries = evidence_log(30)
    older = signed_at(entries, 12)
    entries[3] = encode_entry("refund", "app-3", {"amount": "3.00"}, AT)
    newer = signed_at(entries, 30, 1)
    report = verify_log(entries, [leaf_hash(entry) for entry in entries], [older, newer], KEY.public_key())
    assert not report.ok
    assert report.first_bad_index == 0
    assert any("checkpoint 1 (size 30) is not consistent with checkpoint 0 (size 12)" in problem
               for problem in report.problems)


def test_missing_entries_and_leaf_hashes_are_reported() -> None:
    entries = evidence_log(30)
    stored = [leaf_hash(entry) for entry in entries]
    checkpoints = [signed_at(entries, 30)]
    report = verify_log(entries[:25], stored, checkpoints, KEY.public_key())
    assert report.first_bad_index == 25
    assert report.tree_size == 25
    assert any("the log holds only 25 entries" in problem for problem in report.problems)
    assert any("25 entries but 30 stored leaf hashes" in problem for problem in report.problems)


def test_checkpoints_out_of_log_order_are_reported() -> None:
    entries = evidence_log(30)
    checkpoints = [signed_at(entries, 30, 1), signed_at(entries, 12, 0)]
    report = verify_log(entries, [leaf_hash(entry) for entry in entries], checkpoints, KEY.public_key())
    assert report.problems == [
        "checkpoint 1 (size 12) is smaller than checkpoint 0 before it (size 30)",
        "checkpoint 1 is dated before checkpoint 0",
    ]
