"""Blocklist search at scale: latency and recall@1 of exact and IVF search (issue 18).

Synthetic 128-d unit vectors with the structure of face embeddings: 64 population clusters,
figures scattered inside them (two figures of one cluster ~0.5 similar), four reference vectors
per figure (~0.9 similar to each other). Queries are one face each, half noisy copies of stored
vectors (a photo of a listed figure, ~0.95 similar), half faces of people not on the list (drawn
from the same clusters). recall@1: the top id is the brute-force top id.

Rows, at each size:

- ``IndexIDMap2 flat``: what the guard searched before, FAISS on one OpenMP thread as
  ``configure_faiss_threads`` sets it (the baseline);
- ``NumPy mat-vec``: ``vectors @ query`` and ``argmax`` (OpenBLAS, on every core it has);
- ``exact``: ``VectorIndex`` below its size limit (one-thread FAISS scan of its matrix, top 16);
- ``IVF nprobe=N``: ``VectorIndex`` forced onto its IVF path (nlist ~ sqrt(n), 8-bit codes,
  exact re-rank of 64 candidates), for several ``nprobe``.

Usage: ``python bench/blocklist.py [--sizes 10000,100000,1000000] [--queries 300]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime

import faiss
import numpy as np

from guard.config import Settings
from guard.devices import configure_faiss_threads
from guard.identity.vector_index import VectorIndex, list_count

DIMENSION = 128
CLUSTERS = 64
REFERENCES = 4
DEPTH = 16  # the blocklist's SEARCH_DEPTH
NPROBES = (4, 8, 16, 32, 64)


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def _normalised(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def _noise(rng: np.random.Generator, rows: int, scale: float) -> np.ndarray:
    # A random direction of length ~``scale`` (normal / sqrt(d) has norm ~1).
    return rng.normal(scale=scale / np.sqrt(DIMENSION), size=(rows, DIMENSION)).astype(np.float32)


def _people(rng: np.random.Generator, centres: np.ndarray, count: int) -> np.ndarray:
    """``count`` identities, each near one population cluster."""
    cluster = rng.integers(0, len(centres), count)
    return _normalised(0.7 * centres[cluster] + _noise(rng, count, 0.7))


def dataset(size: int, queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``size`` stored vectors and ``queries`` queries (half noisy copies, half strangers)."""
    rng = np.random.default_rng(seed)
    centres = _normalised(rng.normal(size=(CLUSTERS, DIMENSION)))
    figures = _people(rng, centres, -(-size // REFERENCES))
    stored = np.repeat(figures, REFERENCES, axis=0)[:size]
    stored = _normalised(stored + _noise(rng, size, 0.35))
    copies = stored[rng.integers(0, size, queries // 2)]
    copies = _normalised(copies + _noise(rng, len(copies), 0.3))
    strangers = _normalised(
        np.repeat(_people(rng, centres, queries - len(copies)), 1, axis=0)
        + _noise(rng, queries - len(copies), 0.35)
    )
    return stored, np.concatenate([copies, strangers])


def timed(function: Callable[[np.ndarray], int], queries: np.ndarray) -> tuple[float, float, int]:
    """p50 and p99 ms of one-query calls, and each call's top id, over every query."""
    samples, tops = [], []
    for query in queries:
        start = time.perf_counter()
        tops.append(function(query[None, :]))
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p99 = samples[min(len(samples) - 1, int(0.99 * len(samples)))]
    return statistics.median(samples), p99, np.asarray(tops)


def row(
    size: int,
    name: str,
    result: tuple[float, float, np.ndarray],
    truth: np.ndarray,
    baseline_p99: float,
) -> float:
    """Print one row (its p99 against the baseline's: a ratio); return its p99."""
    p50, p99, tops = result
    half = len(truth) // 2
    copies = float(np.mean(tops[:half] == truth[:half]))
    strangers = float(np.mean(tops[half:] == truth[half:]))
    overall = float(np.mean(tops == truth))
    print(
        f"| {size:,} | {name} | {p50:.2f} | {p99:.2f} | {baseline_p99 / p99:.1f}x "
        f"| {overall:.3f} | {copies:.3f} | {strangers:.3f} |",
        flush=True,
    )
    return p99


def bench_size(size: int, count: int) -> None:
    log(f"{size:,}: generating")
    stored, queries = dataset(size, count)
    ids = np.arange(1, size + 1, dtype=np.int64)
    truth = ids[np.argmax(queries @ stored.T, axis=1)]

    flat = faiss.IndexIDMap2(faiss.IndexFlatIP(DIMENSION))
    flat.add_with_ids(stored, ids)
    before = timed(lambda q: flat.search(q, DEPTH)[1][0, 0], queries)
    baseline = row(size, "IndexIDMap2 flat (before, the baseline)", before, truth, before[1])
    flat.reset()  # free its copy of the vectors before the next rows

    matvec = timed(lambda q: ids[np.argmax(stored @ q[0])], queries)
    row(size, "NumPy mat-vec", matvec, truth, baseline)

    index = VectorIndex(DIMENSION)
    index.add(ids, stored)
    row(
        size,
        "exact (VectorIndex)",
        timed(lambda q: index.search(q, DEPTH)[0][0].id, queries),
        truth,
        baseline,
    )

    index.approximate_above = 0
    start = time.perf_counter()
    index.train()
    elapsed = time.perf_counter() - start
    log(f"{size:,}: IVF nlist={list_count(size)} trained and filled in {elapsed:.1f}s")
    for nprobe in NPROBES:
        index.nprobe = nprobe
        row(
            size,
            f"IVF{list_count(size)} nprobe={nprobe} + re-rank",
            timed(lambda q: index.search(q, DEPTH)[0][0].id, queries),
            truth,
            baseline,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes", default="10000,100000,1000000", help="comma-separated index sizes"
    )
    parser.add_argument("--queries", type=int, default=300, help="queries per method and size")
    args = parser.parse_args()
    configure_faiss_threads(Settings().faiss_threads)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, faiss {faiss.__version__}, numpy {np.__version__}, "
        f"faiss threads {faiss.omp_get_max_threads()}, {datetime.now(UTC):%Y-%m-%d}"
    )
    print(
        "\n| vectors | search | p50 ms | p99 ms | p99 speed-up vs before | recall@1 "
        "| recall@1 noisy copies | recall@1 strangers |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        bench_size(size, args.queries)


if __name__ == "__main__":
    main()
