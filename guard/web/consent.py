"""``/consent/{token}``: the person answers a consent request.

GET shows who asks (the tenant's and the app's display names), which operations, for how
long, the message, and a form: a photo of themselves (uploaded, or taken with the camera by
``static/camera.js`` into the same upload field) with *Accept*, and *Decline*. Accept checks the
photo (:mod:`guard.web.photo_check`), makes the ``person_confirmed`` grant and issues the
person's management link (:mod:`guard.web.me`) unless they have one already. A photo that cannot
be confirmed is counted: the fifth locks the link. The accept form is read only after the rate
limit, the link and the CSRF cookie were checked, and in memory (:class:`InMemoryFormParser`).
Every lookup of a token is rate limited per client address; every form carries a CSRF token.
"""

from __future__ import annotations

import sys
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.responses import HTMLResponse

from guard.api.auth import service_of
from guard.api.uploads import image_bytes
from guard.errors import (
    Forbidden,
    GuardError,
    InvalidInput,
    PayloadTooLarge,
)
from guard.identity import ConsentRequest
from guard.identity.consent_requests import LOCKED_MESSAGE, LinkLocked
from guard.identity.records import utc_now
from guard.web.pages import PageRoute, check_redeem_rate, render
from guard.web.photo_check import check_photo
from guard.web.security import ME_COOKIE, Csrf, set_cookie
from guard.web.wording import operation_words

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _context(request: Request, token: str, found: ConsentRequest) -> dict[str, Any]:
    registry = service_of(request).guard.registry
    now = utc_now()
    return {
        "token": token,
        "request": found,
        "operations": [(scope, operation_words(scope)) for scope in found.scopes],
        "grant_until": now + timedelta(days=found.grant_days),
        "link_expires": found.expires_at,
        "on_record": registry.get_subject(found.subject_id).template_count > 0,
    }


@router.get("/consent/{token}", response_class=HTMLResponse)
def consent_page(request: Request, token: str) -> Any:
    check_redeem_rate(request)
    found = service_of(request).guard.registry.consent_requests.open(token)
    return render(request, "consent.html", _context(request, token, found))


class InMemoryFormParser(MultiPartParser):
    """Starlette's multipart parser, with the photo kept in memory: Starlette spools a file part
    over 1 MiB to a temporary file, and the photo is never to touch the disk. The body is capped
    by :class:`~guard.api.uploads.BodySizeLimit` (``GUARD_API_MAX_BODY_BYTES``)."""

    spool_max_size = sys.maxsize


async def _accept_form(request: Request) -> tuple[str, UploadFile | None]:
    """The accept form's CSRF token and photo, parsed in memory."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if media_type == "multipart/form-data":
            form = await InMemoryFormParser(
                request.headers, request.stream(), max_files=1, max_fields=4
            ).parse()
        else:
            form = await request.form(max_files=0, max_fields=4)
    except MultiPartException as exc:
        raise InvalidInput(
            "The form was incomplete. Go back and fill in every field.", code="form_unreadable"
        ) from exc
    csrf = form.get("csrf")
    photo = form.get("photo")
    return (
        csrf if isinstance(csrf, str) else "",
        photo if isinstance(photo, UploadFile) else None,
    )


@router.post("/consent/{token}/accept", response_class=HTMLResponse)
async def accept(request: Request, token: str) -> Any:
    # Everything cheap first (the rate limit, the link's HMAC and row, the CSRF cookie), and
    # only then the body: a bogus link or a forged form costs no parsing of a photo.
    check_redeem_rate(request)
    service = service_of(request)
    guard = service.guard
    registry = guard.registry
    found = await run_in_threadpool(registry.consent_requests.open, token)
    csrf_check = Csrf(request, guard.keys.hasher())
    csrf_check.require_cookie()
    csrf, photo = await _accept_form(request)
    csrf_check.verify(csrf)
    try:
        if photo is None or not photo.filename:
            raise InvalidInput(
                "Choose a photo of yourself, or take one with the camera.", code="photo_missing"
            )
        data = await image_bytes(photo, "photo")
        try:
            checked = await run_in_threadpool(
                service.admission.run,
                (data,),
                check_photo,
                guard,
                found.subject_id,
                found.tenant,
                data,
            )
        except (InvalidInput, Forbidden):
            # Counted: after MAX_FAILED_PHOTOS the link locks (LinkLocked: a page saying so).
            if await run_in_threadpool(registry.consent_requests.photo_failed, token):
                raise LinkLocked(LOCKED_MESSAGE) from None
            raise
    except (InvalidInput, Forbidden) as exc:
        # The same page again with the reason, so the person can try another photo; nothing
        # was stored and the link still works.
        context = {**_context(request, token, found), "error": _photo_message(exc)}
        return render(request, "consent.html", context, status=exc.http_status)
    del data  # the photo is not kept: only the template, when this enrolled one
    accepted = None
    try:
        accepted = await run_in_threadpool(registry.consent_requests.accept, token)
    finally:
        if accepted is None:
            # Declined, expired or failed meanwhile: the face this photo enrolled goes with it.
            await run_in_threadpool(registry.unenroll, found.subject_id, checked.template_ids)
    response = render(
        request,
        "accepted.html",
        {
            "request": accepted.request,
            "grant": accepted.grant,
            "operations": [operation_words(s) for s in accepted.grant.scopes],
            "me_url": (
                f"{request.base_url}me/link/{accepted.link.token}" if accepted.link else None
            ),
        },
    )
    if accepted.link is not None:
        set_cookie(request, response, ME_COOKIE, accepted.link.token)
    return response


# Errors whose message was written for the person (photo_check, the missing photo above);
# the others (decoding limits and the like) name settings, so the person gets plain words.
_PERSON_FACING = {
    "photo_missing",
    "unprocessable_input",
    "photo_mismatch",
    "enrollment_matches_public_figure",
    "enrollment_matches_another_subject",
    "enrollment_not_this_person",
    "enrollment_face_unreliable",
}


def _photo_message(exc: GuardError) -> str:
    if exc.code in _PERSON_FACING and not isinstance(exc, PayloadTooLarge):
        return exc.message
    if exc.code == "payload_too_large":
        return "This photo is too large. Use a smaller photo."
    return "This file is not a photo we can read. Use a JPEG, PNG or WebP photo."


@router.post("/consent/{token}/decline", response_class=HTMLResponse)
def decline(request: Request, token: str, csrf: Annotated[str, Form()] = "") -> Any:
    check_redeem_rate(request)
    guard = service_of(request).guard
    Csrf(request, guard.keys.hasher()).verify(csrf)
    declined = guard.registry.consent_requests.decline(token)
    return render(request, "declined.html", {"request": declined})
