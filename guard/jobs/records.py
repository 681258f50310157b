"""What an edit job is, as stored (``EditJobRow``) and as its tenant sees it (``Job``), and
the errors its transitions raise. The transitions themselves: :mod:`guard.jobs.store`."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Boolean, Integer, LargeBinary, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from guard.db import Base, UTCDateTime
from guard.errors import GuardError


class JobState(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    DENIED = "denied"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self not in (JobState.QUEUED, JobState.RUNNING)


class ResultGone(GuardError):
    """The job's result was deleted at the end of its retention period."""

    code = "result_expired"
    http_status = 410


class JobSuperseded(GuardError):
    """This run no longer owns the job (cancelled, or claimed again after its worker was taken
    for dead): whatever it made is not released."""

    code = "job_superseded"
    http_status = 409


class EditJobRow(Base):
    __tablename__ = "edit_jobs"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    tenant: Mapped[str] = mapped_column(String(64))
    requester: Mapped[str] = mapped_column(String(200))
    key_id: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(16))
    phase: Mapped[str | None] = mapped_column(String(16))
    progress_done: Mapped[int] = mapped_column(Integer, default=0)
    progress_total: Mapped[int] = mapped_column(Integer, default=0)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    cancel_requested: Mapped[bool] = mapped_column(Boolean, default=False)
    operation: Mapped[str] = mapped_column(String(64))
    request_json: Mapped[str] = mapped_column(Text)
    # The blobs are loaded only where they are used: every state read would otherwise carry an
    # upload (up to the image cap) out of the database, twice a second per event stream.
    input_blob: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    input_sha256: Mapped[str] = mapped_column(String(64))
    admission_decision_id: Mapped[str] = mapped_column(String(64))
    admission_leaf: Mapped[int] = mapped_column(Integer)
    outcome_json: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    result_blob: Mapped[bytes | None] = mapped_column(LargeBinary, deferred=True)
    result_media_type: Mapped[str | None] = mapped_column(String(32))
    result_sha256: Mapped[str | None] = mapped_column(String(64))
    webhook_url: Mapped[str | None] = mapped_column(Text)
    webhook_state: Mapped[str | None] = mapped_column(String(16))
    webhook_attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    idempotency_key: Mapped[str | None] = mapped_column(String(200))
    request_sha256: Mapped[str] = mapped_column(String(64))
    """What was asked (operation, prompt, params, format, webhook, image digest): a retried
    submission with the same Idempotency-Key must ask the same."""
    """A running job's lease: its run renews it while its process lives; an expired lease is
    a run that died (the keeper queues the job again, the next claim takes it over)."""


@dataclass(frozen=True)
class Job:
    """A job as its tenant sees it (no input, no result bytes)."""

    id: str
    tenant: str
    requester: str
    state: JobState
    phase: str | None
    progress_done: int
    progress_total: int
    attempt: int
    max_attempts: int
    cancel_requested: bool
    operation: str
    input_sha256: str
    admission_decision_id: str
    outcome: dict[str, Any] | None
    error: str | None
    result_media_type: str | None
    result_sha256: str | None
    result_kept: bool
    webhook_url: str | None
    webhook_state: str | None
    webhook_attempts: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    expires_at: datetime | None

    @classmethod
    def of(cls, row: EditJobRow) -> Job:
        return cls(
            id=row.id,
            tenant=row.tenant,
            requester=row.requester,
            state=JobState(row.state),
            phase=row.phase,
            progress_done=row.progress_done,
            progress_total=row.progress_total,
            attempt=row.attempt,
            max_attempts=row.max_attempts,
            cancel_requested=row.cancel_requested,
            operation=row.operation,
            input_sha256=row.input_sha256,
            admission_decision_id=row.admission_decision_id,
            outcome=json.loads(row.outcome_json) if row.outcome_json else None,
            error=row.error,
            result_media_type=row.result_media_type,
            result_sha256=row.result_sha256,
            result_kept=row.result_sha256 is not None and not _expired(row.expires_at),
            webhook_url=row.webhook_url,
            webhook_state=row.webhook_state,
            webhook_attempts=row.webhook_attempts,
            created_at=row.created_at,
            updated_at=row.updated_at,
            finished_at=row.finished_at,
            expires_at=row.expires_at,
        )


@dataclass(frozen=True)
class NewJob:
    """What :meth:`JobStore.create` writes: the admitted edit and who asked for it."""

    tenant: str
    requester: str
    key_id: str
    operation: str
    request: dict[str, Any]
    """prompt, params, output_format: the rest of the edit (the image is ``sealed_image``)."""
    sealed_image: bytes
    """The input image, encrypted (:meth:`JobStore.seal`)."""
    input_sha256: str
    webhook_url: str | None
    idempotency_key: str | None = None
    request_sha256: str = ""


@dataclass(frozen=True)
class Claim:
    """One run of a job: what the worker needs, and the attempt that must still own it."""

    job_id: str
    attempt: int
    key_id: str
    requester: str
    operation: str
    request: dict[str, Any]
    image: bytes


def _expired(expires_at: datetime | None) -> bool:
    return expires_at is not None and expires_at <= datetime.now(UTC)


def new_job_id() -> str:
    return f"job_{secrets.token_hex(16)}"
