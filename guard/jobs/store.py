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

from sqlalchemy import (
    CursorResult,
    Update,
    select,
    update,
)
from sqlalchemy.orm import Session

from guard.db import Database
from guard.errors import Conflict, NotFound
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


def _now() -> datetime:
    return datetime.now(UTC)


class JobStore:
    """The ``edit_jobs`` table. ``cipher()`` is the template key as it is now."""

    def __init__(
        self,
        db: Database,
        cipher: Callable[[], TemplateCipher],
        *,
        max_attempts: int,
        result_retention: timedelta,
        on_finished: Callable[[Session, EditJobRow], None] | None = None,
    ) -> None:
        """``on_finished(session, row)`` is told every job that ends, in the transaction that
        ends it (the webhook is queued there)."""
        self.db = db
        self._cipher = cipher
        self._on_finished = on_finished
        self.max_attempts = max_attempts
        self.result_retention = result_retention

    # the API ---------------------------------------------------------------------------------

    def create(
        self, session: Session, job: NewJob, *, job_id: str, decision_id: str, leaf: int
    ) -> None:
        """Write a queued job in the caller's transaction (the admitting decision's)."""
        now = _now()
        session.add(
            EditJobRow(
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
                input_blob=self._cipher().encrypt(job.image),
                input_sha256=job.input_sha256,
                admission_decision_id=decision_id,
                admission_leaf=leaf,
                webhook_url=job.webhook_url,
                webhook_state="pending" if job.webhook_url else None,
                webhook_attempts=0,
                created_at=now,
                updated_at=now,
            )
        )
        session.flush()

    def get(self, job_id: str, tenant: str) -> Job:
        """The tenant's job; :class:`NotFound` for another tenant's, exactly as for none."""
        with self.db.transaction() as session:
            row = session.get(EditJobRow, job_id)
            if row is None or row.tenant != tenant:
                raise NotFound(f"no job {job_id} in tenant {tenant}")
            return Job.of(row)

    def result(self, job_id: str, tenant: str) -> tuple[Job, bytes]:
        """The stamped image of the tenant's succeeded job (:class:`ResultGone` once expired)."""
        with self.db.transaction() as session:
            row = session.get(EditJobRow, job_id)
            if row is None or row.tenant != tenant:
                raise NotFound(f"no job {job_id} in tenant {tenant}")
            job = Job.of(row)
            blob = row.result_blob
        if job.state is not JobState.SUCCEEDED:
            raise Conflict(f"job {job_id} has no result: it is {job.state.value}")
        if blob is None:
            raise ResultGone(
                f"the result of job {job_id} was deleted when its retention period ended"
            )
        return job, self._cipher().decrypt(blob)

    def request_cancel(self, job_id: str, tenant: str) -> Job:
        """Cancel a queued job at once; ask a running one to stop (its worker checks between
        steps). A finished job is left as it is (:class:`Conflict`)."""
        with self.db.transaction() as session:
            row = session.get(EditJobRow, job_id, with_for_update=True)
            if row is None or row.tenant != tenant:
                raise NotFound(f"no job {job_id} in tenant {tenant}")
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

    def claim(self, job_id: str) -> Claim | Job:
        """Start a run: ``queued`` or ``running`` (a run whose worker died) becomes ``running``
        with the next attempt. Returns the job itself, unchanged, when there is nothing to run
        (finished or cancelled); a job past its attempts is failed here."""
        with self.db.transaction() as session:
            row = session.get(EditJobRow, job_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no job {job_id}")
            if JobState(row.state).finished:
                return Job.of(row)
            now = _now()
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
            assert row.input_blob is not None  # kept until the job finishes
            row.state, row.attempt, row.updated_at = JobState.RUNNING.value, row.attempt + 1, now
            row.phase, row.progress_done, row.progress_total = None, 0, 0
            session.flush()
            return Claim(
                job_id=row.id,
                attempt=row.attempt,
                requester=row.requester,
                operation=row.operation,
                request=json.loads(row.request_json),
                image=self._cipher().decrypt(row.input_blob),
            )

    def report(
        self, claim: Claim, *, phase: str | None = None, done: int = 0, total: int = 0
    ) -> bool:
        """Record a run's phase or progress; returns whether the job should stop (cancel
        asked, or another run owns it now)."""
        values: dict[str, Any] = {"updated_at": _now()}
        if phase is not None:
            values.update(phase=phase, progress_done=0, progress_total=0)
        else:
            values.update(progress_done=done, progress_total=total)
        with self.db.transaction() as session:
            owned = _rowcount(
                session,
                update(EditJobRow)
                .where(
                    EditJobRow.id == claim.job_id,
                    EditJobRow.attempt == claim.attempt,
                    EditJobRow.state == JobState.RUNNING.value,
                    EditJobRow.cancel_requested.is_(False),
                )
                .values(**values),
            )
        return owned == 0

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
            select(EditJobRow)
            .where(
                EditJobRow.id == claim.job_id,
                EditJobRow.attempt == claim.attempt,
                EditJobRow.state == JobState.RUNNING.value,
            )
            .with_for_update()
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
            row.expires_at = now + self.result_retention
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
        row.input_blob = None  # the input is kept only for as long as the job may run
        session.flush()
        if self._on_finished is not None:
            self._on_finished(session, row)

    # webhooks and retention ------------------------------------------------------------------

    def webhook_target(self, job_id: str) -> tuple[Job, str] | None:
        """The finished job and its webhook URL, if it has one still to deliver."""
        with self.db.transaction() as session:
            row = session.get(EditJobRow, job_id)
            if row is None or row.webhook_url is None or row.webhook_state != "pending":
                return None
            return Job.of(row), row.webhook_url

    def webhook_tried(self, job_id: str, *, delivered: bool, last: bool) -> None:
        state = "delivered" if delivered else ("failed" if last else "pending")
        with self.db.transaction() as session:
            row = session.get(EditJobRow, job_id, with_for_update=True)
            if row is not None:
                row.webhook_attempts += 1
                row.webhook_state = state

    def purge_expired(self, now: datetime | None = None) -> int:
        """Delete results past their retention; the job's record stays. Returns how many."""
        with self.db.transaction() as session:
            return _rowcount(
                session,
                update(EditJobRow)
                .where(
                    EditJobRow.expires_at <= (now or _now()), EditJobRow.result_blob.is_not(None)
                )
                .values(result_blob=None),
            )
