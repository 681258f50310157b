"""Tables of the consent registry. The schema itself is defined by the Alembic migrations."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, ForeignKey, Integer, LargeBinary, String, false
from sqlalchemy.orm import Mapped, mapped_column

from guard.db import Base, UTCDateTime

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
TemplateId = BigInteger().with_variant(Integer(), "sqlite")


class SubjectRow(Base):
    __tablename__ = "subjects"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(128), index=True)
    display_name: Mapped[str | None] = mapped_column(String(200))
    public_figure_id: Mapped[str | None] = mapped_column(String(128))
    """Set only by an operator's verified link (with the three columns below)."""
    public_figure_linked_by: Mapped[str | None] = mapped_column(String(128))
    public_figure_linked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    public_figure_link_evidence: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class FaceTemplateRow(Base):
    __tablename__ = "face_templates"

    id: Mapped[int] = mapped_column(TemplateId, primary_key=True, autoincrement=True)
    subject_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    engine: Mapped[str] = mapped_column(String(32))
    dimension: Mapped[int] = mapped_column(Integer)
    embedding_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConsentGrantRow(Base):
    __tablename__ = "consent_grants"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    grantee: Mapped[str] = mapped_column(String(200), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    evidence_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    consent_level: Mapped[str] = mapped_column(String(32), default="attested")
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The outstanding one-time confirmation token: the SHA-256 of its secret, and its expiry.
    confirmation_sha256: Mapped[str | None] = mapped_column(String(64))
    confirmation_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # The person withdrew it on their own page (binding: see ConsentRegistry.grant).
    withdrawn_by_person: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=false()
    )


class RegistryStateRow(Base):
    """One row whose version changes with every template change, so every process can tell
    that its in-memory FAISS index is stale and rebuild it."""

    __tablename__ = "registry_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger)


class ErasureRow(Base):
    """What survives an erasure: a keyed hash of the subject id and when it was erased."""

    __tablename__ = "erasures"

    id: Mapped[int] = mapped_column(TemplateId, primary_key=True, autoincrement=True)
    certificate_id: Mapped[str] = mapped_column(
        String(32), unique=True, index=True, default=lambda: secrets.token_hex(16)
    )
    """Names the erasure certificate: random, because ``id`` counts every tenant's erasures."""
    subject_ref: Mapped[str] = mapped_column(String(64), index=True)
    tenant: Mapped[str] = mapped_column(String(128))
    erased_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConsentRequestRow(Base):
    """What an integrator asked a person to agree to, and how the person answered."""

    __tablename__ = "consent_requests"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    tenant: Mapped[str] = mapped_column(String(128), index=True)
    requester: Mapped[str] = mapped_column(String(200))
    requester_display_name: Mapped[str] = mapped_column(String(200))
    tenant_display_name: Mapped[str] = mapped_column(String(200))
    scopes: Mapped[list[str]] = mapped_column(JSON)
    grant_days: Mapped[int] = mapped_column(Integer)
    message: Mapped[str] = mapped_column(String(2000), default="")
    # The one-time link: the SHA-256 of its secret (cleared once answered) and its expiry.
    secret_sha256: Mapped[str | None] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="pending")
    grant_id: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Photos that could not be confirmed; at MAX_FAILED_PHOTOS the link is locked.
    failed_photos: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ManagementLinkRow(Base):
    """One of a person's links to their own page (only the SHA-256 of its secret)."""

    __tablename__ = "management_links"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    subject_id: Mapped[str] = mapped_column(
        String(40), ForeignKey("subjects.id", ondelete="CASCADE"), index=True
    )
    secret_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
