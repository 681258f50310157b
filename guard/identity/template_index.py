"""This process's FAISS index over the decrypted face templates of the consent registry.

Templates live encrypted in the database. A version counter in ``registry_state``, bumped in the
same transaction as every template change, tells each process when its index is stale: a
process that made the change applies it to its own index after the commit (when its index was
current); any other change makes the next lookup rebuild the index from the database. So
several processes stay in step with one database.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from guard.db import Database
from guard.identity.models import FaceTemplateRow, RegistryStateRow
from guard.identity.records import SubjectCandidate
from guard.identity.vector_index import VectorIndex, best_per_owner
from guard.secrets import TemplateCipher

SEARCH_DEPTH = 16


@dataclass
class TemplateChange:
    """What one transaction did to the templates (filled in while it runs)."""

    versions: tuple[int, int] | None = None
    added: list[tuple[int, NDArray[np.float32], str]] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)

    def bump(self, session: Session) -> None:
        """Move the registry's version on, inside the transaction that changes templates."""
        row = session.execute(
            select(RegistryStateRow).where(RegistryStateRow.id == 1).with_for_update()
        ).scalar_one()
        old = int(row.version)
        session.execute(
            update(RegistryStateRow).where(RegistryStateRow.id == 1).values(version=old + 1)
        )
        self.versions = (old, old + 1)

    def add(
        self, template_ids: Sequence[int], vectors: Sequence[NDArray[np.float32]], subject_id: str
    ) -> None:
        self.added += [(i, v, subject_id) for i, v in zip(template_ids, vectors, strict=True)]

    def remove(self, template_ids: Sequence[int]) -> None:
        self.removed += template_ids


class TemplateIndex:
    """The in-memory index the registry matches faces against (see the module docstring)."""

    def __init__(
        self, db: Database, cipher: TemplateCipher, *, engine_name: str, dimension: int
    ) -> None:
        self._db = db
        self._cipher = cipher
        self._engine_name = engine_name
        self._dimension = dimension
        self._index = VectorIndex(dimension)
        self._template_subject: dict[int, str] = {}
        self._version: int | None = None
        self._lock = threading.Lock()

    @contextmanager
    def change(self) -> Iterator[TemplateChange]:
        """Hold the index while a transaction changes templates (commit it inside the block):
        once it committed, apply the change here if this index was current."""
        with self._lock:
            change = TemplateChange()
            yield change
            if change.versions is None or self._version != change.versions[0]:
                return
            if change.added:
                self._index.add(
                    np.array([i for i, _, _ in change.added], dtype=np.int64),
                    np.stack([v for _, v, _ in change.added]),
                )
                self._template_subject.update({i: s for i, _, s in change.added})
            if change.removed:
                self._index.remove(np.array(change.removed, dtype=np.int64))
                for template_id in change.removed:
                    self._template_subject.pop(template_id, None)
            self._version = change.versions[1]

    def ids(self) -> set[int]:
        """Template ids in the index (after syncing with the database)."""
        with self._lock:
            self._sync()
            return {int(i) for i in self._index.ids()}

    def match(self, queries: Sequence[NDArray[np.float32]]) -> list[list[SubjectCandidate]]:
        """For each query, the enrolled subjects most similar to it, best first."""
        with self._lock:
            self._sync()
            if not queries:
                return []
            results = self._index.search(np.stack(queries), SEARCH_DEPTH)
            mapping = dict(self._template_subject)
        return [
            [SubjectCandidate(s, sim) for s, sim in best_per_owner(hits, mapping)]
            for hits in results
        ]

    def _sync(self) -> None:
        """Rebuild the index when another change (any process) moved the version."""
        with self._db.transaction() as session:
            version = int(
                session.execute(
                    select(RegistryStateRow.version).where(RegistryStateRow.id == 1)
                ).scalar_one()
            )
            if version == self._version:
                return
            rows = session.execute(
                select(
                    FaceTemplateRow.id,
                    FaceTemplateRow.subject_id,
                    FaceTemplateRow.embedding_ciphertext,
                ).where(FaceTemplateRow.engine == self._engine_name)
            ).all()
        index = VectorIndex(self._dimension)
        if rows:
            vectors = np.stack(
                [
                    np.frombuffer(self._cipher.decrypt(r.embedding_ciphertext), np.float32)
                    for r in rows
                ]
            )
            index.add(np.array([r.id for r in rows], dtype=np.int64), vectors)
        self._index = index
        self._template_subject = {int(r.id): r.subject_id for r in rows}
        self._version = version
