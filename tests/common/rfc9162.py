"""An independent proof verifier, written from the text of RFC 9162 §2.1.3.2 and §2.1.4.2 (the iterative
algorithms with ``fn``, ``sn``, ``r``, ``fr`` and ``sr``), to check contract.ledger's proofs against.

It deliberately imports nothing from ``contract``: the ledger's own verifier replays RFC 6962's recursive
definitions instead, so the two agree only if both are right. Each step below quotes the RFC's numbering.
https://www.rfc-editor.org/rfc/rfc9162#section-2.1.3.2 and #section-2.1.4.2
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence


def hash_leaf(entry: bytes) -> bytes:
    """MTH({d0}) = HASH(0x00 || d0) with HASH = SHA-256 (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """HASH(0x01 || left || right) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def lsb(value: int) -> bool:
    """LSB(x): whether the least significant bit of x is set."""
    return value & 1 == 1


def shift_until_lsb_or_zero(fn: int, sn: int) -> tuple[int, int]:
    """"Right-shift both fn and sn equally until either LSB(fn) is set or fn is 0."""
    while not lsb(fn) and fn != 0:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def verify_inclusion(
    leaf_hash: bytes, leaf_index: int, tree_size: int, inclusion_path: Sequence[bytes], root_hash: bytes
) -> bool:
    """RFC 9162 §2.1.3.2: whether ``inclusion_path`` proves ``leaf_hash`` at ``leaf_index`` under ``root_hash``."""
    # 1. If leaf_index is greater than or equal to tree_size, fail the proof verification.
    if leaf_index >= tree_size or leaf_index < 0:
        return False
    # 2. Set fn to leaf_index and sn to tree_size - 1.
    fn, sn = leaf_index, tree_size - 1
    # 3. Set r to hash.
    r = leaf_hash
    # 4. For each value p in the inclusion_path array:
    for p in inclusion_path:
        # a. If sn is 0, stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if lsb(fn) or fn == sn:
            # i. Set r to HASH(0x01 || p || r).
            r = hash_children(p, r)
            # ii. If LSB(fn) is not set, right-shift both fn and sn equally until either LSB(fn) is set or fn is 0.
            if not lsb(fn):
                fn, sn = shift_until_lsb_or_zero(fn, sn)
        # Otherwise: i. Set r to HASH(0x01 || r || p).
        else:
            r = hash_children(r, p)
        # c. Finally, right-shift both fn and sn one time.
        fn, sn = fn >> 1, sn >> 1
    # 5. Compare sn to 0 and r against the root_hash: both must hold.
    return sn == 0 and r == root_hash


def verify_consistency(
    first: int, second: int, first_hash: bytes, second_hash: bytes, consistency_path: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: whether ``consistency_path`` proves the tree of size ``first`` with ``first_hash``
    is a prefix of the tree of size ``second`` with ``second_hash``.

    The RFC's algorithm is for 0 < first < second; the one other case with a defined proof, first == second,
    has the empty proof (SUBPROOF(m, D[m], true) = {}), so it holds exactly when the two hashes are equal.
    """
    if first == second and first > 0:
        return not consistency_path and first_hash == second_hash
    if not 0 < first < second:
        return False
    # 1. If consistency_path is an empty array, stop and fail the proof verification.
    if not consistency_path:
        return False
    path = list(consistency_path)
    # 2. If first is an exact power of 2, then prepend first_hash to the consistency_path array.
    if first & (first - 1) == 0:
        path.insert(0, first_hash)
    # 3. Set fn to first - 1 and sn to second - 1.
    fn, sn = first - 1, second - 1
    # 4. If LSB(fn) is set, then right-shift both fn and sn equally until LSB(fn) is not set.
    while lsb(fn):
        fn, sn = fn >> 1, sn >> 1
    # 5. Set both fr and sr to the first value in the consistency_path array.
    fr = sr = path[0]
    # 6. For each subsequent value c in the consistency_path array:
    for c in path[1:]:
        # a. If sn is 0, then stop the iteration and fail the proof verification.
        if sn == 0:
            return False
        # b. If LSB(fn) is set, or if fn is equal to sn, then:
        if lsb(fn) or fn == sn:
            # i. Set fr to HASH(0x01 || c || fr).  ii. Set sr to HASH(0x01 || c || sr).
            fr, sr = hash_children(c, fr), hash_children(c, sr)
            # iii. If LSB(fn) is not set, right-shift both fn and sn equally until either LSB(fn) is set or fn is 0.
            if not lsb(fn):
                fn, sn = shift_until_lsb_or_zero(fn, sn)
        # Otherwise: i. Set sr to HASH(0x01 || sr || c).
        else:
            sr = hash_children(sr, c)
        # c. Finally, right-shift both fn and sn one time.
        fn, sn = fn >> 1, sn >> 1
    # 7. Verify that fr equals first_hash, sr equals second_hash, and sn is 0.
    return fr == first_hash and sr == second_hash and sn == 0
