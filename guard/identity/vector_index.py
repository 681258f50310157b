"""Exact inner-product search over unit vectors with stable 64-bit ids (FAISS IndexIDMap2).

Exact search on purpose: for a blocklist a lost match lets a public figure through, and flat
search over 1M x 128 answers in ~18 ms here (see docs/benchmarks.md). Both the consent registry and
the public-figure blocklist use this class.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray


@dataclass(frozen=True)
class Hit:
    id: int
    similarity: float


def best_per_owner(hits: list[Hit], owner: Mapping[int, str]) -> list[tuple[str, float]]:
    """Collapse hits on several vectors of one owner (a subject's templates, a figure's
    reference photos) to that owner's best similarity, best owner first."""
    best: dict[str, float] = {}
    for hit in hits:
        name = owner[hit.id]
        best[name] = max(best.get(name, -1.0), hit.similarity)
    return sorted(best.items(), key=lambda item: item[1], reverse=True)


class VectorIndex:
    """A FAISS ``IndexIDMap2(IndexFlatIP)``: add, remove and search by id."""

    def __init__(self, dimension: int, index: faiss.Index | None = None) -> None:
        self.dimension = dimension
        # faiss's SWIG classes are only partly typed: hold the index as Any.
        self._index: Any = (
            index if index is not None else faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
        )

    def __len__(self) -> int:
        return int(self._index.ntotal)

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if len(ids):
            self._index.add_with_ids(vectors, ids)

    def remove(self, ids: NDArray[np.int64]) -> int:
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if not len(ids):
            return 0
        return int(self._index.remove_ids(faiss.IDSelectorBatch(ids)))

    def ids(self) -> NDArray[np.int64]:
        return np.asarray(faiss.vector_to_array(self._index.id_map), dtype=np.int64)

    def search(self, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        """The ``k`` nearest ids per query, most similar first."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dimension)
        if not len(queries):
            return []
        k = min(k, len(self))
        if k == 0:
            return [[] for _ in range(len(queries))]
        scores, ids = self._index.search(queries, k)
        return [
            [Hit(int(i), float(s)) for s, i in zip(row_s, row_i, strict=True) if i >= 0]
            for row_s, row_i in zip(scores, ids, strict=True)
        ]

    def to_bytes(self) -> bytes:
        return bytes(faiss.serialize_index(self._index).tobytes())

    @classmethod
    def from_bytes(cls, data: bytes, dimension: int) -> VectorIndex:
        index = faiss.deserialize_index(np.frombuffer(data, dtype=np.uint8))
        if index.d != dimension:
            raise ValueError(f"index dimension {index.d} != expected {dimension}")
        return cls(dimension, index)
