"""What an entry is hashed as, and the receipt that proves it is in the log (offline).

>>> verify_receipt(receipt, verifier, canonical_json(entry))       # doctest: +SKIP
True
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from guard.audit.checkpoint import CheckpointVerifier
from guard.audit.merkle import leaf_hash, verify_inclusion
from guard.errors import InvalidInput


def canonical_json(entry: dict[str, Any]) -> bytes:
    """The bytes that are hashed: JSON with sorted keys, no spaces, UTF-8 (not ASCII-escaped)."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Receipt:
    """Everything needed to check offline that an entry is in the log: its index and leaf hash,
    a signed checkpoint covering it (on append: the one signed at the end of the batch that
    committed it) and the inclusion proof against that checkpoint."""

    leaf_index: int
    leaf_hash: str
    checkpoint: str
    inclusion_proof: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "leaf_index": self.leaf_index,
            "leaf_hash": self.leaf_hash,
            "checkpoint": self.checkpoint,
            "inclusion_proof": list(self.inclusion_proof),
        }


def verify_receipt(
    receipt: Receipt, verifier: CheckpointVerifier, entry: bytes | None = None
) -> bool:
    """True when the checkpoint is signed by ``verifier`` and proves the leaf (and the entry's
    canonical bytes, when given, hash to that leaf)."""
    try:
        checkpoint = verifier.verify(receipt.checkpoint)
        leaf = bytes.fromhex(receipt.leaf_hash)
        proof = [bytes.fromhex(step) for step in receipt.inclusion_proof]
    except (InvalidInput, ValueError):
        return False
    if entry is not None and leaf_hash(entry) != leaf:
        return False
    return verify_inclusion(receipt.leaf_index, checkpoint.size, leaf, proof, checkpoint.root)
