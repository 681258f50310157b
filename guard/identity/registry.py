"""The consent registry: subjects, their encrypted face templates, consent grants and erasure.

    registry = ConsentRegistry(db, cipher, hasher, engine_name="dlib", dimension=128)
    alice = registry.create_subject(tenant="acme", display_name="Alice")
    registry.enroll(alice.id, faces)
    registry.grant(alice.id, grantee="acme/app", scopes=["relight"], evidence_sha256=digest)

Face templates live encrypted in the database; an in-memory FAISS index over the decrypted
templates answers matches. A version counter in ``registry_state``, bumped in the same transaction
as every template change, tells each process when its index is stale, so several processes stay
in sync with one database.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

import numpy as np
from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from guard.db import Database
from guard.errors import Conflict, InvalidInput, NotFound
from guard.faces import Face
from guard.identity.models import (
    ConsentGrantRow,
    ErasureRow,
    FaceTemplateRow,
    RegistryStateRow,
    SubjectRow,
)
from guard.identity.vector_index import VectorIndex, best_per_owner
from guard.keys import KeyedHasher, TemplateCipher

SEARCH_DEPTH = 16


def tenant_of(requester: str) -> str:
    """The tenant part of a requester id (``tenant/app``); the whole id when it has none."""
    return requester.split("/", 1)[0]


def utc_now() -> datetime:
    return datetime.now(UTC)


def _new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(12)}"


class GrantStatus(StrEnum):
    ACTIVE = "active"
    NOT_YET_VALID = "not_yet_valid"
    EXPIRED = "expired"
    REVOKED = "revoked"


@dataclass(frozen=True)
class Subject:
    id: str
    tenant: str
    display_name: str | None
    public_figure_id: str | None
    created_at: datetime
    template_count: int


@dataclass(frozen=True)
class ConsentGrant:
    id: str
    subject_id: str
    grantee: str
    scopes: tuple[str, ...]
    not_before: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    evidence_sha256: str
    created_at: datetime

    def status_at(self, now: datetime) -> GrantStatus:
        """Revocation wins over everything; then the validity window."""
        if self.revoked_at is not None and self.revoked_at <= now:
            return GrantStatus.REVOKED
        if now < self.not_before:
            return GrantStatus.NOT_YET_VALID
        if self.expires_at is not None and now >= self.expires_at:
            return GrantStatus.EXPIRED
        return GrantStatus.ACTIVE


@dataclass(frozen=True)
class SubjectCandidate:
    subject_id: str
    similarity: float


@dataclass(frozen=True)
class Erasure:
    subject_ref: str
    templates_removed: int
    grants_removed: int


def _grant(row: ConsentGrantRow) -> ConsentGrant:
    return ConsentGrant(
        id=row.id,
        subject_id=row.subject_id,
        grantee=row.grantee,
        scopes=tuple(row.scopes),
        not_before=row.not_before,
        expires_at=row.expires_at,
        revoked_at=row.revoked_at,
        evidence_sha256=row.evidence_sha256,
        created_at=row.created_at,
    )


def _validate_sha256(value: str) -> str:
    lowered = value.lower()
    if len(lowered) != 64 or any(c not in "0123456789abcdef" for c in lowered):
        raise InvalidInput("evidence must be the SHA-256 (64 hex digits) of the consent document")
    return lowered


@dataclass(frozen=True)
class RegistryChange:
    """What changed, for the audit trail (raw ids: the hook turns them into keyed hashes).

    ``kind``: subject_created, templates_enrolled, consent_granted, consent_revoked or
    subject_erased."""

    kind: str
    tenant: str
    subject_id: str
    grant_id: str | None = None
    grantee: str | None = None
    scopes: tuple[str, ...] = ()
    evidence_sha256: str | None = None
    count: int | None = None


ChangeHook = Callable[[Session, RegistryChange], None]
"""Called inside the transaction that makes a change: if it raises, the change is rolled back."""


class ConsentRegistry:
    """Subjects, templates and grants in the database; matching through a synced FAISS index."""

    def __init__(
        self,
        db: Database,
        cipher: TemplateCipher,
        hasher: KeyedHasher,
        *,
        engine_name: str,
        dimension: int,
        on_change: ChangeHook | None = None,
    ) -> None:
        self._on_change = on_change
        self._db = db
        self._cipher = cipher
        self._hasher = hasher
        self.engine_name = engine_name
        self.dimension = dimension
        self._index = VectorIndex(dimension)
        self._template_subject: dict[int, str] = {}
        self._index_version: int | None = None
        self._lock = threading.Lock()

    # subjects ------------------------------------------------------------------------------

    def create_subject(
        self,
        tenant: str,
        *,
        display_name: str | None = None,
        public_figure_id: str | None = None,
    ) -> Subject:
        """Register a person. ``public_figure_id`` links them to their blocklist entry, which
        lets their own valid grants override the public-figure block."""
        if not tenant.strip():
            raise InvalidInput("tenant must not be empty")
        row = SubjectRow(
            id=_new_id("sub"),
            tenant=tenant,
            display_name=display_name,
            public_figure_id=public_figure_id,
            created_at=utc_now(),
        )
        with self._db.transaction() as session:
            session.add(row)
            self._changed(session, RegistryChange("subject_created", tenant, row.id))
        return self._subject(row, 0)

    def _changed(self, session: Session, change: RegistryChange) -> None:
        if self._on_change is not None:
            self._on_change(session, change)

    def get_subject(self, subject_id: str) -> Subject:
        with self._db.transaction() as session:
            row = session.get(SubjectRow, subject_id)
            if row is None:
                raise NotFound(f"no subject {subject_id}")
            return self._subject(row, self._template_count(session, subject_id))

    def list_subjects(self, tenant: str | None = None) -> list[Subject]:
        with self._db.transaction() as session:
            query = select(SubjectRow).order_by(SubjectRow.created_at, SubjectRow.id)
            if tenant is not None:
                query = query.where(SubjectRow.tenant == tenant)
            counts = dict(
                session.execute(
                    select(FaceTemplateRow.subject_id, func.count()).group_by(
                        FaceTemplateRow.subject_id
                    )
                ).all()
            )
            return [self._subject(r, int(counts.get(r.id, 0))) for r in session.scalars(query)]

    def named_subjects(self, tenant: str) -> list[tuple[str, str]]:
        """``(subject_id, display_name)`` of the tenant's subjects that have a display name
        (prompt screening looks for them)."""
        with self._db.transaction() as session:
            rows = session.execute(
                select(SubjectRow.id, SubjectRow.display_name)
                .where(SubjectRow.tenant == tenant, SubjectRow.display_name.is_not(None))
                .order_by(SubjectRow.id)
            ).all()
            return [(str(i), str(name)) for i, name in rows if str(name).strip()]

    @staticmethod
    def _subject(row: SubjectRow, template_count: int) -> Subject:
        return Subject(
            id=row.id,
            tenant=row.tenant,
            display_name=row.display_name,
            public_figure_id=row.public_figure_id,
            created_at=row.created_at,
            template_count=template_count,
        )

    @staticmethod
    def _template_count(session: Session, subject_id: str) -> int:
        return int(
            session.scalar(select(func.count()).where(FaceTemplateRow.subject_id == subject_id))
            or 0
        )

    # templates -----------------------------------------------------------------------------

    def enroll(self, subject_id: str, faces: Sequence[Face]) -> list[int]:
        """Store one encrypted template per face; returns the template ids."""
        if not faces:
            raise InvalidInput("no face to enroll: the photo must show the subject's face")
        for face in faces:
            if face.engine != self.engine_name or face.embedding.shape != (self.dimension,):
                raise InvalidInput(
                    f"face from engine {face.engine!r} cannot be enrolled in a registry of "
                    f"{self.engine_name!r} templates"
                )
        now = utc_now()
        with self._lock:
            with self._db.transaction() as session:
                subject = session.get(SubjectRow, subject_id)
                if subject is None:
                    raise NotFound(f"no subject {subject_id}")
                rows = [
                    FaceTemplateRow(
                        subject_id=subject_id,
                        engine=self.engine_name,
                        dimension=self.dimension,
                        embedding_ciphertext=self._cipher.encrypt(face.embedding.tobytes()),
                        created_at=now,
                    )
                    for face in faces
                ]
                session.add_all(rows)
                session.flush()
                ids = [row.id for row in rows]
                old, new = self._bump_version(session)
                self._changed(
                    session,
                    RegistryChange(
                        "templates_enrolled", subject.tenant, subject_id, count=len(ids)
                    ),
                )
            # Committed: apply the same change to this process's index if it was current.
            if self._index_version == old:
                self._index.add(
                    np.array(ids, dtype=np.int64), np.stack([f.embedding for f in faces])
                )
                self._template_subject.update(dict.fromkeys(ids, subject_id))
                self._index_version = new
        return ids

    def template_ids(self, subject_id: str) -> list[int]:
        with self._db.transaction() as session:
            return list(
                session.scalars(
                    select(FaceTemplateRow.id)
                    .where(FaceTemplateRow.subject_id == subject_id)
                    .order_by(FaceTemplateRow.id)
                )
            )

    def indexed_template_ids(self) -> set[int]:
        """Template ids in this process's FAISS index (after syncing with the database)."""
        with self._lock:
            self._sync_index()
            return {int(i) for i in self._index.ids()}

    def match(self, embeddings: Iterable[np.ndarray]) -> list[list[SubjectCandidate]]:
        """For each embedding, the enrolled subjects most similar to it, best first."""
        queries = [np.asarray(e, dtype=np.float32) for e in embeddings]
        with self._lock:
            self._sync_index()
            if not queries:
                return []
            results = self._index.search(np.stack(queries), SEARCH_DEPTH)
            mapping = dict(self._template_subject)
        return [
            [SubjectCandidate(s, sim) for s, sim in best_per_owner(hits, mapping)]
            for hits in results
        ]

    def _bump_version(self, session: Session) -> tuple[int, int]:
        row = session.execute(
            select(RegistryStateRow).where(RegistryStateRow.id == 1).with_for_update()
        ).scalar_one()
        old = int(row.version)
        session.execute(
            update(RegistryStateRow).where(RegistryStateRow.id == 1).values(version=old + 1)
        )
        return old, old + 1

    def _sync_index(self) -> None:
        """Rebuild the in-memory index when another change (any process) moved the version."""
        with self._db.transaction() as session:
            version = int(
                session.execute(
                    select(RegistryStateRow.version).where(RegistryStateRow.id == 1)
                ).scalar_one()
            )
            if version == self._index_version:
                return
            rows = session.execute(
                select(
                    FaceTemplateRow.id,
                    FaceTemplateRow.subject_id,
                    FaceTemplateRow.embedding_ciphertext,
                ).where(FaceTemplateRow.engine == self.engine_name)
            ).all()
        index = VectorIndex(self.dimension)
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
        self._index_version = version

    # grants --------------------------------------------------------------------------------

    def grant(
        self,
        subject_id: str,
        *,
        grantee: str,
        scopes: Sequence[str],
        evidence_sha256: str,
        not_before: datetime | None = None,
        expires_at: datetime | None = None,
    ) -> ConsentGrant:
        """Record that ``subject_id`` allows ``grantee`` the operations in ``scopes``."""
        clean_scopes = sorted({s.strip() for s in scopes if s.strip()})
        if not clean_scopes:
            raise InvalidInput("a grant needs at least one scope (operation name)")
        if not grantee.strip():
            raise InvalidInput("grantee must not be empty")
        start = not_before or utc_now()
        if expires_at is not None and expires_at <= start:
            raise InvalidInput("expires_at must be after not_before")
        row = ConsentGrantRow(
            id=_new_id("grt"),
            subject_id=subject_id,
            grantee=grantee,
            scopes=clean_scopes,
            not_before=start,
            expires_at=expires_at,
            revoked_at=None,
            evidence_sha256=_validate_sha256(evidence_sha256),
            created_at=utc_now(),
        )
        with self._db.transaction() as session:
            subject = session.get(SubjectRow, subject_id)
            if subject is None:
                raise NotFound(f"no subject {subject_id}")
            session.add(row)
            change = RegistryChange(
                "consent_granted",
                subject.tenant,
                subject_id,
                grant_id=row.id,
                grantee=grantee,
                scopes=tuple(clean_scopes),
                evidence_sha256=row.evidence_sha256,
            )
            self._changed(session, change)
        return _grant(row)

    def revoke(self, grant_id: str, *, at: datetime | None = None) -> ConsentGrant:
        with self._db.transaction() as session:
            row = session.get(ConsentGrantRow, grant_id)
            if row is None:
                raise NotFound(f"no consent grant {grant_id}")
            if row.revoked_at is not None:
                raise Conflict(f"grant {grant_id} was already revoked at {row.revoked_at}")
            row.revoked_at = at or utc_now()
            subject = session.get(SubjectRow, row.subject_id)
            tenant = subject.tenant if subject is not None else ""
            change = RegistryChange(
                "consent_revoked", tenant, row.subject_id, grant_id=row.id, grantee=row.grantee
            )
            self._changed(session, change)
            return _grant(row)

    def get_grant(self, grant_id: str) -> ConsentGrant:
        with self._db.transaction() as session:
            row = session.get(ConsentGrantRow, grant_id)
            if row is None:
                raise NotFound(f"no consent grant {grant_id}")
            return _grant(row)

    def grants_for(self, subject_id: str) -> list[ConsentGrant]:
        return self.list_grants(subject_id=subject_id)

    def list_grants(
        self, *, subject_id: str | None = None, grantee: str | None = None
    ) -> list[ConsentGrant]:
        with self._db.transaction() as session:
            query = select(ConsentGrantRow).order_by(ConsentGrantRow.created_at, ConsentGrantRow.id)
            if subject_id is not None:
                query = query.where(ConsentGrantRow.subject_id == subject_id)
            if grantee is not None:
                query = query.where(ConsentGrantRow.grantee == grantee)
            return [_grant(r) for r in session.scalars(query)]

    # erasure -------------------------------------------------------------------------------

    def erase(self, subject_id: str) -> Erasure:
        """Delete the subject, their templates (DB and index) and grants; keep a keyed-hash
        record of the erasure for the audit trail."""
        with self._lock:
            with self._db.transaction() as session:
                subject = session.get(SubjectRow, subject_id)
                if subject is None:
                    raise NotFound(f"no subject {subject_id}")
                template_ids = list(
                    session.scalars(
                        select(FaceTemplateRow.id).where(FaceTemplateRow.subject_id == subject_id)
                    )
                )
                session.execute(
                    delete(FaceTemplateRow).where(FaceTemplateRow.subject_id == subject_id)
                )
                grants = session.execute(
                    delete(ConsentGrantRow).where(ConsentGrantRow.subject_id == subject_id)
                )
                subject_ref = self._hasher.ref("subject", subject_id)
                session.add(
                    ErasureRow(subject_ref=subject_ref, tenant=subject.tenant, erased_at=utc_now())
                )
                session.delete(subject)
                old, new = self._bump_version(session)
                change = RegistryChange(
                    "subject_erased", subject.tenant, subject_id, count=len(template_ids)
                )
                self._changed(session, change)
            if self._index_version == old:
                self._index.remove(np.array(template_ids, dtype=np.int64))
                for template_id in template_ids:
                    self._template_subject.pop(template_id, None)
                self._index_version = new
        return Erasure(
            subject_ref=subject_ref,
            templates_removed=len(template_ids),
            grants_removed=int(grants.rowcount),  # type: ignore[attr-defined]
        )
