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

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from starlette.responses import Response

from guard.api.auth import service_of
from guard.db import Database
from guard.identity import ConsentGrant
from guard.identity.models import ConsentGrantRow, ConsentRequestRow, ErasureRow, SubjectRow
from guard.identity.records import GrantStatus, grant_of, utc_now
from guard.web.console.access import ConsoleRoute, render_console, viewer
from guard.web.console.sessions import Viewer

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

SOON = timedelta(days=14)
"""A grant in force that ends within this is flagged as ending soon."""


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
    id: int
    subject_ref: str
    erased_at: datetime


def tenant_grants(
    db: Database, tenant: str, *, subject_id: str | None = None, now: datetime | None = None
) -> list[GrantView]:
    """The tenant's grants (one subject's, with ``subject_id``), oldest first."""
    now = now or utc_now()
    query = (
        select(ConsentGrantRow, SubjectRow.display_name)
        .join(SubjectRow, SubjectRow.id == ConsentGrantRow.subject_id)
        .where(SubjectRow.tenant == tenant)
        .order_by(ConsentGrantRow.created_at, ConsentGrantRow.id)
    )
    if subject_id is not None:
        query = query.where(ConsentGrantRow.subject_id == subject_id)
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
    db: Database, tenant: str, *, subject_id: str | None = None, status: str | None = None
) -> list[RequestView]:
    """The tenant's consent requests (narrowed to one subject, one stored status), newest
    first. Requests of erased subjects went with them."""
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


def tenant_erasures(db: Database, tenant: str) -> list[ErasureView]:
    """The tenant's erasures, newest first: all that is left of them is a keyed reference."""
    with db.transaction() as session:
        rows = session.scalars(
            select(ErasureRow)
            .where(ErasureRow.tenant == tenant)
            .order_by(ErasureRow.erased_at.desc(), ErasureRow.id.desc())
        ).all()
        return [ErasureView(int(r.id), r.subject_ref, r.erased_at) for r in rows]


@router.get("/consent")
def consent_page(request: Request, seen_by: Annotated[Viewer, Depends(viewer)]) -> Response:
    tenant = seen_by.require_tenant()
    guard = service_of(request).guard
    grants = tenant_grants(guard.db, tenant)
    return render_console(
        request,
        "console/consent.html",
        seen_by,
        {
            "subjects": guard.registry.list_subjects(tenant),
            "grants": grants,
            "ending_soon": sum(1 for g in grants if g.ending_soon),
            "declined": tenant_requests(guard.db, tenant, status="declined"),
            "erasures": tenant_erasures(guard.db, tenant),
            "soon_days": SOON.days,
        },
    )
