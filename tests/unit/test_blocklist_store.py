"""The blocklist itself, its bytes and the files earlier versions kept (read once, for the
import): checksums verified, fail closed when damaged. The store in the database:
tests/integration/test_blocklist_store.py."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from guard.errors import Conflict, InvalidInput, NotFound, Unavailable
from guard.identity import Blocklist, build_from_embeddings
from guard.identity.blocklist import decode, encode, read_legacy_folder
from guard.identity.vector_index import VectorIndex
from tests.support.blocklists import sample_blocklist, unit, write_legacy_folder


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


def test_encode_decode_round_trip_and_match() -> None:
    blocklist, vectors = sample_blocklist()
    loaded = decode(encode(blocklist), format_version=2, engine="dlib", dimension=128, generation=3)
    assert [f.id for f in loaded.list_figures()] == ["alpha", "beta"]
    assert loaded.figures["alpha"].aliases == ("A1",) and loaded.generation == 3
    assert loaded.next_vector_id == blocklist.next_vector_id
    best = loaded.match([vectors[1], vectors[4]])
    assert [hits[0].figure_id for hits in best] == ["alpha", "beta"]
    assert best[0][0].similarity == pytest.approx(1.0, abs=1e-5)


def test_garbage_index_or_unknown_format_fails_closed() -> None:
    blocklist, _ = sample_blocklist()
    encoded = encode(blocklist)
    garbage = type(encoded)(b"not a faiss index", encoded.figures)
    with pytest.raises(Unavailable, match="corrupt"):
        decode(garbage, format_version=2, engine="dlib", dimension=128, generation=1)
    with pytest.raises(Unavailable, match="format 99"):
        decode(encoded, format_version=99, engine="dlib", dimension=128, generation=1)


def test_legacy_folder_reads_with_its_generation(tmp_path: Path) -> None:
    blocklist, _ = sample_blocklist()
    write_legacy_folder(tmp_path, blocklist, generation=6)
    loaded = read_legacy_folder(tmp_path)
    assert loaded.generation == 6 and sorted(loaded.figures) == ["alpha", "beta"]


@pytest.mark.parametrize(
    "damage", ["flip_index", "flip_figures", "delete_index", "garbage_manifest", "wrong_format"]
)
def test_damaged_legacy_folder_is_unavailable(tmp_path: Path, damage: str) -> None:
    blocklist, _ = sample_blocklist()
    write_legacy_folder(tmp_path, blocklist)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    if damage.startswith("flip"):
        path = tmp_path / manifest["index_file" if damage == "flip_index" else "figures_file"]
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    elif damage == "delete_index":
        (tmp_path / manifest["index_file"]).unlink()
    elif damage == "garbage_manifest":
        (tmp_path / "manifest.json").write_text("{not json")
    else:
        (tmp_path / "manifest.json").write_text(json.dumps({**manifest, "format": 99}))
    with pytest.raises(Unavailable):
        read_legacy_folder(tmp_path)
