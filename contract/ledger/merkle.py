"""The Merkle tree of RFC 6962 §2.1 (kept unchanged in RFC 9162 §2.1): roots, inclusion and consistency proofs.

Leaves and interior nodes are hashed with different one-byte prefixes (0x00 and 0x01) so that no leaf can be
passed off as an interior node (second-preimage attack). :class:`MerkleTree` keeps the hash of every complete,
power-of-two aligned subtree, which is exactly what MTH's left halves are (its split ``k`` is a power of two
and every subtree starts at a multiple of its own left half), so a root or a proof costs O(log n) hashes after
an O(n) build, for the whole log or any earlier size of it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from collections.abc import Sequence

HASH_SIZE = 32
#: MTH({}) = SHA-256() — the root of the empty tree.
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    """MTH({d0}) = SHA-256(0x00 ‖ d0): the hash of one log entry."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 ‖ left ‖ right): the hash of an interior node."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """RFC 6962's ``k``: the largest power of two smaller than ``n`` (n ≥ 2)."""
    return 1 << ((n - 1).bit_length() - 1)


class MerkleTree:
    """An append-only Merkle tree over leaf hashes that answers for its current size or any earlier one.

    ``_levels[h][i]`` is the hash of the complete subtree of the ``2**h`` leaves starting at ``i * 2**h``.
    """

    def __init__(self, leaf_hashes: Iterable[bytes] = ()) -> None:
        leaves = list(leaf_hashes)
        for index, value in enumerate(leaves):
            check_hash(value, f"leaf hash {index}")
        self._levels: list[list[bytes]] = [leaves]
        while len(self._levels[-1]) > 1:
            below = self._levels[-1]
            self._levels.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])

    def __len__(self) -> int:
        return len(self._levels[0])

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash at ``index``."""
        if not 0 <= index < len(self):
            raise ValueError(f"leaf index {index} is outside a tree of size {len(self)}")
        return self._levels[0][index]

    def append(self, leaf_hash: bytes) -> int:
        """Add a leaf hash and return its index; completes at most log n subtrees (amortised O(1))."""
        check_hash(leaf_hash, "leaf hash")
        index = len(self)
        self._levels[0].append(leaf_hash)
        height, position = 0, index
        while position % 2 == 1:
            level = self._levels[height]
            parent = node_hash(level[position - 1], level[position])
            if height + 1 == len(self._levels):
                self._levels.append([])
            self._levels[height + 1].append(parent)
            height, position = height + 1, position // 2
        return index

    def root(self, tree_size: int | None = None) -> bytes:
        """MTH of the first ``tree_size`` leaves (all of them by default)."""
        size = self._size(tree_size)
        return self._subtree(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, tree_size: int | None = None) -> list[bytes]:
        """PATH(index, D[tree_size]) of RFC 6962 §2.1.1, the sibling nearest the leaf first."""
        size = self._size(tree_size)
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is outside a tree of size {size}")
        return self._path(index, 0, size)

    def consistency_proof(self, first: int, second: int | None = None) -> list[bytes]:
        """PROOF(first, D[second]) of RFC 6962 §2.1.2: shows the tree of size ``first`` is a prefix of ``second``.

        ``first`` = 0 is refused: every tree extends the empty one, so there is nothing to prove.
        """
        size = self._size(second)
        if first <= 0:
            raise ValueError(f"a consistency proof needs a first size of at least 1, not {first}")
        if first > size:
            raise ValueError(f"first size {first} is larger than second size {size}")
        return self._subproof(first, 0, size, True)

    def _size(self, tree_size: int | None) -> int:
        if tree_size is None:
            return len(self)
        if not 0 <= tree_size <= len(self):
            raise ValueError(f"tree size {tree_size} is outside 0..{len(self)} (the leaves held)")
        return tree_size

    def _subtree(self, start: int, end: int) -> bytes:
        """MTH(D[start:end]); its left halves are cached complete subtrees, so only the right border is hashed."""
        n = end - start
        if n & (n - 1) == 0:  # complete and, as every MTH subtree is, aligned to its size
            return self._levels[n.bit_length() - 1][start // n]
        k = split(n)
        return node_hash(self._subtree(start, start + k), self._subtree(start + k, end))

    def _path(self, index: int, start: int, end: int) -> list[bytes]:
        """PATH(index - start, D[start:end])."""
        n = end - start
        if n == 1:
            return []
        k = split(n)
        if index < start + k:
            return self._path(index, start, start + k) + [self._subtree(start + k, end)]
        return self._path(index, start + k, end) + [self._subtree(start, start + k)]

    def _subproof(self, m: int, start: int, end: int, whole: bool) -> list[bytes]:
        """SUBPROOF(m, D[start:end], whole): ``whole`` is RFC 6962's b, true while D[start:start+m] is a root."""
        n = end - start
        if m == n:
            return [] if whole else [self._subtree(start, end)]
        k = split(n)
        if m <= k:
            return self._subproof(m, start, start + k, whole) + [self._subtree(start + k, end)]
        return self._subproof(m - k, start + k, end, False) + [self._subtree(start, start + k)]


