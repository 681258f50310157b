"""``/consent/{token}``: the person answers a consent request.

GET shows who asks (the tenant's and the app's display names), which operations, for how
long, the message, and a form: a photo of themselves (uploaded, or taken with the camera by
``static/camera.js`` into the same upload field) with *Accept*, and *Decline*. Accept checks the
photo (:mod:`guard.web.photo_check`), makes the ``person_confirmed`` grant and issues the
person's management link (:mod:`guard.web.me`). Every lookup of a token is rate limited per
client address; every form carries a CSRF token.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool
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


@router.post("/consent/{token}/accept", response_class=HTMLResponse)
async def accept(
    request: Request,
    token: str,
    csrf: Annotated[str, Form()] = "",
    photo: Annotated[UploadFile | None, File()] = None,
) -> Any:
    check_redeem_rate(request)
    service = service_of(request)
    guard = service.guard
    Csrf(request, guard.keys.hasher()).verify(csrf)
    registry = guard.registry
    found = await run_in_threadpool(registry.consent_requests.open, token)
    try:
        if photo is None or not photo.filename:
            raise InvalidInput(
                "Choose a photo of yourself, or take one with the camera.", code="photo_missing"
            )
        data = await image_bytes(photo, "photo")
        await run_in_threadpool(
            service.admission.run, (data,), check_photo, guard, found.subject_id, found.tenant, data
        )
    except (InvalidInput, Forbidden) as exc:
        # The same page again with the reason, so the person can try another photo; nothing
        # was stored and the link still works.
        context = {**_context(request, token, found), "error": _photo_message(exc)}
        return render(request, "consent.html", context, status=exc.http_status)
    del data  # the photo is not kept: only the template, when this enrolled one
    accepted = await run_in_threadpool(registry.consent_requests.accept, token)
    response = render(
        request,
        "accepted.html",
        {
            "request": accepted.request,
            "grant": accepted.grant,
            "operations": [operation_words(s) for s in accepted.grant.scopes],
            "me_url": f"{request.base_url}me/link/{accepted.link.token}",
        },
    )
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
