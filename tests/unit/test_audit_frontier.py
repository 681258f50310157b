"""A batch resumes the tree from the stored frontier of its starting size: the same nodes and
roots as growing the tree from nothing, and every proof of the grown tree answerable from the
frontier and the nodes the batch completes (no other stored node is read)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guard.audit.merkle import (
    CompactRange,
    MemoryTree,
    frontier,
    inclusion_proof,
    leaf_hash,
    root_hash,
    verify_inclusion,
)


def test_the_frontier_is_one_perfect_subtree_per_set_bit() -> None:
    assert frontier(0) == []
    assert frontier(1) == [(0, 0)]
    assert frontier(6) == [(2, 0), (1, 2)]
    assert frontier(13) == [(3, 0), (2, 2), (0, 12)]
    assert frontier(16) == [(4, 0)]


class OnlyThese:
    """A node source that refuses every node it was not given."""

    def __init__(self, nodes: dict[tuple[int, int], bytes]) -> None:
        self.nodes = nodes

    def subtree(self, level: int, index: int) -> bytes:
        return self.nodes[(level, index)]


@given(st.integers(0, 300), st.integers(1, 70))
def test_a_resumed_range_grows_like_the_whole_tree(start: int, length: int) -> None:
    entries = [str(i).encode() for i in range(start + length)]
    whole = MemoryTree(entries)
    before = MemoryTree(entries[:start])
    edge = frontier(start)
    resumed = CompactRange.resume(start, [before.subtree(level, i) for level, i in edge])
    known = {key: before.subtree(*key) for key in edge}
    for entry in entries[start:]:
        for level, index, digest in resumed.append(leaf_hash(entry)):
            assert whole.subtree(level, index) == digest
            known[(level, index)] = digest
    end = start + length
    assert resumed.size == end and resumed.root() == root_hash(whole, end)
    source = OnlyThese(known)
    for index in range(start, end):
        proof = inclusion_proof(source, index, end)
        assert verify_inclusion(index, end, leaf_hash(entries[index]), proof, resumed.root())


def test_resume_refuses_a_frontier_of_another_size() -> None:
    with pytest.raises(ValueError, match="frontier hashes"):
        CompactRange.resume(6, [b"\0" * 32])