def check_hash(value: bytes, what: str) -> None:
    """Refuse anything but a 32-byte SHA-256 digest (a hex string or a raw entry passed by mistake)."""
    if not isinstance(value, bytes) or len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes (a SHA-256 digest)")


def root_hash(leaf_hashes: Sequence[bytes]) -> bytes:
    """MTH over all the given leaf hashes (RFC 6962 §2.1).

    This and the two proof functions below build a throwaway tree, O(n) each; keep a :class:`MerkleTree` to
    ask a large log more than one question.
    """
    return MerkleTree(leaf_hashes).root()


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int, tree_size: int) -> list[bytes]:
    """PATH(index, D[tree_size]) over the first ``tree_size`` of ``leaf_hashes`` (RFC 6962 §2.1.1)."""
    check_size(tree_size, leaf_hashes)
    return MerkleTree(leaf_hashes[:tree_size]).inclusion_proof(index)


def consistency_proof(leaf_hashes: Sequence[bytes], first: int, second: int) -> list[bytes]:
    """PROOF(first, D[second]) over the first ``second`` of ``leaf_hashes`` (RFC 6962 §2.1.2)."""
    check_size(second, leaf_hashes)
    return MerkleTree(leaf_hashes[:second]).consistency_proof(first)


def check_size(tree_size: int, leaf_hashes: Sequence[bytes]) -> None:
    if not 0 <= tree_size <= len(leaf_hashes):
        raise ValueError(f"tree size {tree_size} is outside 0..{len(leaf_hashes)} (the leaves given)")


def verify_inclusion(leaf: bytes, index: int, tree_size: int, proof: Sequence[bytes], root: bytes) -> bool:
    """Whether ``proof`` shows the leaf hash ``leaf`` at ``index`` in the tree of ``tree_size`` whose root is ``root``.

    Replays PATH's recursion top-down (the proof's last hash is the root's other child); written from the
    definition rather than from RFC 9162's bit-twiddling loop so the tests can check one against the other.
    """
    if not 0 <= index < tree_size:
        return False
    remaining = list(proof)
    rebuilt = _root_from_path(index, tree_size, leaf, remaining)
    return not remaining and rebuilt == root


def verify_consistency(
    first: int, second: int, first_root: bytes, second_root: bytes, proof: Sequence[bytes]
) -> bool:
    """Whether ``proof`` shows that the tree of size ``first`` with ``first_root`` is a prefix of the tree of size
    ``second`` with ``second_root``. ``first`` = 0 fails: there is no proof from the empty tree to check."""
    if not 0 < first <= second:
        return False
    remaining = list(proof)
    rebuilt = _roots_from_subproof(first, second, True, first_root, remaining)
    return not remaining and rebuilt == (first_root, second_root)


def _root_from_path(index: int, n: int, leaf: bytes, remaining: list[bytes]) -> bytes | None:
    """MTH of a subtree of ``n`` leaves holding ``leaf`` at ``index``, taking siblings from the end of ``remaining``."""
    if n == 1:
        return leaf
    if not remaining:
        return None
    other, k = remaining.pop(), split(n)
    if index < k:
        left = _root_from_path(index, k, leaf, remaining)
        return None if left is None else node_hash(left, other)
    right = _root_from_path(index - k, n - k, leaf, remaining)
    return None if right is None else node_hash(other, right)


def _roots_from_subproof(
    m: int, n: int, whole: bool, first_root: bytes, remaining: list[bytes]
) -> tuple[bytes, bytes] | None:
    """(MTH of the first ``m`` leaves, MTH of all ``n``) of a subtree, replaying SUBPROOF(m, D[n], whole)."""
    if m == n:
        if whole:
            return first_root, first_root
        if not remaining:
            return None
        known = remaining.pop()
        return known, known
    if not remaining:
        return None
    other, k = remaining.pop(), split(n)
    if m <= k:
        left = _roots_from_subproof(m, k, whole, first_root, remaining)
        return None if left is None else (left[0], node_hash(left[1], other))
    right = _roots_from_subproof(m - k, n - k, False, first_root, remaining)
    return None if right is None else (node_hash(other, right[0]), node_hash(other, right[1]))
