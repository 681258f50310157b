"""RFC 6962 hashing and proofs against published vectors, and as properties.

The vectors are those of transparency-dev/merkle (Apache-2.0), the reference implementation
behind Certificate Transparency, Trillian and Tessera: ``testonly/constants.go`` (leaves, node
and root hashes) and ``proof/verify_test.go`` (inclusion and consistency proofs).
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from guard.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_from_inclusion,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [
    bytes.fromhex(h)
    for h in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]
ROOTS = [
    bytes.fromhex(h)
    for h in (
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    )
]


def h(hexes: str) -> list[bytes]:
    return [bytes.fromhex(x) for x in hexes.split()]


# (leaf number counted from 1 as in the source, tree size, proof)
INCLUSION = [
    (1, 1, []),
    (
        1,
        8,
        h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 "
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
        ),
    ),
    (
        6,
        8,
        h(
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b "
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0 "
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
        ),
    ),
    (3, 3, h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")),
    (
        2,
        5,
        h(
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d "
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
        ),
    ),
]
CONSISTENCY = [
    (1, 1, []),
    (
        1,
        8,
        h(
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7 "
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"
        ),
    ),
    (
        6,
        8,
        h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a "
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0 "
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
        ),
    ),
    (
        2,
        5,
        h(
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e "
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"
        ),
    ),
    (
        6,
        7,
        h(
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a "
            "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f "
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"
        ),
    ),
]
TREE = MemoryTree(LEAVES)


def test_empty_tree_root() -> None:
    assert root_hash(MemoryTree(), 0) == EMPTY_ROOT == CompactRange().root()
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


@pytest.mark.parametrize("size", range(1, 9))
def test_roots_match_the_vectors(size: int) -> None:
    assert root_hash(TREE, size) == ROOTS[size - 1]
    compact = CompactRange()
    for entry in LEAVES[:size]:
        compact.append(leaf_hash(entry))
    assert compact.root() == ROOTS[size - 1]


@pytest.mark.parametrize(("leaf", "size", "proof"), INCLUSION)
def test_inclusion_proofs_match_the_vectors(leaf: int, size: int, proof: list[bytes]) -> None:
    assert inclusion_proof(TREE, leaf - 1, size) == proof
    digest = leaf_hash(LEAVES[leaf - 1])
    assert verify_inclusion(leaf - 1, size, digest, proof, ROOTS[size - 1])
    assert not verify_inclusion(leaf, size, digest, proof, ROOTS[size - 1])
    assert not verify_inclusion(leaf - 1, size * 2, digest, proof, ROOTS[size - 1])
    assert not verify_inclusion(leaf - 1, size, digest, [*proof, ROOTS[0]], ROOTS[size - 1])


@pytest.mark.parametrize(("old", "new", "proof"), CONSISTENCY)
def test_consistency_proofs_match_the_vectors(old: int, new: int, proof: list[bytes]) -> None:
    assert consistency_proof(TREE, old, new) == proof
    assert verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof)
    if proof:
        assert not verify_consistency(old, new, ROOTS[new - 1], ROOTS[old - 1], proof)
        assert not verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], proof[:-1])
        assert not verify_consistency(old, new, ROOTS[old - 1], ROOTS[new - 1], [])


def test_edge_cases_of_verification() -> None:
    some = bytes(32)
    assert verify_consistency(0, 5, EMPTY_ROOT, some, [])
    assert not verify_consistency(0, 5, EMPTY_ROOT, some, [some])
    assert not verify_consistency(3, 2, some, some, [])
    assert verify_consistency(4, 4, some, some, [])
    assert not verify_consistency(4, 4, some, some, [some])
    assert not verify_inclusion(0, 0, some, [], some)
    with pytest.raises(ValueError, match="32 bytes"):
        root_from_inclusion(0, 2, some, [b"short"])


def _flip(proof: list[bytes], which: int, bit: int) -> list[bytes]:
    changed = bytearray(proof[which])
    changed[bit // 8] ^= 1 << (bit % 8)
    return [*proof[:which], bytes(changed), *proof[which + 1 :]]


@given(data=st.data(), size=st.integers(1, 300))
@settings(max_examples=150, deadline=None)
def test_every_proof_verifies_and_every_bit_flip_fails(data: st.DataObject, size: int) -> None:
    tree = MemoryTree(i.to_bytes(4, "big") for i in range(size))
    new_root = root_hash(tree, size)

    index = data.draw(st.integers(0, size - 1))
    proof = inclusion_proof(tree, index, size)
    leaf = leaf_hash(index.to_bytes(4, "big"))
    assert verify_inclusion(index, size, leaf, proof, new_root)
    if proof:
        which = data.draw(st.integers(0, len(proof) - 1))
        bit = data.draw(st.integers(0, 255))
        assert not verify_inclusion(index, size, leaf, _flip(proof, which, bit), new_root)

    old = data.draw(st.integers(0, size))
    old_root = root_hash(tree, old)
    consistency = consistency_proof(tree, old, size)
    assert verify_consistency(old, size, old_root, new_root, consistency)
    if consistency:
        which = data.draw(st.integers(0, len(consistency) - 1))
        bit = data.draw(st.integers(0, 255))
        flipped = _flip(consistency, which, bit)
        assert not verify_consistency(old, size, old_root, new_root, flipped)
