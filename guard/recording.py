"""Every decision is audited before anyone sees it, then told to the sinks; an allowed output is
stamped (watermark, signed C2PA manifest carrying its audit leaf hash) and its release audited.

``Guard`` (pipeline.py) composes this with the gate; nothing here decides a verdict except the
one rule of fail-closed release: an output that cannot be stamped is withheld as ``unavailable``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy.orm import Session

from guard.audit import AuditLog, Receipt, decision_entry, release_entry
from guard.errors import Unavailable
from guard.identity import tenant_of
from guard.media import OutputFormat, RGBImage
from guard.policy import Decision, Policy, deny_unavailable
from guard.provenance import Provenance, StampContext, StampedImage, consent_grant_refs
from guard.requests import DecisionEvent, DecisionSink, Result, StageObserver
from guard.secrets import KeyedHasher


@dataclass(frozen=True)
class StageTimer:
    """Reports how long each stage took to the observer (the service's metrics), if any."""

    observer: StageObserver | None = None

    @contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.observer is not None:
                self.observer.observe_stage(stage, time.perf_counter() - start)


@dataclass(frozen=True)
class Release:
    """What :meth:`DecisionRecorder.release` ends with: the final decision, the stamped output
    (``None`` when withheld or denied) and the receipts of every entry it appended."""

    decision: Decision
    stamped: StampedImage | None
    receipts: tuple[Receipt, ...]


AlongWithEntry = Callable[[Session, Receipt], None]
"""``within(session, receipt)``: a write that must commit with an audit entry or not at all
(an edit job enqueued with the decision that admitted it). Raising rolls both back."""

AlongWithRelease = Callable[[Session, Release], None]
"""``finish(session, release)``: a write that must commit with a release entry or not at all
(an edit job's result: a job whose write is refused has released nothing). Raising rolls back."""


def _releasing(
    finish: AlongWithRelease, decision: Decision, stamped: StampedImage, decided: Receipt
) -> AlongWithEntry:
    """``finish`` as the release entry's companion write, told the release it completes."""

    def along(session: Session, released: Receipt) -> None:
        finish(session, Release(decision, stamped, (decided, released)))

    return along


class DecisionRecorder:
    """Appends decisions and releases to the audit log and tells the sinks, in that order.

    ``hasher`` and ``policy`` are read when needed (each may raise :class:`Unavailable` until
    its key or file exists), so a guard that starts without them fails closed per request.
    """

    def __init__(
        self,
        audit: AuditLog,
        provenance: Provenance,
        *,
        hasher: Callable[[], KeyedHasher],
        policy: Callable[[], Policy],
        sinks: Sequence[DecisionSink] = (),
        timed: StageTimer,
    ) -> None:
        self._audit = audit
        self._provenance = provenance
        self._hasher = hasher
        self._policy = policy
        self._sinks = list(sinks)
        self._timed = timed

    def record(
        self,
        decision: Decision,
        requester: str,
        operation: str,
        input_sha256: str | None,
        *,
        within: AlongWithEntry | None = None,
    ) -> Receipt:
        """Append the decision to the audit log (before anyone sees it) and tell the sinks;
        ``within`` writes in the entry's own transaction (see :data:`AlongWithEntry`).

        Raises :class:`Unavailable` when the log cannot be written: no answer leaves unaudited.
        """
        entry = decision_entry(
            decision,
            requester=requester,
            operation=operation,
            input_sha256=input_sha256,
            hasher=self._hasher(),
        )
        with self._timed("audit"):
            receipt = self._append(entry, within)
        if decision.stage == "input" or not decision.allowed:
            self._notify(
                DecisionEvent(
                    decision=decision,
                    requester=requester,
                    operation=operation,
                    input_sha256=input_sha256,
                    receipt=receipt,
                )
            )
        return receipt

    def release(
        self,
        rgb: RGBImage,
        output_format: OutputFormat,
        context: StampContext,
        *,
        requester: str,
        input_sha256: str,
        grants_from: Decision,
        finish: AlongWithRelease | None = None,
    ) -> Release:
        """Audit the output decision, then (if allowed) stamp with its leaf hash in the manifest
        and audit the release; a stamping failure is audited as the deny it becomes. ``finish``
        writes in the release entry's transaction (see :data:`AlongWithRelease`)."""
        operation = context.operation
        decided = self.record(context.decision, requester, operation, input_sha256)
        if not context.decision.allowed:
            return Release(context.decision, None, (decided,))
        context = replace(context, audit_leaf_hash=decided.leaf_hash)
        decision, stamped = self._stamp(
            rgb, output_format, context, grants_from=grants_from, requester=requester
        )
        if stamped is None:
            withheld = self.record(decision, requester, operation, input_sha256)
            return Release(decision, None, (decided, withheld))
        entry = release_entry(
            decision,
            requester=requester,
            output_sha256=stamped.sha256,
            watermark_record_id=stamped.record_id,
            manifest_label=stamped.manifest_label,
            hasher=self._hasher(),
        )
        along = None if finish is None else _releasing(finish, decision, stamped, decided)
        with self._timed("audit"):
            released = self._append(entry, along)
        self._notify(
            DecisionEvent(
                decision=decision,
                requester=requester,
                operation=operation,
                input_sha256=input_sha256,
                output_sha256=stamped.sha256,
                watermark_record_id=stamped.record_id,
                manifest_label=stamped.manifest_label,
                receipt=released,
            )
        )
        return Release(decision, stamped, (decided, released))

    def _append(self, entry: dict[str, Any], along: AlongWithEntry | None) -> Receipt:
        if along is None:
            return self._audit.append(entry)
        # Outside the group commit: this entry shares its transaction with the caller's write.
        with self._audit.db.transaction() as session:
            receipt = self._audit.append_in(session, entry)
            along(session, receipt)
        return receipt

    def _stamp(
        self,
        rgb: RGBImage,
        output_format: OutputFormat,
        context: StampContext,
        *,
        grants_from: Decision,
        requester: str,
    ) -> tuple[Decision, StampedImage | None]:
        """Watermark, sign and store an allowed output; withhold it (deny) if that fails."""
        try:
            tenant = tenant_of(requester)
            refs = consent_grant_refs(grants_from, self._hasher(), tenant=tenant)
            with self._timed("stamp"):
                stamped = self._provenance.stamp(
                    rgb, output_format, replace(context, consent_grant_refs=refs, tenant=tenant)
                )
            return context.decision, stamped
        except Unavailable as exc:
            message = f"the output cannot be stamped, so it is withheld: {exc.message}"
            return deny_unavailable(message, stage="output", policy=self._policy_or_none()), None

    def _policy_or_none(self) -> Policy | None:
        try:
            return self._policy()
        except Unavailable:
            return None

    def _notify(self, event: DecisionEvent) -> None:
        for sink in self._sinks:
            sink.record(event)


def result_of(
    released: Release,
    *,
    input_decision: Decision,
    input_sha256: str,
    editor: str,
    earlier: tuple[Receipt, ...] = (),
    editor_record: Mapping[str, str | int | float | bool] | None = None,
) -> Result:
    """The result of a flow that reached the release (``earlier``: receipts before it)."""
    stamped = released.stamped
    return Result(
        decision=released.decision,
        input_decision=input_decision,
        output_decision=released.decision,
        image=stamped.data if stamped else None,
        input_sha256=input_sha256,
        output_sha256=stamped.sha256 if stamped else None,
        editor=editor,
        provenance=stamped,
        receipts=(*earlier, *released.receipts),
        editor_record=editor_record or {},
    )


def enqueuing(
    enqueue: Callable[[Session, Decision, Receipt], None], decision: Decision
) -> AlongWithEntry:
    """An admission's ``enqueue`` as the decision entry's companion write."""

    def along(session: Session, receipt: Receipt) -> None:
        enqueue(session, decision, receipt)

    return along


def finishing(
    finish: Callable[[Session, Result], None], result_of: Callable[[Release], Result]
) -> AlongWithRelease:
    """An edit's ``finish`` as the release's companion write, told the whole result."""

    def along(session: Session, released: Release) -> None:
        finish(session, result_of(released))

    return along
