"""Blocklist files: atomic generations, checksums verified on load, fail closed when damaged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from guard.errors import Conflict, InvalidInput, NotFound, Unavailable
from guard.identity import Blocklist, BlocklistStore, build_from_embeddings
from guard.identity.vector_index import VectorIndex

RNG = np.random.default_rng(7)


def unit(n: int, d: int = 128) -> np.ndarray:
    vectors = RNG.normal(size=(n, d)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def sample_blocklist() -> tuple[Blocklist, np.ndarray]:
    blocklist = Blocklist.empty("dlib", 128)
    vectors = unit(5)
    blocklist.add_figure("alpha", "Alpha One", list(vectors[:2]), aliases=["A1"])
    blocklist.add_figure("beta", "Beta Two", list(vectors[2:]))
    return blocklist, vectors


def test_round_trip_and_match(tmp_path: Path) -> None:
    blocklist, vectors = sample_blocklist()
    store = BlocklistStore(tmp_path)
    store.replace(blocklist)
    loaded = store.load()
    assert [f.id for f in loaded.list_figures()] == ["alpha", "beta"]
    assert loaded.figures["alpha"].aliases == ("A1",)
    best = loaded.match([vectors[1], vectors[4]])
    assert [hits[0].figure_id for hits in best] == ["alpha", "beta"]
    assert best[0][0].similarity == pytest.approx(1.0, abs=1e-5)


def test_remove_figure_removes_its_vectors(tmp_path: Path) -> None:
    blocklist, vectors = sample_blocklist()
    blocklist.remove_figure("alpha")
    assert len(blocklist.index) == 3
    assert all(h.figure_id == "beta" for h in blocklist.match([vectors[0]])[0])
    with pytest.raises(NotFound):
        blocklist.remove_figure("alpha")


def test_add_more_vectors_to_existing_figure() -> None:
    blocklist, _ = sample_blocklist()
    figure = blocklist.add_figure("alpha", "Alpha One", list(unit(1)), aliases=["A1", "Al"])
    assert len(figure.vector_ids) == 3 and figure.aliases == ("A1", "Al")


@pytest.mark.parametrize("figure_id", ["Upper", "", "has space", "x" * 200, "../escape"])
def test_bad_figure_ids_rejected(figure_id: str) -> None:
    with pytest.raises(InvalidInput):
        Blocklist.empty("dlib", 128).add_figure(figure_id, "n", list(unit(1)))


def test_wrong_dimension_rejected() -> None:
    with pytest.raises(InvalidInput):
        Blocklist.empty("dlib", 128).add_figure("x", "n", list(unit(1, 512)))


def test_save_switches_generations_and_cleans_old_files(tmp_path: Path) -> None:
    blocklist, _ = sample_blocklist()
    store = BlocklistStore(tmp_path)
    store.replace(blocklist)
    store.replace(blocklist)
    manifest = json.loads(store.manifest_path.read_text())
    assert manifest["generation"] == 2
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [".write.lock", "figures-2.json", "index-2.faiss", "manifest.json"]


@pytest.mark.parametrize("target", ["index_file", "figures_file"])
def test_flipped_byte_fails_closed(tmp_path: Path, target: str) -> None:
    blocklist, _ = sample_blocklist()
    store = BlocklistStore(tmp_path)
    store.replace(blocklist)
    assert len(store.current()) == 2
    path = tmp_path / json.loads(store.manifest_path.read_text())[target]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(Unavailable, match="checksum"):
        store.current()


@pytest.mark.parametrize(
    "damage", ["delete_index", "garbage_manifest", "delete_manifest", "wrong_format"]
)
def test_damaged_store_is_unavailable(tmp_path: Path, damage: str) -> None:
    blocklist, _ = sample_blocklist()
    store = BlocklistStore(tmp_path)
    store.replace(blocklist)
    manifest = json.loads(store.manifest_path.read_text())
    if damage == "delete_index":
        (tmp_path / manifest["index_file"]).unlink()
    elif damage == "garbage_manifest":
        store.manifest_path.write_text("{not json")
    elif damage == "delete_manifest":
        store.manifest_path.unlink()
    else:
        store.manifest_path.write_text(json.dumps({**manifest, "format": 99}))
    with pytest.raises(Unavailable):
        store.current()


def test_consistent_checksums_over_garbage_index_still_fail_closed(tmp_path: Path) -> None:
    import hashlib

    blocklist, _ = sample_blocklist()
    store = BlocklistStore(tmp_path)
    store.replace(blocklist)
    manifest = json.loads(store.manifest_path.read_text())
    garbage = b"not a faiss index"
    (tmp_path / manifest["index_file"]).write_bytes(garbage)
    manifest["index_sha256"] = hashlib.sha256(garbage).hexdigest()
    store.manifest_path.write_text(json.dumps(manifest))
    with pytest.raises(Unavailable, match="corrupt"):
        store.current()


def test_reload_when_another_writer_saves(tmp_path: Path) -> None:
    blocklist, _ = sample_blocklist()
    reader, writer = BlocklistStore(tmp_path), BlocklistStore(tmp_path)
    writer.replace(blocklist)
    assert len(reader.current()) == 2
    blocklist.remove_figure("beta")
    writer.replace(blocklist)
    assert len(reader.current()) == 1


def test_build_from_embeddings(tmp_path: Path) -> None:
    vectors = unit(4)
    path = tmp_path / "figures.npz"
    np.savez(
        path,
        figure_ids=np.array(["a", "a", "b", "c"]),
        embeddings=vectors,
        names=np.array(["A", "A", "B", "C"]),
        engine=np.array("dlib"),
    )
    blocklist = build_from_embeddings(path, engine_name="dlib")
    assert [f.id for f in blocklist.list_figures()] == ["a", "b", "c"]
    assert len(blocklist.figures["a"].vector_ids) == 2
    with pytest.raises(Conflict):
        build_from_embeddings(path, engine_name="arcface")
    (tmp_path / "bad.npz").write_bytes(b"nope")
    with pytest.raises(InvalidInput):
        build_from_embeddings(tmp_path / "bad.npz", engine_name="dlib")


def test_vector_index_ids_and_removal() -> None:
    index = VectorIndex(128)
    index.add(np.array([10, 20, 30]), unit(3))
    assert sorted(index.ids().tolist()) == [10, 20, 30]
    assert index.remove(np.array([20])) == 1
    assert sorted(index.ids().tolist()) == [10, 30]
    restored = VectorIndex.from_bytes(index.to_bytes(), 128)
    assert sorted(restored.ids().tolist()) == [10, 30]
    assert index.search(unit(1), 5)[0][0].id in (10, 30)
    with pytest.raises(ValueError):
        VectorIndex.from_bytes(index.to_bytes(), 64)


def test_update_changes_a_fresh_copy_and_saves_the_next_generation(tmp_path: Path) -> None:
    blocklist, _ = sample_blocklist()
    store = BlocklistStore(tmp_path)
    store.replace(blocklist)
    shared = store.current()
    added = store.update(lambda b: b.add_figure("gamma", "Gamma Three", list(unit(1))))
    assert added.id == "gamma"
    assert len(shared) == 2, "readers' cached copy is never changed in place"
    assert [f.id for f in store.current().list_figures()] == ["alpha", "beta", "gamma"]
    assert json.loads(store.manifest_path.read_text())["generation"] == 2


def test_concurrent_updates_lose_no_change(tmp_path: Path) -> None:
    """Two stores (as two workers would hold) adding figures at once: every one lands."""
    import threading

    BlocklistStore(tmp_path).replace(Blocklist.empty("dlib", 128))
    stores = [BlocklistStore(tmp_path), BlocklistStore(tmp_path)]
    vectors = unit(8)

    def add(worker: int) -> None:
        for i in range(4):
            figure_id = f"w{worker}-{i}"
            stores[worker].update(
                lambda b, f=figure_id, v=vectors[worker * 4 + i]: b.add_figure(f, f, [v])
            )

    threads = [threading.Thread(target=add, args=(w,)) for w in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(BlocklistStore(tmp_path).current()) == 8
    assert json.loads((tmp_path / "manifest.json").read_text())["generation"] == 9


def test_update_over_a_generation_that_moved_on_is_a_conflict(tmp_path: Path) -> None:
    """A writer that does not take the lock (a copied folder, an old guard) saves while an
    update is being made: the update fails and writes nothing."""
    blocklist, _ = sample_blocklist()
    store = BlocklistStore(tmp_path)
    store.replace(blocklist)

    def change_behind_its_back(b: Blocklist) -> None:
        manifest = json.loads(store.manifest_path.read_text())
        store.manifest_path.write_text(json.dumps({**manifest, "generation": 7}))
        b.remove_figure("alpha")

    with pytest.raises(Conflict, match="generation 1 became 7"):
        store.update(change_behind_its_back)
    assert json.loads(store.manifest_path.read_text())["generation"] == 7
    assert "alpha" in store.load().figures
