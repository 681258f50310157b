"""``/console/consent``: a tenant's people and what they agreed to.

Subjects (pseudonymous id, display name, templates on record, created), every grant (subject,
grantee, consent level, scopes, expiry: those ending within :data:`SOON` say so in words, not
colour alone; revoked ones say when and whether the person withdrew it themselves), declined
consent requests and erasures (when, the keyed reference that remains, the certificate).

For tenant viewers only: the operator sees decisions across tenants, never a tenant's people
(:meth:`~guard.web.console.sessions.Viewer.require_tenant`, a 403 page). The queries here are
read-only and always name the tenant; :mod:`.subjects` reuses them for one subject.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, or_, select
from starlette.responses import Response

from guard.api.auth import service_of
from guard.db import Database
from guard.identity import ConsentGrant
from guard.identity.models import ConsentGrantRow, ConsentRequestRow, ErasureRow, SubjectRow
from guard.identity.records import GrantStatus, grant_of, utc_now
from guard.web.console.access import ConsoleRoute, render_console, viewer
from guard.web.console.sessions import Viewer

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

T = TypeVar("T")

SOON = timedelta(days=14)
"""A grant in force that ends within this is flagged as ending soon."""

LISTED = 1_000
"""The most rows each list of the consent page shows (the page says when there are more; a
subject's own report lists everything of theirs)."""


@dataclass(frozen=True)
class GrantView:
    grant: ConsentGrant
    display_name: str | None
    withdrawn_by_person: bool
    status: GrantStatus
    days_left: int | None
    """Whole days until a grant in force ends, when that is within :data:`SOON`."""

    @property
    def ending_soon(self) -> bool:
        return self.days_left is not None

    @property
    def revoked_by(self) -> str:
        return "the person (withdrawn)" if self.withdrawn_by_person else "the integrator"


@dataclass(frozen=True)
class RequestView:
    id: str
    subject_id: str
    display_name: str | None
    requester: str
    requester_display_name: str
    scopes: tuple[str, ...]
    status: str
    created_at: datetime
    answered_at: datetime | None


@dataclass(frozen=True)
class ErasureView:
    certificate_id: str
    subject_ref: str
    erased_at: datetime


def tenant_grants(
    db: Database,
    tenant: str,
    *,
    subject_id: str | None = None,
    now: datetime | None = None,
    limit: int | None = None,
) -> list[GrantView]:
    """The tenant's grants (one subject's, with ``subject_id``), oldest first, at most
    ``limit``."""
    now = now or utc_now()
    query = (
        select(ConsentGrantRow, SubjectRow.display_name)
        .join(SubjectRow, SubjectRow.id == ConsentGrantRow.subject_id)
        .where(SubjectRow.tenant == tenant)
        .order_by(ConsentGrantRow.created_at, ConsentGrantRow.id)
    )
    if subject_id is not None:
        query = query.where(ConsentGrantRow.subject_id == subject_id)
    if limit is not None:
        query = query.limit(limit)
    views = []
    with db.transaction() as session:
        for row, name in session.execute(query).all():
            grant = grant_of(row)
            status = grant.status_at(now)
            left = None
            if status is GrantStatus.ACTIVE and grant.expires_at is not None:
                remaining = grant.expires_at - now
                if remaining <= SOON:
                    left = max(0, remaining.days)
            views.append(GrantView(grant, name, bool(row.withdrawn_by_person), status, left))
    return views


def tenant_requests(
    db: Database,
    tenant: str,
    *,
    subject_id: str | None = None,
    status: str | None = None,
    limit: int | None = None,
) -> list[RequestView]:
    """The tenant's consent requests (narrowed to one subject, one stored status), newest
    first, at most ``limit``. Requests of erased subjects went with them."""
    query = (
        select(ConsentRequestRow, SubjectRow.display_name)
        .join(SubjectRow, SubjectRow.id == ConsentRequestRow.subject_id)
        .where(ConsentRequestRow.tenant == tenant, SubjectRow.tenant == tenant)
        .order_by(ConsentRequestRow.created_at.desc(), ConsentRequestRow.id)
    )
    if subject_id is not None:
        query = query.where(ConsentRequestRow.subject_id == subject_id)
    if status is not None:
        query = query.where(ConsentRequestRow.status == status)
    if limit is not None:
        query = query.limit(limit)
    with db.transaction() as session:
        return [
            RequestView(
                id=row.id,
                subject_id=row.subject_id,
                display_name=name,
                requester=row.requester,
                requester_display_name=row.requester_display_name,
                scopes=tuple(row.scopes),
                status=row.status,
                created_at=row.created_at,
                answered_at=row.answered_at,
            )
            for row, name in session.execute(query).all()
        ]


def tenant_erasures(db: Database, tenant: str, *, limit: int) -> list[ErasureView]:
    """The tenant's erasures, newest first, at most ``limit``: all that is left of them is a
    keyed reference."""
    with db.transaction() as session:
        rows = session.scalars(
            select(ErasureRow)
            .where(ErasureRow.tenant == tenant)
            .order_by(ErasureRow.erased_at.desc(), ErasureRow.id.desc())
            .limit(limit)
        ).all()
        return [ErasureView(r.certificate_id, r.subject_ref, r.erased_at) for r in rows]


def grants_ending_soon(db: Database, tenant: str, now: datetime) -> int:
    """How many of the tenant's grants are in force and end within :data:`SOON` (all of
    them, not only the listed ones)."""
    with db.transaction() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(ConsentGrantRow)
                .join(SubjectRow, SubjectRow.id == ConsentGrantRow.subject_id)
                .where(
                    SubjectRow.tenant == tenant,
                    or_(ConsentGrantRow.revoked_at.is_(None), ConsentGrantRow.revoked_at > now),
                    ConsentGrantRow.not_before <= now,
                    ConsentGrantRow.expires_at > now,
                    ConsentGrantRow.expires_at <= now + SOON,
                )
            )
            or 0
        )


def _listed(rows: Sequence[T]) -> tuple[Sequence[T], bool]:
    """The first :data:`LISTED` of rows fetched with one more, and whether there were more."""
    return rows[:LISTED], len(rows) > LISTED


@router.get("/consent")
def consent_page(request: Request, seen_by: Annotated[Viewer, Depends(viewer)]) -> Response:
    tenant = seen_by.require_tenant()
    guard = service_of(request).guard
    now = utc_now()
    subjects, subjects_cut = _listed(guard.registry.list_subjects(tenant, limit=LISTED + 1))
    grants, grants_cut = _listed(tenant_grants(guard.db, tenant, now=now, limit=LISTED + 1))
    declined, declined_cut = _listed(
        tenant_requests(guard.db, tenant, status="declined", limit=LISTED + 1)
    )
    erasures, erasures_cut = _listed(tenant_erasures(guard.db, tenant, limit=LISTED + 1))
    return render_console(
        request,
        "console/consent.html",
        seen_by,
        {
            "subjects": subjects,
            "grants": grants,
            "declined": declined,
            "erasures": erasures,
            "cut": {
                "subjects": subjects_cut,
                "grants": grants_cut,
                "declined": declined_cut,
                "erasures": erasures_cut,
            },
            "listed": LISTED,
            "ending_soon": grants_ending_soon(guard.db, tenant, now),
            "soon_days": SOON.days,
        },
    )
