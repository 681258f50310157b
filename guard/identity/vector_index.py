"""Inner-product search over unit vectors with stable 64-bit ids: exact, or IVF plus an exact
re-rank for large indexes. Both the consent registry and the public-figure blocklist use this.

Why ``IndexIDMap2(IndexFlatIP)`` measured ~3x slower than a NumPy mat-vec at 1M x 128 (57-62 ms
against 18 ms p99): not FAISS overhead. Neither ``k`` (1 or 16) nor the id-map indirection
matters (``IndexIDMap2`` and a bare ``IndexFlatIP`` measure the same), and on one core FAISS's
scan is as fast as OpenBLAS's sgemv (51 against 60 ms p50 at 1M). The mat-vec was faster because
OpenBLAS streamed the 512 MB matrix on both cores, while FAISS, which parallelises a flat search
over *queries* only, scanned it for a request's single face on the one OpenMP thread
``configure_faiss_threads`` gives it. Buying the 3x back with a second thread per query is a
loss wherever the cores are shared: with another process busy on this 2-core machine, the
two-thread mat-vec took 8 ms p50 at 25k vectors where one FAISS thread took 1 ms, and 91 against
58 ms at 1M; FAISS on two OpenMP threads was 3-4x slower than on one. So the exact path stays a
one-thread FAISS scan (over the contiguous matrix this class owns, no copy), and what fixes the
cost at scale is not scanning everything: the IVF path below (~1.3 ms p50 at 1M, 45x faster).
See bench/blocklist.py and docs/benchmarks.md.

Exact search is used up to ``approximate_above`` vectors (``None``, the default, means always:
the consent registry's small per-tenant indexes stay exact whatever their size). The blocklist
passes :data:`EXACT_LIMIT`, about the size where exact search still answers within 5 ms p99.
Above it an inverted-file index (``IndexIVFScalarQuantizer``, 8-bit codes, ``nlist`` about
``sqrt(n)``, k-means trained on the index's own vectors) proposes ``RERANK_DEPTH`` candidates
from the ``nprobe`` nearest lists, and their inner products are recomputed exactly from the
stored float32 vectors. So:

- every similarity returned is exact (the same number exact search gives for that id), so a
  decision against a threshold is exact for every figure that is returned;
- what is approximate is *which* vectors get looked at: a vector in none of the probed lists is
  not returned at all. On the clustered synthetic set of bench/blocklist.py, recall@1 at 1M
  vectors with :data:`NPROBE` is >= 0.99 (noisy copies of stored faces: ~1.0; faces of unrelated
  people, whose nearest stored vector is far and whose similarity is below any sane threshold,
  lower). A figure whose true similarity is above the threshold can therefore be missed about
  as often as that recall says, and no more: the re-rank only removes quantisation error, it
  cannot find vectors the coarse step skipped.

The IVF index is trained lazily (first search or save once past the limit), kept up to date on
add and remove, and retrained once the index has grown ~4-fold since training.
Saved bytes are a small container holding a FAISS ``IndexIDMap2(IndexFlatIP)`` (the vectors and
ids: the previous format, which :meth:`VectorIndex.from_bytes` still reads) and, when trained,
the IVF index.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import faiss
import numpy as np
from numpy.typing import NDArray

EXACT_LIMIT = 25_000
"""Above this many vectors the blocklist searches IVF + exact re-rank. Measured exact p99 with
another process busy on one of the two cores: 5.4 ms at 25k, 7.8 ms at 50k, 17 ms at 200k (p50
1.0, 2.8, 10.5 ms). Idle, the 57-62 ms at 1M scales to ~1.5 ms at 25k: headroom, on purpose."""
NPROBE = 32
"""Lists probed per query. Measured recall@1 at 1M (nlist 1024): nprobe 8: 0.92, 16: 0.997,
32: 1.000 (300 queries) at 1.3 ms p50 / 1.8 ms p99; 32 buys margin below 5 ms."""
RERANK_DEPTH = 64
"""IVF candidates per query whose inner products are recomputed exactly (at least ``k``)."""
RETRAIN_GROWTH = 2
"""Retrain when ``list_count`` has reached this multiple of the trained ``nlist``."""
TRAIN_POINTS_PER_LIST = 64
# Container: magic, layout version, then the lengths of the flat and the IVF FAISS blobs.
MAGIC = b"LGVI"
HEADER = struct.Struct("<4sIQQ")


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


def list_count(n: int) -> int:
    """IVF lists for ``n`` vectors: the power of two nearest ``sqrt(n)`` (~1000 vectors a list
    at 1M, which keeps k-means training to seconds on two cores)."""
    return int(2 ** round(math.log2(max(1.0, math.sqrt(n)))))


class VectorIndex:
    """Vectors and ids held as contiguous arrays; search exact or IVF (see the module)."""

    def __init__(self, dimension: int, *, approximate_above: int | None = None) -> None:
        self.dimension = dimension
        self.approximate_above = approximate_above
        self.nprobe = NPROBE
        # Grown by doubling so that adding one figure at a time (a rebuild) stays linear.
        self._vectors: NDArray[np.float32] = np.empty((0, dimension), dtype=np.float32)
        self._ids: NDArray[np.int64] = np.empty(0, dtype=np.int64)
        self._count = 0
        self._ivf: Any = None  # faiss's SWIG classes are only partly typed
        self._order: NDArray[np.int64] | None = None  # argsort of ids, for id -> row

    def __len__(self) -> int:
        return self._count

    @property
    def approximate(self) -> bool:
        """Whether a search now goes through the IVF index."""
        return self.approximate_above is not None and self._count > self.approximate_above

    def add(self, ids: NDArray[np.int64], vectors: NDArray[np.float32]) -> None:
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1, self.dimension)
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if len(ids) != len(vectors):
            raise ValueError(f"{len(ids)} ids for {len(vectors)} vectors")
        if not len(ids):
            return
        end = self._count + len(ids)
        if end > len(self._ids):
            capacity = max(end, 2 * len(self._ids))  # exact at first: a tenant may hold one
            grown = np.empty((capacity, self.dimension), dtype=np.float32)
            grown[: self._count] = self._vectors[: self._count]
            grown_ids = np.empty(capacity, dtype=np.int64)
            grown_ids[: self._count] = self._ids[: self._count]
            self._vectors, self._ids = grown, grown_ids
        self._vectors[self._count : end] = vectors
        self._ids[self._count : end] = ids
        self._count = end
        self._order = None
        if self._ivf is not None:
            self._ivf.add_with_ids(vectors, ids)

    def remove(self, ids: NDArray[np.int64]) -> int:
        ids = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        if not len(ids) or not self._count:
            return 0
        keep = ~np.isin(self._ids[: self._count], ids)
        kept = int(keep.sum())
        removed = self._count - kept
        if removed:
            # Compacting keeps the order of what stays (and so the ids' order).
            self._vectors = np.ascontiguousarray(self._vectors[: self._count][keep])
            self._ids = np.ascontiguousarray(self._ids[: self._count][keep])
            self._count = kept
            self._order = None
            if self._ivf is not None:
                self._ivf.remove_ids(faiss.IDSelectorBatch(ids))
        return removed

    def ids(self) -> NDArray[np.int64]:
        return self._ids[: self._count].copy()

    def search(self, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        """The ``k`` nearest ids per query, most similar first; similarities are exact."""
        queries = np.ascontiguousarray(queries, dtype=np.float32).reshape(-1, self.dimension)
        if not len(queries):
            return []
        k = min(k, self._count)
        if k == 0:
            return [[] for _ in range(len(queries))]
        if self.approximate:
            return self._search_ivf(queries, k)
        return self._search_exact(queries, k)

    def _search_exact(self, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        # FAISS's scan on the contiguous matrix (no copy), on the threads the guard gave FAISS.
        scores, rows = faiss.knn(
            queries, self._vectors[: self._count], k, metric=faiss.METRIC_INNER_PRODUCT
        )
        return [
            [Hit(int(self._ids[r]), float(s)) for s, r in zip(row_s, row_r, strict=True) if r >= 0]
            for row_s, row_r in zip(scores, rows, strict=True)
        ]

    def _search_ivf(self, queries: NDArray[np.float32], k: int) -> list[list[Hit]]:
        self.train()
        self._ivf.nprobe = self.nprobe
        _, candidates = self._ivf.search(queries, max(k, RERANK_DEPTH))
        if self._order is None:
            self._order = np.argsort(self._ids[: self._count], kind="stable")
        ids = self._ids[: self._count]
        results = []
        for query, proposed in zip(queries, candidates, strict=True):
            found = proposed[proposed >= 0]
            rows = self._order[np.searchsorted(ids, found, sorter=self._order)]
            # Exact inner products from the stored float32 vectors, not the 8-bit codes.
            exact = self._vectors[rows] @ query
            best = _top(exact, min(k, len(rows)))
            results.append([Hit(int(ids[rows[b]]), float(exact[b])) for b in best])
        return results

    def train(self) -> None:
        """Build the IVF index now if the size calls for one (else drop a stale one)."""
        if not self.approximate:
            self._ivf = None
            return
        nlist = list_count(self._count)
        # nlist ~ sqrt(n): twice the lists means the index grew ~4x since it was trained.
        if self._ivf is not None and nlist < RETRAIN_GROWTH * int(self._ivf.nlist):
            return
        stored = self._vectors[: self._count]
        quantizer = faiss.IndexFlatIP(self.dimension)
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer,
            self.dimension,
            nlist,
            faiss.ScalarQuantizer.QT_8bit,
            faiss.METRIC_INNER_PRODUCT,
        )
        # A fixed-seed sample: k-means on all 1M vectors costs minutes and buys no recall.
        sample = np.random.default_rng(0).choice(
            self._count, min(self._count, TRAIN_POINTS_PER_LIST * nlist), replace=False
        )
        ivf.train(np.ascontiguousarray(stored[np.sort(sample)]))
        ivf.add_with_ids(stored, self._ids[: self._count])
        self._ivf = ivf

    def to_bytes(self) -> bytes:
        flat = faiss.IndexIDMap2(faiss.IndexFlatIP(self.dimension))
        if self._count:
            flat.add_with_ids(self._vectors[: self._count], self._ids[: self._count])
        flat_bytes = faiss.serialize_index(flat).tobytes()
        self.train()
        ivf_bytes = faiss.serialize_index(self._ivf).tobytes() if self._ivf is not None else b""
        header = HEADER.pack(MAGIC, 1, len(flat_bytes), len(ivf_bytes))
        return header + flat_bytes + ivf_bytes

    @classmethod
    def from_bytes(
        cls, data: bytes, dimension: int, *, approximate_above: int | None = None
    ) -> VectorIndex:
        """Read :meth:`to_bytes`'s container, or a bare ``IndexIDMap2`` (the old format)."""
        ivf_bytes = b""
        if data[:4] == MAGIC:
            if len(data) < HEADER.size:
                raise ValueError("truncated vector index")
            _, layout, flat_length, ivf_length = HEADER.unpack_from(data)
            if layout != 1 or HEADER.size + flat_length + ivf_length != len(data):
                raise ValueError(f"vector index layout {layout} or its lengths are wrong")
            flat_bytes = data[HEADER.size : HEADER.size + flat_length]
            ivf_bytes = data[HEADER.size + flat_length :]
        else:
            flat_bytes = data
        flat: Any = faiss.deserialize_index(np.frombuffer(flat_bytes, dtype=np.uint8))
        if flat.d != dimension:
            raise ValueError(f"index dimension {flat.d} != expected {dimension}")
        index = cls(dimension, approximate_above=approximate_above)
        count = int(flat.ntotal)
        if count:
            ids = np.asarray(faiss.vector_to_array(flat.id_map), dtype=np.int64)
            vectors = faiss.downcast_index(flat.index).reconstruct_n(0, count)
            index.add(ids, vectors)
        if ivf_bytes:
            ivf = faiss.deserialize_index(np.frombuffer(ivf_bytes, dtype=np.uint8))
            if ivf.d != dimension or int(ivf.ntotal) != count:
                raise ValueError("the IVF index does not match the stored vectors")
            index._ivf = ivf
        # Train now (an old-format file past the limit), not on some request's first search.
        index.train()
        return index


def _top(scores: NDArray[np.float32], k: int) -> NDArray[np.intp]:
    """Positions of the ``k`` largest scores, largest first."""
    part = np.argpartition(-scores, k - 1)[:k] if k < len(scores) else np.arange(len(scores))
    return part[np.argsort(-scores[part], kind="stable")]
