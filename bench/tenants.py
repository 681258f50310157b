"""Registry matching with one index per tenant (issue 15: tenants are unlinkable).

A request's faces are matched only against the requesting tenant's templates. This measures one
face matched through ``TemplateIndex.match`` (the matcher's path: the version check against the
database, the exact FAISS search, best-per-subject), for the requesting tenant only and, as the
baseline, across every tenant's templates (what one shared index searched before), at several
registry sizes. The templates are real rows (Fernet-encrypted 128-d unit vectors) in a SQLite
database, loaded once like a process does on start.

Usage: ``python bench/tenants.py [--total 100000]``
"""

from __future__ import annotations

import argparse
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from cryptography.fernet import Fernet
from sqlalchemy import insert, update
from timing import median_ms

from guard.db import Database, upgrade_to_head
from guard.identity.models import FaceTemplateRow, RegistryStateRow, SubjectRow
from guard.identity.template_index import TemplateIndex, seal_template
from guard.secrets import TemplateCipher

DIMENSION = 128


def _unit(rng: np.random.Generator, rows: int) -> np.ndarray:
    vectors = rng.normal(size=(rows, DIMENSION)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def _registry(folder: Path, total: int, tenants: int, cipher: TemplateCipher) -> Database:
    """``total`` templates, one per subject, spread evenly over ``tenants`` tenants."""
    url = f"sqlite:///{folder / f'{total}-{tenants}.db'}"
    upgrade_to_head(url)
    db = Database(url)
    now = datetime.now(UTC)
    vectors = _unit(np.random.default_rng(total + tenants), total)
    with db.engine.begin() as connection:
        connection.execute(
            insert(SubjectRow),
            [
                {"id": f"sub_{i:09d}", "tenant": f"t{i % tenants}", "created_at": now}
                for i in range(total)
            ],
        )
        connection.execute(
            insert(FaceTemplateRow),
            [
                {
                    "subject_id": f"sub_{i:09d}",
                    "engine": "dlib",
                    "dimension": DIMENSION,
                    "embedding_ciphertext": seal_template(cipher, vectors[i]),
                    "created_at": now,
                }
                for i in range(total)
            ],
        )
        connection.execute(update(RegistryStateRow).values(version=1))
    return db


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--total", type=int, default=100_000, help="largest registry size")
    args = parser.parse_args()
    cipher = TemplateCipher(Fernet.generate_key())
    query = [_unit(np.random.default_rng(7), 1)[0]]
    print(
        f"machine: {platform.machine()}, {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d}"
    )
    print("\n| templates | tenants | own tenant ms | all tenants ms (baseline) | ratio |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for total in sorted({10_000, args.total}):
            for tenants in (1, 10, 100):
                db = _registry(Path(tmp), total, tenants, cipher)
                index = TemplateIndex(db, cipher, engine_name="dlib", dimension=DIMENSION)
                index.match(query)  # load once, as a process does on its first request
                own = median_ms(lambda index=index: index.match(query, tenant="t0"), 15)
                every = median_ms(lambda index=index: index.match(query), 15)
                print(
                    f"| {total:,} | {tenants} | {own:.2f} | {every:.2f} | {own / every:.2f}× |",
                    flush=True,
                )
                db.dispose()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
