"""Edit jobs in the database: one row per job, changed only by guarded transitions.

A job moves ``queued → running → succeeded | denied | failed`` or to ``cancelled``; every
transition is one ``UPDATE ... WHERE`` that names the state (and, for a run, the attempt) it
expects, so two workers that both think they run a job cannot both finish it: the one whose
claim is older finds nothing to update (:class:`JobSuperseded`) and its release rolls back.

The input image is kept (encrypted with the template key, like face templates) only until the
job ends; the stamped result (encrypted too) until ``expires_at``. Every read takes the tenant:
another tenant's job reads exactly as one that does not exist.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, CursorResult, Update, func, select, text, update
from sqlalchemy.orm import Session

from guard.db import Database
from guard.errors import Conflict, NotFound, RateLimited
from guard.jobs.records import (
    Claim,
    EditJobRow,
    Job,
    JobState,
    JobSuperseded,
    NewJob,
    ResultGone,
)
from guard.secrets import TemplateCipher


def _rowcount(session: Session, statement: Update) -> int:
    result = session.execute(statement)
    assert isinstance(result, CursorResult)  # an UPDATE's result has a row count
    return int(result.rowcount)


def _owned_by(claim: Claim) -> tuple[ColumnElement[bool], ...]:
    """The job row as long as this run still owns it: running, at this run's attempt. Every
    transition of a run names them, so a superseded or given-back run changes nothing."""
    return (
        EditJobRow.id == claim.job_id,
        EditJobRow.attempt == claim.attempt,
        EditJobRow.state == JobState.RUNNING.value,
    )


def _now() -> datetime:
    return datetime.now(UTC)


ACTIVE = (JobState.QUEUED.value, JobState.RUNNING.value)


class JobStore:
    """The ``edit_jobs`` table. ``cipher()`` is the template key as it is now; ``lease`` is how
    long a run owns its job without renewing (``GUARD_JOB_STALLED_S``)."""

    def __init__(
        self,
        db: Database,
        cipher: Callable[[], TemplateCipher],
        *,
        max_attempts: int,
        result_retention: timedelta,
        lease: timedelta = timedelta(seconds=30),
        on_finished: Callable[[Session, EditJobRow], None] | None = None,
    ) -> None:
        """``on_finished(session, row)`` is told every job that ends, in the transaction that
        ends it (the webhook is queued there)."""
        self.db = db
        self._cipher = cipher
        self._on_finished = on_finished
        self.max_attempts = max_attempts
        self.result_retention = result_retention
        self.lease = lease

    def seal(self, data: bytes) -> bytes:
        """``data`` encrypted with the template key (before any transaction: a large image
        must not be encrypted while the audit log's lock is held)."""
        return self._cipher().encrypt(data)

    @staticmethod
    def _own(session: Session, job_id: str, tenant: str, *, lock: bool = False) -> EditJobRow:
        """The tenant's job (tenant in the query: another tenant's is never read or locked)."""
        query = select(EditJobRow).where(EditJobRow.id == job_id, EditJobRow.tenant == tenant)
        row = session.execute(query.with_for_update() if lock else query).scalar_one_or_none()
        if row is None:
            raise NotFound(f"no job {job_id} in tenant {tenant}")
        return row

    # the API ---------------------------------------------------------------------------------

    def create(
        self,
        session: Session,
        job: NewJob,
        *,
        job_id: str,
        decision_id: str,
        leaf: int,
        limit: int,
    ) -> Job:
        """Write a queued job in the caller's transaction (the admitting decision's), unless
        its tenant has ``limit`` jobs queued or running already (:class:`RateLimited`, and the
        caller's transaction rolls back). Tenants take turns here on PostgreSQL, so concurrent
        submissions cannot both take the last place."""
        if session.get_bind().dialect.name == "postgresql":
            session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"edit-jobs:{job.tenant}"},
            )
        active = session.scalar(
            select(func.count())
            .select_from(EditJobRow)
            .where(EditJobRow.tenant == job.tenant, EditJobRow.state.in_(ACTIVE))
        )
        if int(active or 0) >= limit:
            raise over_limit(job.tenant, int(active or 0), limit)
        now = _now()
        row = EditJobRow(
            id=job_id,
            tenant=job.tenant,
            requester=job.requester,
            key_id=job.key_id,
            state=JobState.QUEUED.value,
            phase=None,
            progress_done=0,
            progress_total=0,
            attempt=0,
            max_attempts=self.max_attempts,
            cancel_requested=False,
            operation=job.operation,
            request_json=json.dumps(job.request, sort_keys=True),
            input_blob=job.sealed_image,
            input_sha256=job.input_sha256,
            admission_decision_id=decision_id,
            admission_leaf=leaf,
            webhook_url=job.webhook_url,
            idempotency_key=job.idempotency_key,
            request_sha256=job.request_sha256,
            webhook_state="pending" if job.webhook_url else None,
            webhook_attempts=0,
            created_at=now,
            updated_at=now,
        )
        session.add(row)
        session.flush()
        return Job.of(row)

    def submitted_as(self, tenant: str, idempotency_key: str) -> tuple[Job, str] | None:
        """The tenant's job submitted with ``idempotency_key``, and what it asked for."""
        with self.db.transaction() as session:
            row = session.execute(
                select(EditJobRow).where(
                    EditJobRow.tenant == tenant, EditJobRow.idempotency_key == idempotency_key
                )
            ).scalar_one_or_none()
            return None if row is None else (Job.of(row), row.request_sha256)

    def active(self, tenant: str) -> int:
        """How many of ``tenant``'s jobs are queued or running."""
        with self.db.transaction() as session:
            count = session.scalar(
                select(func.count())
                .select_from(EditJobRow)
                .where(EditJobRow.tenant == tenant, EditJobRow.state.in_(ACTIVE))
            )
        return int(count or 0)

    def list_jobs(
        self,
        tenant: str,
        *,
        state: JobState | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Job]:
        """The tenant's jobs, newest first; ``before``: a job id of the tenant's, to go on
        after it (a keyset: stable however many jobs are added meanwhile)."""
        query = select(EditJobRow).where(EditJobRow.tenant == tenant)
        if state is not None:
            query = query.where(EditJobRow.state == state.value)
        with self.db.transaction() as session:
            if before is not None:
                last = self._own(session, before, tenant)
                query = query.where(
                    (EditJobRow.created_at < last.created_at)
                    | ((EditJobRow.created_at == last.created_at) & (EditJobRow.id < last.id))
                )
            rows = session.scalars(
                query.order_by(EditJobRow.created_at.desc(), EditJobRow.id.desc()).limit(limit)
            )
            return [Job.of(row) for row in rows]

    def get(self, job_id: str, tenant: str) -> Job:
        """The tenant's job; :class:`NotFound` for another tenant's, exactly as for none."""
        with self.db.transaction() as session:
            return Job.of(self._own(session, job_id, tenant))

    def result(self, job_id: str, tenant: str) -> tuple[Job, bytes]:
        """The stamped image of the tenant's succeeded job (:class:`ResultGone` once expired,
        whether or not the keeper has deleted it yet)."""
        with self.db.transaction() as session:
            row = self._own(session, job_id, tenant)
            job = Job.of(row)
            if job.state is not JobState.SUCCEEDED:
                raise Conflict(f"job {job_id} has no result: it is {job.state.value}")
            blob = row.result_blob if job.result_kept else None
        if blob is None:
            raise ResultGone(
                f"the result of job {job_id} was deleted when its retention period ended"
            )
        return job, self._cipher().decrypt(blob)

    def request_cancel(self, job_id: str, tenant: str) -> Job:
        """Cancel a queued job at once; ask a running one to stop (its worker checks between
        steps and when it renews its lease). A finished job is left as it is (:class:`Conflict`)."""
        with self.db.transaction() as session:
            row = self._own(session, job_id, tenant, lock=True)
            state = JobState(row.state)
            if state.finished:
                raise Conflict(f"job {job_id} has already finished: it is {state.value}")
            now = _now()
            row.cancel_requested, row.updated_at = True, now
            if state is JobState.QUEUED:
                self._end(session, row, JobState.CANCELLED, now, error="cancelled before it ran")
            session.flush()
            return Job.of(row)

    # the worker ------------------------------------------------------------------------------

    def claim(self, job_id: str) -> Claim | Job | None:
        """Start a run: a ``queued`` job, or a ``running`` one whose lease expired (its run
        died), becomes ``running`` with the next attempt and a fresh lease. Returns the job
        itself, unchanged, when there is nothing to run (finished or cancelled; a job past its
        attempts is failed here), and ``None`` when a live run owns it (a duplicate delivery
        of the queue entry, or a worker only slow to send its heartbeat)."""
        with self.db.transaction() as session:
            row = session.get(EditJobRow, job_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no job {job_id}")
            if JobState(row.state).finished:
                return Job.of(row)
            now = _now()
            if row.state == JobState.RUNNING.value and row.lease_until and row.lease_until > now:
                return None
            if row.cancel_requested:
                self._end(session, row, JobState.CANCELLED, now, error="cancelled")
                return Job.of(row)
            if row.attempt >= row.max_attempts:
                error = (
                    f"its worker stopped during each of its {row.attempt} runs; nothing was "
                    "released"
                )
                self._end(session, row, JobState.FAILED, now, error=error)
                return Job.of(row)
            sealed = row.input_blob
            assert sealed is not None  # kept until the job finishes
            row.state, row.attempt, row.updated_at = JobState.RUNNING.value, row.attempt + 1, now
            row.phase, row.progress_done, row.progress_total = None, 0, 0
            row.lease_until = now + self.lease
            session.flush()
            return Claim(
                job_id=row.id,
                attempt=row.attempt,
                key_id=row.key_id,
                requester=row.requester,
                operation=row.operation,
                request=json.loads(row.request_json),
                image=self._cipher().decrypt(sealed),
            )

    def report(
        self, claim: Claim, *, phase: str | None = None, done: int = 0, total: int = 0
    ) -> bool:
        """Record a run's phase or progress (``phase`` and ``done`` both unset: only renew the
        lease); returns whether the run should stop (cancel asked, or another run owns it)."""
        now = _now()
        values: dict[str, Any] = {"updated_at": now, "lease_until": now + self.lease}
        if phase is not None:
            values.update(phase=phase, progress_done=0, progress_total=0)
        elif total:
            values.update(progress_done=done, progress_total=total)
        with self.db.transaction() as session:
            owned = _rowcount(
                session,
                update(EditJobRow)
                .where(*_owned_by(claim), EditJobRow.cancel_requested.is_(False))
                .values(**values),
            )
        return owned == 0

    def give_back(self, claim: Claim) -> None:
        """A run that could not go on for want of the database or a key: the job is queued
        again as it was (the run does not count as an attempt)."""
        with self.db.transaction() as session:
            _rowcount(
                session,
                update(EditJobRow)
                .where(*_owned_by(claim))
                .values(
                    state=JobState.QUEUED.value,
                    attempt=claim.attempt - 1,
                    lease_until=None,
                    updated_at=_now(),
                ),
            )

    def finish(
        self,
        session: Session,
        claim: Claim,
        state: JobState,
        *,
        outcome: dict[str, Any] | None,
        error: str | None = None,
        result: tuple[bytes, str, str] | None = None,
    ) -> EditJobRow:
        """End a run in the caller's transaction (for a success: the release's). Raises
        :class:`JobSuperseded` when the run no longer owns the job: the caller's transaction
        must then roll back, so a cancelled or superseded run releases nothing."""
        row = session.execute(
            select(EditJobRow).where(*_owned_by(claim)).with_for_update()
        ).scalar_one_or_none()
        if row is None:
            raise JobSuperseded(f"run {claim.attempt} of job {claim.job_id} no longer owns it")
        if row.cancel_requested and state is JobState.SUCCEEDED:
            raise JobSuperseded(f"job {claim.job_id} was cancelled before its result was made")
        now = _now()
        if result is not None:
            data, media_type, sha256 = result
            row.result_blob = self._cipher().encrypt(data)
            row.result_media_type, row.result_sha256 = media_type, sha256
        row.outcome_json = json.dumps(outcome, sort_keys=True) if outcome is not None else None
        self._end(session, row, state, now, error=error)
        return row

    def cancel_run(self, claim: Claim) -> None:
        """A run that stopped because it was asked to: the job is cancelled (if still its)."""
        with self.db.transaction() as session:
            row = session.execute(
                select(EditJobRow)
                .where(EditJobRow.id == claim.job_id, EditJobRow.attempt == claim.attempt)
                .with_for_update()
            ).scalar_one_or_none()
            if row is not None and row.state == JobState.RUNNING.value:
                self._end(session, row, JobState.CANCELLED, _now(), error="cancelled while it ran")

    def _end(
        self,
        session: Session,
        row: EditJobRow,
        state: JobState,
        now: datetime,
        *,
        error: str | None,
    ) -> None:
        row.state, row.error, row.updated_at, row.finished_at = state.value, error, now, now
        row.lease_until = None
        # The input (and the prompt) are kept only for as long as the job may run; what it
        # ended with, for the retention period.
        row.input_blob, row.request_json = None, "{}"
        row.expires_at = now + self.result_retention
        session.flush()
        if self._on_finished is not None:
            self._on_finished(session, row)

    # the keeper ------------------------------------------------------------------------------

    def lost(self, *, idle: timedelta, now: datetime | None = None) -> list[str]:
        """Jobs not finished whose run died (lease expired) or that have waited ``idle`` with
        no run at all: the keeper makes sure each has a queue entry."""
        now = now or _now()
        with self.db.transaction() as session:
            return list(
                session.scalars(
                    select(EditJobRow.id).where(
                        EditJobRow.state.in_(ACTIVE),
                        EditJobRow.updated_at < now - idle,
                        (EditJobRow.lease_until.is_(None)) | (EditJobRow.lease_until < now),
                    )
                )
            )

    def purge_expired(self, now: datetime | None = None) -> int:
        """Past its retention a job keeps its state, ids and times; its result and outcome are
        deleted. Returns how many jobs were purged."""
        with self.db.transaction() as session:
            return _rowcount(
                session,
                update(EditJobRow)
                .where(
                    EditJobRow.expires_at <= (now or _now()),
                    EditJobRow.outcome_json.is_not(None) | EditJobRow.result_blob.is_not(None),
                )
                .values(result_blob=None, outcome_json=None),
            )


def over_limit(tenant: str, active: int, limit: int) -> RateLimited:
    return RateLimited(
        f"tenant {tenant} has {active} jobs queued or running, its limit "
        f"(GUARD_JOB_MAX_QUEUED_PER_TENANT={limit}); submit more as these finish",
        retry_after=5.0,
    )
