"""RFC 6962 / RFC 9162 Merkle trees: hashes, proofs and their verification.

Hashing (RFC 6962 §2.1): a leaf is ``SHA-256(0x00 || entry)``, an interior node
``SHA-256(0x01 || left || right)``, and a tree of ``n`` leaves splits at ``k``, the largest power of
two smaller than ``n``. Every range the proofs need is then a *perfect* subtree or a right edge
made of a few of them, so a store that keeps each completed perfect subtree (see
:class:`SubtreeHashes`) answers any proof with O(log n) reads instead of rehashing the log.

Verification follows RFC 9162 §2.1.3.2 and §2.1.4.2 word for word; it needs only hashes, so
anyone can run it offline.

    >>> tree = MemoryTree([b"a", b"b", b"c"])
    >>> proof = inclusion_proof(tree, 1, 3)
    >>> verify_inclusion(1, 3, leaf_hash(b"b"), proof, root_hash(tree, 3))
    True
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Protocol

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()


def leaf_hash(entry: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split_point(size: int) -> int:
    """The largest power of two strictly smaller than ``size`` (``size`` >= 2)."""
    return 1 << ((size - 1).bit_length() - 1)


class SubtreeHashes(Protocol):
    """Hashes of perfect subtrees: ``2**level`` leaves starting at leaf ``index * 2**level``."""

    def subtree(self, level: int, index: int) -> bytes: ...


def range_hash(source: SubtreeHashes, start: int, end: int) -> bytes:
    """MTH of leaves ``[start, end)``, a range that the RFC's recursion produces (aligned)."""
    size = end - start
    if size <= 0:
        raise ValueError(f"empty range [{start}, {end})")
    if size & (size - 1) == 0 and start % size == 0:
        return source.subtree(size.bit_length() - 1, start // size)
    k = split_point(size)
    return node_hash(range_hash(source, start, start + k), range_hash(source, start + k, end))


def root_hash(source: SubtreeHashes, size: int) -> bytes:
    return EMPTY_ROOT if size == 0 else range_hash(source, 0, size)


def inclusion_proof(source: SubtreeHashes, index: int, size: int) -> list[bytes]:
    """PATH(index, D[0:size]) of RFC 6962 §2.1.1."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    proof: list[bytes] = []
    start, end = 0, size
    while end - start > 1:
        k = split_point(end - start)
        if index < start + k:
            proof.append(range_hash(source, start + k, end))
            end = start + k
        else:
            proof.append(range_hash(source, start, start + k))
            start += k
    proof.reverse()
    return proof


def consistency_proof(source: SubtreeHashes, old_size: int, new_size: int) -> list[bytes]:
    """PROOF(old_size, D[0:new_size]) of RFC 6962 §2.1.2."""
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    start, end, m, complete = 0, new_size, old_size, True
    while True:
        size = end - start
        if m == size:
            if not complete:
                proof.append(range_hash(source, start, end))
            break
        k = split_point(size)
        if m <= k:
            proof.append(range_hash(source, start + k, end))
            end = start + k
        else:
            proof.append(range_hash(source, start, start + k))
            start, m, complete = start + k, m - k, False
    proof.reverse()
    return proof


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Sequence[bytes]) -> bytes:
    """RFC 9162 §2.1.3.2; raises :class:`ValueError` when the proof cannot be valid."""
    if not 0 <= index < size:
        raise ValueError(f"leaf {index} is not in a tree of size {size}")
    _check_sizes([leaf, *proof])
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            raise ValueError("the inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise ValueError("the inclusion proof is too short")
    return r


def verify_inclusion(
    index: int, size: int, leaf: bytes, proof: Sequence[bytes], root: bytes
) -> bool:
    try:
        return root_from_inclusion(index, size, leaf, proof) == root
    except ValueError:
        return False


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> bool:
    """RFC 9162 §2.1.4.2: is the tree of ``new_size`` an append-only extension of ``old_size``?"""
    if old_size < 0 or old_size > new_size:
        return False
    if old_size == new_size:
        return not proof and old_root == new_root
    if old_size == 0:
        return not proof
    if not proof:
        return False
    try:
        _check_sizes([old_root, new_root, *proof])
    except ValueError:
        return False
    path = list(proof)
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == old_root and sr == new_root


def _check_sizes(hashes: Iterable[bytes]) -> None:
    if any(len(h) != HASH_SIZE for h in hashes):
        raise ValueError("every hash must be 32 bytes")


def frontier(size: int) -> list[tuple[int, int]]:
    """The perfect subtrees ``(level, index)`` a tree of ``size`` leaves splits into, largest
    first (one per set bit of ``size``): all a store must read to append after it and to prove
    anything in the tree it grows into (every other older node such a proof needs lies inside
    one of them)."""
    nodes: list[tuple[int, int]] = []
    start = 0
    for level in reversed(range(size.bit_length())):
        if size >> level & 1:
            nodes.append((level, start >> level))
            start += 1 << level
    return nodes


class CompactRange:
    """The right-edge perfect subtrees of a growing tree: its root at any size, in O(log n) memory.

    What an offline verifier streams entries through (``guard audit verify``), and what a batch
    of appends resumes from the stored :func:`frontier` (:meth:`resume`).
    """

    def __init__(self) -> None:
        self._stack: list[tuple[int, bytes]] = []  # (level, hash), levels strictly decreasing
        self.size = 0

    @classmethod
    def resume(cls, size: int, hashes: Sequence[bytes]) -> CompactRange:
        """The range of a tree of ``size`` leaves from the hashes of its :func:`frontier`."""
        levels = [level for level, _ in frontier(size)]
        if len(hashes) != len(levels):
            raise ValueError(f"a tree of size {size} has {len(levels)} frontier hashes")
        _check_sizes(hashes)
        compact = cls()
        compact._stack = list(zip(levels, hashes, strict=True))
        compact.size = size
        return compact

    def append(self, leaf: bytes) -> list[tuple[int, int, bytes]]:
        """Add a leaf hash; return the perfect subtrees it completed as ``(level, index, hash)``."""
        completed = [(0, self.size, leaf)]
        level, current = 0, leaf
        while self._stack and self._stack[-1][0] == level:
            _, left = self._stack.pop()
            current = node_hash(left, current)
            level += 1
            completed.append((level, self.size >> level, current))
        self._stack.append((level, current))
        self.size += 1
        return completed

    def root(self) -> bytes:
        if not self._stack:
            return EMPTY_ROOT
        root = self._stack[-1][1]
        for _, left in reversed(self._stack[:-1]):
            root = node_hash(left, root)
        return root


class MemoryTree:
    """An in-memory tree of entries (tests and small offline checks)."""

    def __init__(self, entries: Iterable[bytes] = ()) -> None:
        self._nodes: dict[tuple[int, int], bytes] = {}
        self._range = CompactRange()
        for entry in entries:
            self.append(entry)

    @property
    def size(self) -> int:
        return self._range.size

    def append(self, entry: bytes) -> None:
        for level, index, digest in self._range.append(leaf_hash(entry)):
            self._nodes[(level, index)] = digest

    def subtree(self, level: int, index: int) -> bytes:
        return self._nodes[(level, index)]
