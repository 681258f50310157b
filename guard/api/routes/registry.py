"""``/v1/subjects`` and ``/v1/consents``: a tenant's people and their consent grants.

Every subject belongs to the tenant of the key that created it; a key never sees or changes
another tenant's subjects or grants (they answer 404, as if they did not exist). Grants can only
name grantees inside the caller's tenant.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from starlette.concurrency import run_in_threadpool

from guard.api.auth import ALL_ROLES, OPERATOR, READERS, WRITERS, require, service_of
from guard.api.keys import ApiKey
from guard.api.routes.common import COMMON_ERRORS, CONFLICT, NOT_FOUND, UPLOAD_ERRORS, Responses
from guard.api.schemas import (
    ConfirmationIn,
    ConfirmationOut,
    EnrollmentOut,
    EntryOut,
    ErasureOut,
    GrantIn,
    GrantOut,
    PublicFigureLinkIn,
    SubjectIn,
    SubjectOut,
)
from guard.api.uploads import image_bytes
from guard.api.views import grant_body, own_subject, subject_body
from guard.errors import Forbidden, InvalidInput, NotFound
from guard.identity import ConsentRegistry
from guard.pipeline import Guard

router = APIRouter(prefix="/v1", tags=["registry"])
_READ: Responses = {**COMMON_ERRORS, **NOT_FOUND}
_WRITE: Responses = {**COMMON_ERRORS, **NOT_FOUND, **CONFLICT}


@router.post("/subjects", status_code=201, response_model=SubjectOut, responses=_WRITE)
def create_subject(
    request: Request, body: SubjectIn, key: Annotated[ApiKey, Depends(require(*WRITERS))]
) -> Any:
    """Register a person in the caller's tenant (pseudonymous id; the name is optional)."""
    if body.public_figure_id is not None:
        raise Forbidden(
            "only the operator links a subject to a public figure, with evidence "
            "(PUT /v1/subjects/{id}/public-figure); a tenant key cannot"
        )
    subject = service_of(request).guard.registry.create_subject(
        key.tenant, display_name=body.display_name
    )
    return subject_body(subject)


@router.put("/subjects/{subject_id}/public-figure", response_model=SubjectOut, responses=_WRITE)
def link_public_figure(
    request: Request,
    subject_id: str,
    body: PublicFigureLinkIn,
    key: Annotated[ApiKey, Depends(require(*OPERATOR))],
) -> Any:
    """Link a subject (of any tenant) to the blocklisted figure they are verified to be
    (operator only; audited with the operator key and the evidence hash)."""
    guard = service_of(request).guard
    figure = guard.blocklists.current().figure(body.figure_id)
    subject = guard.registry.public_figures.link(
        subject_id, figure, linked_by=f"key:{key.id}", evidence_sha256=body.evidence_sha256
    )
    return subject_body(subject)


@router.delete("/subjects/{subject_id}/public-figure", response_model=SubjectOut, responses=_WRITE)
def unlink_public_figure(
    request: Request, subject_id: str, key: Annotated[ApiKey, Depends(require(*OPERATOR))]
) -> Any:
    """Remove a subject's public-figure link (operator only; audited)."""
    registry = service_of(request).guard.registry
    return subject_body(registry.public_figures.unlink(subject_id, unlinked_by=f"key:{key.id}"))


@router.get("/subjects", response_model=list[SubjectOut], responses=COMMON_ERRORS)
def list_subjects(request: Request, key: Annotated[ApiKey, Depends(require(*ALL_ROLES))]) -> Any:
    return [subject_body(s) for s in service_of(request).guard.registry.list_subjects(key.tenant)]


@router.get("/subjects/{subject_id}", response_model=SubjectOut, responses=_READ)
def get_subject(
    request: Request, subject_id: str, key: Annotated[ApiKey, Depends(require(*ALL_ROLES))]
) -> Any:
    return subject_body(own_subject(service_of(request).guard.registry, subject_id, key.tenant))


def _enroll(guard: Guard, subject_id: str, data: bytes) -> list[int]:
    faces = guard.faces_in(data)
    if len(faces) != 1:
        raise InvalidInput(
            f"the photo shows {len(faces)} faces; an enrollment photo must show exactly one"
        )
    return guard.registry.enroll(subject_id, faces)


@router.post(
    "/subjects/{subject_id}/faces",
    status_code=201,
    response_model=EnrollmentOut,
    responses={**_WRITE, **UPLOAD_ERRORS},
)
async def enroll_face(
    request: Request,
    subject_id: str,
    key: Annotated[ApiKey, Depends(require(*WRITERS))],
    image: Annotated[UploadFile, File(description="A photo showing only this person.")],
) -> Any:
    """Enroll one face template (encrypted at rest) from a photo with exactly one face."""
    service = service_of(request)
    guard = service.guard
    await run_in_threadpool(own_subject, guard.registry, subject_id, key.tenant)
    data = await image_bytes(image, "image")
    template_ids = await run_in_threadpool(
        service.admission.run, (data,), _enroll, guard, subject_id, data
    )
    refs = guard.registry.template_refs(template_ids, key.tenant)
    return {"subject_id": subject_id, "template_ids": refs}


