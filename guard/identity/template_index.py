"""This process's FAISS index over the decrypted face templates of the consent registry.

Templates live encrypted in the database. A version counter in ``registry_state``, bumped in the
same transaction as every template change, tells each process when its index is stale: a
process that made the change applies it to its own index after the commit (when its index was
current); any other change makes the next lookup rebuild the index from the database. So
several processes stay in step with one database.

Each tenant's templates are a separate index, and a lookup for a tenant searches only that
tenant's: which faces other tenants enrolled changes neither what a tenant's lookup finds nor
the work it does (tenants are unlinkable), and no other tenant's templates can crowd a tenant's
own out of the search depth.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from guard.db import Database
from guard.identity.models import FaceTemplateRow, RegistryStateRow, SubjectRow
from guard.identity.records import SubjectCandidate
from guard.identity.vector_index import VectorIndex, best_per_owner
from guard.secrets import TemplateCipher

SEARCH_DEPTH = 16


def seal_template(cipher: TemplateCipher, embedding: NDArray[np.float32]) -> bytes:
    """A face template as stored: its float32 bytes, encrypted (the one stored form)."""
    return cipher.encrypt(np.asarray(embedding, dtype=np.float32).tobytes())


def open_template(cipher: TemplateCipher, ciphertext: bytes) -> NDArray[np.float32]:
    """A stored template back as its embedding (:class:`Unavailable` with the wrong key)."""
    return np.frombuffer(cipher.decrypt(ciphertext), np.float32)


@dataclass
class TemplateChange:
    """What one transaction did to the templates (filled in while it runs)."""

    versions: tuple[int, int] | None = None
    added: list[tuple[int, NDArray[np.float32], str]] = field(default_factory=list)
    # The tenant of each added template's subject, when the caller knows it (else looked up).
    tenants: dict[str, str] = field(default_factory=dict)
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
        self,
        template_ids: Sequence[int],
        vectors: Sequence[NDArray[np.float32]],
        subject_id: str,
        tenant: str | None = None,
    ) -> None:
        self.added += [(i, v, subject_id) for i, v in zip(template_ids, vectors, strict=True)]
        if tenant is not None:
            self.tenants[subject_id] = tenant

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
        self._indexes: dict[str, VectorIndex] = {}  # per tenant
        self._template_subject: dict[int, str] = {}
        self._template_tenant: dict[int, str] = {}
        self._version: int | None = None
        # Re-entrant: an enrollment screens its faces (match) while it holds the index.
        self._lock = threading.RLock()

    @contextmanager
    def change(self) -> Iterator[TemplateChange]:
        """Hold the index while a transaction changes templates (commit it inside the block):
        once it committed, apply the change here if this index was current."""
        with self._lock:
            change = TemplateChange()
            yield change
            if change.versions is None or self._version != change.versions[0]:
                return
            tenants = self._tenants_of({s for _, _, s in change.added} - change.tenants.keys())
            if tenants is None:
                return  # a subject went meanwhile: the next lookup rebuilds from the database
            tenants.update(change.tenants)
            added: dict[str, list[tuple[int, NDArray[np.float32]]]] = {}
            for template_id, vector, subject_id in change.added:
                added.setdefault(tenants[subject_id], []).append((template_id, vector))
                self._template_subject[template_id] = subject_id
                self._template_tenant[template_id] = tenants[subject_id]
            for tenant, pairs in added.items():
                self._indexes.setdefault(tenant, VectorIndex(self._dimension)).add(
                    np.array([i for i, _ in pairs], dtype=np.int64), np.stack([v for _, v in pairs])
                )
            removed: dict[str, list[int]] = {}
            for template_id in change.removed:
                self._template_subject.pop(template_id, None)
                if template_id in self._template_tenant:
                    removed.setdefault(self._template_tenant.pop(template_id), []).append(
                        template_id
                    )
            for tenant, template_ids in removed.items():
                self._indexes[tenant].remove(np.array(template_ids, dtype=np.int64))
            self._version = change.versions[1]

    def _tenants_of(self, subject_ids: set[str]) -> dict[str, str] | None:
        """The tenant of each subject (``None`` when one of them is gone)."""
        if not subject_ids:
            return {}
        with self._db.transaction() as session:
            rows = session.execute(
                select(SubjectRow.id, SubjectRow.tenant).where(SubjectRow.id.in_(subject_ids))
            ).all()
        found = {str(i): str(t) for i, t in rows}
        return found if found.keys() == subject_ids else None

    def ids(self) -> set[int]:
        """Template ids in the index (after syncing with the database)."""
        with self._lock:
            self._sync()
            return {int(i) for index in self._indexes.values() for i in index.ids()}

    def match(
        self, queries: Sequence[NDArray[np.float32]], *, tenant: str | None = None
    ) -> list[list[SubjectCandidate]]:
        """For each query, the enrolled subjects most similar to it, best first: only
        ``tenant``'s subjects when it is given (only its templates are searched), else every
        tenant's."""
        with self._lock:
            self._sync()
            if not queries:
                return []
            stacked = np.stack(queries)
            if tenant is not None:
                own = self._indexes.get(tenant)
                results = (
                    own.search(stacked, SEARCH_DEPTH) if own is not None else [[] for _ in queries]
                )
            else:
                per_tenant = [
                    index.search(stacked, SEARCH_DEPTH) for index in self._indexes.values()
                ]
                results = [
                    sorted(
                        (hit for hits in per_tenant for hit in hits[q]),
                        key=lambda hit: hit.similarity,
                        reverse=True,
                    )[:SEARCH_DEPTH]
                    for q in range(len(queries))
                ]
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
                    SubjectRow.tenant,
                    FaceTemplateRow.embedding_ciphertext,
                )
                .join(SubjectRow, SubjectRow.id == FaceTemplateRow.subject_id)
                .where(FaceTemplateRow.engine == self._engine_name)
            ).all()
        by_tenant: dict[str, list[Any]] = {}
        for row in rows:
            by_tenant.setdefault(row.tenant, []).append(row)
        indexes: dict[str, VectorIndex] = {}
        for tenant, own in by_tenant.items():
            vectors = np.stack([open_template(self._cipher, r.embedding_ciphertext) for r in own])
            indexes[tenant] = VectorIndex(self._dimension)
            indexes[tenant].add(np.array([r.id for r in own], dtype=np.int64), vectors)
        self._indexes = indexes
        self._template_subject = {int(r.id): r.subject_id for r in rows}
        self._template_tenant = {int(r.id): r.tenant for r in rows}
        self._version = version
