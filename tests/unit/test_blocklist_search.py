"""Blocklist search (issue 18): exact below the size limit, IVF with an exact re-rank above it,
removal, adding after training, the saved bytes and the stored generations."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest

from guard.db import Database
from guard.identity import Blocklist
from guard.identity import blocklist as blocklist_module
from guard.identity.vector_index import VectorIndex
from tests.support.blocklists import newest_row, store_on, write_legacy_folder

D = 128
LIMIT = 5_000  # a small size limit so that the IVF path runs on ~20k vectors


def normalised(vectors: np.ndarray) -> np.ndarray:
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def clustered(n: int, seed: int = 0) -> np.ndarray:
    """Face-like structure: population clusters, four references per identity."""
    rng = np.random.default_rng(seed)
    centres = normalised(rng.normal(size=(32, D)))
    people = normalised(
        0.7 * centres[rng.integers(0, 32, n // 4 + 1)]
        + rng.normal(scale=0.7 / D**0.5, size=(n // 4 + 1, D))
    )
    return normalised(
        np.repeat(people, 4, axis=0)[:n] + rng.normal(scale=0.35 / D**0.5, size=(n, D))
    )


def noisy(vectors: np.ndarray, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return normalised(vectors + rng.normal(scale=0.3 / D**0.5, size=vectors.shape))


@pytest.fixture(scope="module")
def big() -> tuple[np.ndarray, np.ndarray]:
    vectors = clustered(20_000)
    return np.arange(1, len(vectors) + 1, dtype=np.int64), vectors


@pytest.fixture(scope="module")
def ivf(big: tuple[np.ndarray, np.ndarray]) -> VectorIndex:
    ids, vectors = big
    index = VectorIndex(D, approximate_above=LIMIT)
    index.add(ids, vectors)
    return index


def test_exact_below_the_limit_is_brute_force() -> None:
    vectors = clustered(3_000)
    ids = np.arange(100, 100 + len(vectors), dtype=np.int64) * 7  # ids need not be positions
    index = VectorIndex(D, approximate_above=LIMIT)
    index.add(ids, vectors)
    assert not index.approximate
    queries = noisy(vectors[:40])
    scores = queries @ vectors.T
    for q, hits in enumerate(index.search(queries, 16)):
        expected = np.argsort(-scores[q], kind="stable")[:16]
        assert [h.id for h in hits] == ids[expected].tolist()
        assert [h.similarity for h in hits] == pytest.approx(scores[q][expected].tolist(), abs=1e-5)


def test_registry_default_never_goes_approximate() -> None:
    index = VectorIndex(D)
    index.add(np.arange(1, 11, dtype=np.int64), clustered(10))
    assert index.approximate_above is None and not index.approximate


def test_ivf_above_the_limit_returns_exact_similarities_and_recall(
    big: tuple[np.ndarray, np.ndarray], ivf: VectorIndex
) -> None:
    ids, vectors = big
    assert ivf.approximate
    picked = np.random.default_rng(3).choice(len(vectors), 300, replace=False)
    queries = noisy(vectors[picked])
    truth = ids[np.argmax(queries @ vectors.T, axis=1)]
    results = ivf.search(queries, 16)
    for query, hits in zip(queries, results, strict=True):
        assert hits == sorted(hits, key=lambda h: h.similarity, reverse=True)
        for hit in hits:
            # The similarity reported is the exact float32 inner product with the stored vector.
            assert hit.similarity == pytest.approx(float(vectors[hit.id - 1] @ query), abs=1e-5)
    recall = np.mean([hits[0].id == t for hits, t in zip(results, truth, strict=True)])
    assert recall >= 0.99


def test_removal_and_adding_after_training(big: tuple[np.ndarray, np.ndarray]) -> None:
    ids, vectors = big
    index = VectorIndex(D, approximate_above=LIMIT)
    index.add(ids, vectors)
    index.train()
    gone = ids[:200]
    assert index.remove(gone) == 200
    assert len(index) == len(ids) - 200
    assert not set(gone.tolist()) & set(index.ids().tolist())
    for hits in index.search(vectors[:200], 16):
        assert not {h.id for h in hits} & set(gone.tolist())
    assert index.remove(gone) == 0
    fresh = clustered(50, seed=9)
    fresh_ids = np.arange(10**6, 10**6 + 50, dtype=np.int64)
    index.add(fresh_ids, fresh)
    found = index.search(fresh, 1)
    assert [hits[0].id for hits in found] == fresh_ids.tolist()
    assert all(hits[0].similarity == pytest.approx(1.0, abs=1e-5) for hits in found)


def test_bytes_round_trip_keeps_results(
    big: tuple[np.ndarray, np.ndarray], ivf: VectorIndex
) -> None:
    _, vectors = big
    restored = VectorIndex.from_bytes(ivf.to_bytes(), D, approximate_above=LIMIT)
    assert len(restored) == len(ivf)
    assert np.array_equal(restored.ids(), ivf.ids())
    queries = noisy(vectors[:100], seed=5)
    assert restored.search(queries, 16) == ivf.search(queries, 16)
    with pytest.raises(ValueError):
        VectorIndex.from_bytes(ivf.to_bytes(), 64)


def test_old_format_bare_idmap2_still_reads() -> None:
    vectors = clustered(100)
    old = faiss.IndexIDMap2(faiss.IndexFlatIP(D))
    old.add_with_ids(vectors, np.arange(5, 105, dtype=np.int64))
    index = VectorIndex.from_bytes(faiss.serialize_index(old).tobytes(), D)
    assert index.ids().tolist() == list(range(5, 105))
    assert index.search(vectors[7:8], 1)[0][0].id == 12
    # Past the limit, the IVF index is trained on load, and answers the same.
    approximate = VectorIndex.from_bytes(
        faiss.serialize_index(old).tobytes(), D, approximate_above=50
    )
    assert approximate.approximate
    best = approximate.search(vectors[7:8], 1)[0][0]
    assert best.id == 12 and best.similarity == pytest.approx(1.0, abs=1e-5)


def figures_blocklist(vectors: np.ndarray) -> Blocklist:
    blocklist = Blocklist.empty("dlib", D)
    for figure in range(len(vectors) // 4):
        blocklist.add_figure(
            f"f{figure}", f"Figure {figure}", list(vectors[4 * figure : 4 * figure + 4])
        )
    return blocklist


def test_store_generations_with_the_ivf_path(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(blocklist_module, "EXACT_LIMIT", 1_000)
    vectors = clustered(8_000, seed=4)
    blocklist = figures_blocklist(vectors)
    assert blocklist.index.approximate
    db = Database(database_url)
    store = store_on(db)
    store.replace(blocklist)
    assert newest_row(db).format == 2
    queries = noisy(vectors[::400], seed=6)
    expected = blocklist.match(list(queries))
    loaded = store.load()
    assert loaded.index.approximate and loaded.match(list(queries)) == expected
    assert expected[0][0].figure_id == "f0"

    store.update(lambda b: b.remove_figure("f0"))
    assert all(c.figure_id != "f0" for c in store.current().match([vectors[0]])[0])
    extra = clustered(4, seed=11)
    store.update(lambda b: b.add_figure("late", "Late Addition", list(extra)))
    best = store.load().match([extra[2]])[0][0]
    assert best.figure_id == "late" and best.similarity == pytest.approx(1.0, abs=1e-5)
    assert store.newest_generation() == 3
    db.dispose()


def test_a_format_1_store_still_loads(database_url: str, tmp_path: Path) -> None:
    """A blocklist saved before issue 18 (bare IndexIDMap2, format 1) imports and matches, and
    is saved as format 2 on its next change."""
    import hashlib

    vectors = clustered(8)
    folder = write_legacy_folder(tmp_path / "blocklist", figures_blocklist(vectors))
    manifest = json.loads((folder / "manifest.json").read_text())
    old = faiss.IndexIDMap2(faiss.IndexFlatIP(D))
    old.add_with_ids(vectors, np.arange(1, 9, dtype=np.int64))
    old_bytes = faiss.serialize_index(old).tobytes()
    (folder / manifest["index_file"]).write_bytes(old_bytes)
    manifest.update(format=1, index_sha256=hashlib.sha256(old_bytes).hexdigest())
    (folder / "manifest.json").write_text(json.dumps(manifest))
    db = Database(database_url)
    store = store_on(db, legacy_dir=folder)
    loaded = store.current()
    assert [hits[0].figure_id for hits in loaded.match([vectors[1], vectors[6]])] == ["f0", "f1"]
    store.update(lambda b: b.remove_figure("f0"))
    assert newest_row(db).format == 2
    assert [f.id for f in store.load().list_figures()] == ["f1"]
    db.dispose()