@router.delete("/subjects/{subject_id}", response_model=ErasureOut, responses=_READ)
def erase_subject(
    request: Request, subject_id: str, key: Annotated[ApiKey, Depends(require(*WRITERS))]
) -> Any:
    """Erase a person: templates (database and index) and grants; the audit keeps only keyed
    hashes."""
    registry = service_of(request).guard.registry
    own_subject(registry, subject_id, key.tenant)
    erasure = registry.erase(subject_id)
    return {
        "subject_ref": erasure.subject_ref,
        "templates_removed": erasure.templates_removed,
        "grants_removed": erasure.grants_removed,
    }


@router.get("/subjects/{subject_id}/report", response_model=list[EntryOut], responses=_READ)
def subject_report(
    request: Request, subject_id: str, key: Annotated[ApiKey, Depends(require(*READERS))]
) -> Any:
    """Every audit entry of this tenant that touched this subject (a data-subject access
    request); another tenant's entries never appear."""
    guard = service_of(request).guard
    subject = own_subject(guard.registry, subject_id, key.tenant)
    reference = guard.registry.subject_ref(subject.id, subject.tenant)
    return [
        {"index": i, "entry": e}
        for i, e in guard.audit.entries_referring(reference, tenant=subject.tenant)
    ]


@router.post("/consents", status_code=201, response_model=GrantOut, responses=_WRITE)
def grant_consent(
    request: Request, body: GrantIn, key: Annotated[ApiKey, Depends(require(*WRITERS))]
) -> Any:
    """Record that a subject of this tenant allows ``grantee`` (default: this key's requester)
    the operations in ``scopes``; ``evidence_sha256`` is the hash of the signed document."""
    registry = service_of(request).guard.registry
    own_subject(registry, body.subject_id, key.tenant)
    grantee = body.grantee or key.requester
    if not key.owns(grantee):
        raise Forbidden(f"grantee {grantee!r} is outside tenant {key.tenant}")
    grant = registry.grant(
        body.subject_id,
        grantee=grantee,
        scopes=body.scopes,
        evidence_sha256=body.evidence_sha256,
        not_before=_aware(body.not_before),
        expires_at=_aware(body.expires_at),
    )
    return grant_body(grant, datetime.now(UTC))


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


@router.get("/consents", response_model=list[GrantOut], responses=_READ)
def list_consents(
    request: Request,
    key: Annotated[ApiKey, Depends(require(*ALL_ROLES))],
    subject_id: Annotated[str | None, Query()] = None,
) -> Any:
    registry = service_of(request).guard.registry
    if subject_id is not None:
        own_subject(registry, subject_id, key.tenant)
        grants = registry.grants_for(subject_id)
    else:
        own = {s.id for s in registry.list_subjects(key.tenant)}
        grants = [g for g in registry.list_grants() if g.subject_id in own]
    now = datetime.now(UTC)
    return [grant_body(g, now) for g in grants]


def _own_grant(registry: ConsentRegistry, grant_id: str, tenant: str) -> None:
    try:
        own_subject(registry, registry.get_grant(grant_id).subject_id, tenant)
    except NotFound:
        raise NotFound(f"no consent grant {grant_id} in tenant {tenant}") from None


@router.post("/consents/{grant_id}/revoke", response_model=GrantOut, responses=_WRITE)
def revoke_consent(
    request: Request, grant_id: str, key: Annotated[ApiKey, Depends(require(*WRITERS))]
) -> Any:
    """Revoke now: every later decision for that grantee denies with ``consent_revoked``."""
    registry = service_of(request).guard.registry
    _own_grant(registry, grant_id, key.tenant)
    return grant_body(registry.revoke(grant_id), datetime.now(UTC))


@router.post(
    "/consents/{grant_id}/confirmation",
    status_code=201,
    response_model=ConfirmationOut,
    responses=_WRITE,
)
def request_confirmation(
    request: Request,
    grant_id: str,
    key: Annotated[ApiKey, Depends(require(*WRITERS))],
    body: ConfirmationIn | None = None,
) -> Any:
    """A one-time token for the person to confirm this grant themselves (it then becomes
    ``person_confirmed``). Shown once; a new one replaces the outstanding one. Audited."""
    registry = service_of(request).guard.registry
    _own_grant(registry, grant_id, key.tenant)
    hours = (body or ConfirmationIn()).valid_for_hours
    issued = registry.confirmations.issue(grant_id, valid_for=timedelta(hours=hours))
    return {
        "grant_id": issued.grant_id,
        "token": issued.token,
        "expires_at": issued.expires_at.isoformat(),
    }
