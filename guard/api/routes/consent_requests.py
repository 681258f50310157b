"""``/v1/consent-requests``: an integrator asks a person for consent through the person's page.

The answer is a single-use link (``url``) the integrator sends to the person; the person
confirms with a photo of themselves (a ``person_confirmed`` grant) or declines, and the
integrator reads the outcome here. Tenant-scoped like the other registry routes: another
tenant's subject or request answers 404, as if it did not exist.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field, model_validator

from guard.api.auth import ALL_ROLES, WRITERS, require, service_of
from guard.api.keys import ApiKey
from guard.api.routes.common import COMMON_ERRORS, CONFLICT, NOT_FOUND, Responses
from guard.api.views import own_subject
from guard.errors import Forbidden, NotFound
from guard.identity import ConsentRequest
from guard.identity.records import utc_now

router = APIRouter(prefix="/v1", tags=["registry"])
_WRITE: Responses = {**COMMON_ERRORS, **NOT_FOUND, **CONFLICT}


class NewSubjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    display_name: str | None = Field(default=None, max_length=200)


class ConsentRequestIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "new_subject": {"display_name": "Model A"},
                    "requester_display_name": "Acme Photo",
                    "tenant_display_name": "Acme Ltd",
                    "scopes": ["relight", "background_blur"],
                    "duration_days": 90,
                    "message": "For the spring catalogue.",
                }
            ]
        },
    )
    subject_id: str | None = Field(
        default=None, max_length=40, description="An existing subject of this tenant, or…"
    )
    new_subject: NewSubjectIn | None = Field(
        default=None, description="…a new one, enrolled from the photo the person shows."
    )
    requester: str | None = Field(
        default=None, max_length=200, description="The grantee (default: this key's requester)."
    )
    requester_display_name: str = Field(min_length=1, max_length=200)
    tenant_display_name: str | None = Field(
        default=None, max_length=200, description="Shown to the person (default: the tenant)."
    )
    scopes: list[str] = Field(min_length=1, max_length=32)
    duration_days: int = Field(default=365, ge=1, le=3650)
    message: str = Field(default="", max_length=2000)
    valid_for_hours: int = Field(default=168, ge=1, le=720)

    @model_validator(mode="after")
    def _one_subject(self) -> ConsentRequestIn:
        if (self.subject_id is None) == (self.new_subject is None):
            raise ValueError("name exactly one of subject_id and new_subject")
        return self


class ConsentRequestOut(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    subject_id: str
    requester: str
    scopes: list[str]
    duration_days: int
    status: str = Field(description="pending, accepted, declined, locked or expired.")
    grant_id: str | None
    expires_at: datetime
    created_at: datetime
    answered_at: datetime | None


class IssuedConsentRequestOut(ConsentRequestOut):
    url: str = Field(description="Shown once: the single-use link to send to the person.")


def _body(request: ConsentRequest) -> dict[str, Any]:
    return {
        "id": request.id,
        "subject_id": request.subject_id,
        "requester": request.requester,
        "scopes": list(request.scopes),
        "duration_days": request.grant_days,
        "status": request.status_at(utc_now()).value,
        "grant_id": request.grant_id,
        "expires_at": request.expires_at,
        "created_at": request.created_at,
        "answered_at": request.answered_at,
    }


@router.post(
    "/consent-requests",
    status_code=201,
    response_model=IssuedConsentRequestOut,
    responses=_WRITE,
)
def create_consent_request(
    request: Request,
    body: ConsentRequestIn,
    key: Annotated[ApiKey, Depends(require(*WRITERS))],
) -> Any:
    """Ask a person (an existing subject, or a new one) to consent to ``scopes`` for
    ``duration_days``; returns the single-use link to send them (valid ``valid_for_hours``,
    default 7 days). Audited."""
    registry = service_of(request).guard.registry
    requester = body.requester or key.requester
    if not key.owns(requester):
        raise Forbidden(f"requester {requester!r} is outside tenant {key.tenant}")
    if body.subject_id is not None:
        own_subject(registry, body.subject_id, key.tenant)
    issued = registry.consent_requests.create(
        body.subject_id,
        tenant=key.tenant,
        new_subject_name=body.new_subject.display_name if body.new_subject else None,
        requester=requester,
        requester_display_name=body.requester_display_name,
        tenant_display_name=body.tenant_display_name or key.tenant,
        scopes=body.scopes,
        grant_days=body.duration_days,
        message=body.message,
        valid_for=timedelta(hours=body.valid_for_hours),
    )
    return {**_body(issued.request), "url": f"{request.base_url}consent/{issued.token}"}


@router.get(
    "/consent-requests/{request_id}",
    response_model=ConsentRequestOut,
    responses={**COMMON_ERRORS, **NOT_FOUND},
)
def get_consent_request(
    request: Request, request_id: str, key: Annotated[ApiKey, Depends(require(*ALL_ROLES))]
) -> Any:
    """How the person answered: ``pending``, ``accepted`` (with ``grant_id``), ``declined`` or
    ``expired``."""
    registry = service_of(request).guard.registry
    try:
        found = registry.consent_requests.get(request_id)
    except NotFound:
        found = None
    if found is None or found.tenant != key.tenant:
        raise NotFound(f"no consent request {request_id} in tenant {key.tenant}")
    return _body(found)
