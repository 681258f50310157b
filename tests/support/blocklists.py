"""Blocklist stores on a test database, and the damage tests do to the stored generations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from cryptography.fernet import Fernet
from sqlalchemy import delete, func, select, update

from guard.db import Database
from guard.identity import Blocklist, BlocklistStore
from guard.identity.blocklist import encode
from guard.identity.blocklist_store import BlocklistGenerationRow
from guard.secrets import TemplateCipher

_RNG = np.random.default_rng(7)


def unit(n: int, d: int = 128) -> np.ndarray:
    """``n`` random unit vectors (a different draw on every call)."""
    vectors = _RNG.normal(size=(n, d)).astype(np.float32)
    normalised: np.ndarray = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    return normalised


def sample_blocklist() -> tuple[Blocklist, np.ndarray]:
    """Two figures of five vectors (alpha: the first two, beta: the other three)."""
    blocklist = Blocklist.empty("dlib", 128)
    vectors = unit(5)
    blocklist.add_figure("alpha", "Alpha One", list(vectors[:2]), aliases=["A1"])
    blocklist.add_figure("beta", "Beta Two", list(vectors[2:]))
    return blocklist, vectors


def cipher_of(key: bytes | None = None) -> TemplateCipher:
    return TemplateCipher(key or Fernet.generate_key(), source="test key")


def store_on(
    db: Database,
    cipher: TemplateCipher | None = None,
    *,
    poll_s: float = 0.0,
    legacy_dir: Path | None = None,
) -> BlocklistStore:
    """A store on ``db`` whose template key is ``cipher`` (a new one when not given)."""
    key = cipher or cipher_of()
    return BlocklistStore(db, lambda: key, poll_s=poll_s, legacy_dir=legacy_dir)


def newest_row(db: Database) -> BlocklistGenerationRow:
    with db.transaction() as session:
        newest = session.scalar(select(func.max(BlocklistGenerationRow.generation)))
        row = session.get(BlocklistGenerationRow, newest)
        assert row is not None, "no blocklist generation is stored"
        return row


def flip_index_byte(db: Database) -> None:
    """Damage the newest generation's encrypted index (one byte in the middle)."""
    row = newest_row(db)
    assert row.index_blob is not None
    blob = bytearray(row.index_blob)
    blob[len(blob) // 2] ^= 0x01
    _set(db, row.generation, index_blob=bytes(blob))


def garble_figures(db: Database) -> None:
    """Change the newest generation's sidecar so that it no longer matches its checksum."""
    row = newest_row(db)
    assert row.figures_json is not None
    _set(db, row.generation, figures_json=row.figures_json.replace('"name"', '"name" ', 1))


def forget_blocklist(db: Database) -> None:
    """Delete every stored generation (as a database restored without the table's rows)."""
    with db.transaction() as session:
        session.execute(delete(BlocklistGenerationRow))


def _set(db: Database, generation: int, **values: object) -> None:
    with db.transaction() as session:
        session.execute(
            update(BlocklistGenerationRow)
            .where(BlocklistGenerationRow.generation == generation)
            .values(**values)
        )


def write_legacy_folder(directory: Path, blocklist: Blocklist, *, generation: int = 4) -> Path:
    """``blocklist`` as an earlier version saved it in files (manifest.json and friends)."""
    import json

    encoded = encode(blocklist)
    directory.mkdir(parents=True, exist_ok=True)
    index_file, figures_file = f"index-{generation}.faiss", f"figures-{generation}.json"
    (directory / index_file).write_bytes(encoded.index)
    (directory / figures_file).write_bytes(encoded.figures)
    manifest = {
        "format": 2,
        "generation": generation,
        "engine": blocklist.engine_name,
        "dimension": blocklist.dimension,
        "figure_count": len(blocklist.figures),
        "vector_count": len(blocklist.index),
        "index_file": index_file,
        "index_sha256": encoded.index_sha256,
        "figures_file": figures_file,
        "figures_sha256": encoded.figures_sha256,
        "written_at": "2026-11-01T00:00:00+00:00",
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=1))
    return directory
