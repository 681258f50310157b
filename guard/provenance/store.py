"""The manifest store: every manifest the guard signed, found again by watermark or fingerprint.

This is what makes credentials *durable*: a social network strips the C2PA manifest, the
watermark's record id (or, failing that, the pHash) leads back to the stored copy.

Each row remembers whose stamp it is (``tenant``, migration 0007) and how much its picture
decided of its fingerprint (``fingerprint_information``): a fingerprint search looks only at one
tenant's rows (or every tenant's, for the operator) and never at a fingerprint below the floor.

    >>> store = ManifestStore(Database(settings.database_url))        # doctest: +SKIP
    >>> store.by_record_id(detection.record_id).decision_id            # doctest: +SKIP
    'dec_5f0c...'
"""

from __future__ import annotations

import secrets
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import BigInteger, SmallInteger, String, Text, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from guard.db import Base, Database, UTCDateTime
from guard.errors import Conflict, Unavailable
from guard.provenance.fingerprint import hamming_distances
from guard.provenance.watermark import RECORD_ID_BITS, record_id_text


class ManifestRow(Base):
    __tablename__ = "manifests"

    record_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    manifest_label: Mapped[str] = mapped_column(String(120))
    decision_id: Mapped[str] = mapped_column(String(40), index=True)
    output_sha256: Mapped[str] = mapped_column(String(64), index=True)
    mime_type: Mapped[str] = mapped_column(String(32))
    fingerprint: Mapped[str] = mapped_column(String(16))
    store_json: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The tenant whose request was stamped; NULL when unknown (a stamp older than 0007 with no
    # audit entry to say): only the operator's search sees such a row.
    tenant: Mapped[str | None] = mapped_column(String(128), index=True)
    # How many fingerprint coefficients the stamped picture decided (fingerprint.information);
    # NULL for stamps older than 0007, which could not be measured.
    fingerprint_information: Mapped[int | None] = mapped_column(SmallInteger)


@dataclass(frozen=True)
class StoredManifest:
    """One signed output's manifest store (JSON, as a C2PA reader returned it) and its keys.

    Its fields are exactly the ``manifests`` table's columns."""

    record_id: int
    manifest_label: str
    decision_id: str
    output_sha256: str
    mime_type: str
    fingerprint: str
    store_json: str = field(repr=False)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    tenant: str | None = None
    fingerprint_information: int | None = None

    @classmethod
    def from_row(cls, row: ManifestRow) -> StoredManifest:
        return cls(**{column.name: getattr(row, column.name) for column in fields(cls)})


@dataclass(frozen=True)
class FingerprintMatch:
    manifest: StoredManifest
    distance: int


class ManifestStore:
    """Stored manifests in the guard's database (SQLite or PostgreSQL)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def new_record_id(self) -> int:
        """A random 48-bit record id not yet in the store (ids are not guessable or ordered)."""
        for _ in range(8):
            candidate = secrets.randbits(RECORD_ID_BITS)
            if self.by_record_id(candidate) is None:
                return candidate
        raise Unavailable("could not find a free watermark record id; is the store full?")

    def save(self, manifest: StoredManifest) -> None:
        row = ManifestRow(**asdict(manifest))
        try:
            with self.db.transaction() as session:
                session.add(row)
        except IntegrityError as exc:
            raise Conflict(
                f"watermark record id {record_id_text(manifest.record_id)} is already stored"
            ) from exc

    def by_record_id(self, record_id: int) -> StoredManifest | None:
        with self.db.transaction() as session:
            row = session.get(ManifestRow, record_id)
            return StoredManifest.from_row(row) if row is not None else None

    def by_output_sha256(self, sha256: str) -> StoredManifest | None:
        with self.db.transaction() as session:
            row = session.scalars(
                select(ManifestRow).where(ManifestRow.output_sha256 == sha256).limit(1)
            ).first()
            return StoredManifest.from_row(row) if row is not None else None

    def nearest_by_fingerprint(
        self, query: str, max_distance: int, *, tenant: str | None, min_information: int
    ) -> list[FingerprintMatch]:
        """``tenant``'s stored manifests (every tenant's when ``None``: the operator's view) whose
        fingerprint is within ``max_distance`` bits of ``query``, nearest first.

        Rows whose picture decided fewer than ``min_information`` fingerprint coefficients are
        not candidates; rows stamped before that was measured (NULL) are, except the degenerate
        fingerprints migration 0007 marked. Another tenant's rows are not read at all, so their
        presence changes neither the answer nor the work done for it. Compares against every
        candidate (one column read and a vectorised popcount: milliseconds at 10^5 rows); a
        multi-index hash would be the next step at 10^7.
        """
        statement = select(ManifestRow.record_id, ManifestRow.fingerprint).where(
            or_(
                ManifestRow.fingerprint_information.is_(None),
                ManifestRow.fingerprint_information >= min_information,
            )
        )
        if tenant is not None:
            statement = statement.where(ManifestRow.tenant == tenant)
        with self.db.transaction() as session:
            pairs = session.execute(statement).all()
        if not pairs:
            return []
        ids = np.array([record_id for record_id, _ in pairs], dtype=np.int64)
        prints = np.array([int(value, 16) for _, value in pairs], dtype=np.uint64)
        distances = hamming_distances(query, prints)
        order = np.argsort(distances, kind="stable")
        matches = []
        for index in order:
            if int(distances[index]) > max_distance:
                break
            stored = self.by_record_id(int(ids[index]))
            if stored is not None:
                matches.append(FingerprintMatch(stored, int(distances[index])))
        return matches
