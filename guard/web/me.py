"""``/me``: the person's own page, reached through their management link (no password).

``/me/link/{token}`` checks the link, puts it in an HttpOnly ``SameSite=Strict`` cookie and
shows the page (directly, not by redirect: a Strict cookie set by a link followed from an
e-mail would not be sent on the redirect). ``/me`` reads the cookie. The page lists every grant
(scopes, expiry) with *Withdraw*, every decision that matched the person (with its audit
receipt), and *Erase me*. Every form carries a CSRF token; every act is audited as the
person's (``consent_withdrawn``, ``subject_erased_by_person``, ``management_link_*``). Every
route is rate limited per client address, with the limiter of the consent links (a link is a
bearer token: guessing one must be slow).
"""

from __future__ import annotations

import contextlib
import json
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, RedirectResponse, Response

from guard.api.auth import service_of
from guard.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from guard.identity import LinkHolder
from guard.identity.management_links import ManagementLinks
from guard.identity.records import utc_now
from guard.pipeline import Guard
from guard.web.pages import PageRoute, check_redeem_rate, render
from guard.web.security import ME_COOKIE, PAGE_HEADERS, Csrf, clear_cookie, set_cookie
from guard.web.usage import mentions, usage_for
from guard.web.wording import operation_words

router = APIRouter(route_class=PageRoute, include_in_schema=False)

_NOTICES = {
    "withdrawn": "Your consent was withdrawn. From the next request on, it no longer applies.",
}


_MAX_INDEX = 2**63 - 1
"""The largest audit index (a PostgreSQL ``bigint``): any other number names no decision."""


class NoLink(Unauthenticated):
    code = "no_management_link"


def _holder(request: Request) -> tuple[LinkHolder, str]:
    token = request.cookies.get(ME_COOKIE)
    if not token:
        raise NoLink(
            "To see your page, open the link to it that you were given when you confirmed "
            "a consent request."
        )
    holder = service_of(request).guard.registry.management_links.holder(token)
    return holder, token


def _page(
    request: Request, holder: LinkHolder, *, notice: str | None = None, new_link: str | None = None
) -> HTMLResponse:
    guard = service_of(request).guard
    now = utc_now()
    grants = [
        {
            "grant": grant,
            "status": grant.status_at(now).value,
            "operations": [operation_words(s) for s in grant.scopes],
            "who": _who(guard, holder, grant.grantee),
        }
        for grant in guard.registry.grants_for(holder.subject_id)
    ]
    context = {
        "grants": grants[::-1],
        "usage": usage_for(guard, holder.subject_id, holder.tenant),
        "notice": notice,
        "new_link": new_link,
    }
    return render(request, "me.html", context)


def _who(guard: Guard, holder: LinkHolder, grantee: str) -> str:
    for asked in guard.registry.consent_requests.for_subject(holder.subject_id):
        if asked.requester == grantee:
            return f"{asked.requester_display_name} ({asked.tenant_display_name})"
    return grantee


@router.get("/me/link/{token}", response_class=HTMLResponse)
def enter(request: Request, token: str) -> Any:
    check_redeem_rate(request)
    links = service_of(request).guard.registry.management_links
    holder = links.holder(token)
    current = request.cookies.get(ME_COOKIE)
    other = _subject_of(links, current) if current and current != token else None
    if other not in (None, holder.subject_id):
        # Another person's page is open in this browser. A link followed from any site (a
        # top-level GET) must not silently swap it for the link's: the person chooses, by a
        # form only this site can post.
        return render(request, "switch.html", {"token": token})
    response = _page(request, holder)
    set_cookie(request, response, ME_COOKIE, token)
    return response


@router.post("/me/link/{token}", response_class=HTMLResponse)
def switch(request: Request, token: str, csrf: Annotated[str, Form()] = "") -> Any:
    """Open the link's page in place of the one this browser had (see :func:`enter`)."""
    check_redeem_rate(request)
    guard = service_of(request).guard
    Csrf(request, guard.keys.hasher()).verify(csrf)
    holder = guard.registry.management_links.holder(token)
    response = _page(request, holder)
    set_cookie(request, response, ME_COOKIE, token)
    return response


def _subject_of(links: ManagementLinks, token: str) -> str | None:
    """The subject a link opens, or None where it opens nothing any more."""
    with contextlib.suppress(NotFound):
        return str(links.holder(token).subject_id)
    return None


@router.get("/me", response_class=HTMLResponse)
def me(request: Request, notice: str | None = None) -> Any:
    check_redeem_rate(request)
    holder, _ = _holder(request)
    return _page(request, holder, notice=_NOTICES.get(notice or ""))


@router.post("/me/withdraw")
def withdraw(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    grant_id: Annotated[str, Form(max_length=40)] = "",
) -> Any:
    check_redeem_rate(request)
    guard = service_of(request).guard
    Csrf(request, guard.keys.hasher()).verify(csrf)
    holder, _ = _holder(request)
    registry = guard.registry
    # Only the holder's own grants: any other id reads as one that does not exist.
    if grant_id not in {g.id for g in registry.grants_for(holder.subject_id)}:
        raise NotFound("There is no such consent on your page.")
    # Withdrawn already (a second click, another tab) is the outcome the person wants.
    with contextlib.suppress(Conflict):
        registry.revoke(grant_id, by_person=True)
    return RedirectResponse("/me?notice=withdrawn", status_code=303, headers=PAGE_HEADERS)


@router.post("/me/erase", response_class=HTMLResponse)
async def erase(
    request: Request,
    csrf: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Any:
    check_redeem_rate(request)
    guard = service_of(request).guard
    Csrf(request, guard.keys.hasher()).verify(csrf)
    holder, _ = _holder(request)
    if confirm != "yes":
        raise InvalidInput(
            "To erase your data, tick the box that says you understand, then press Erase.",
            code="erasure_not_confirmed",
        )
    erasure = await run_in_threadpool(guard.registry.erase, holder.subject_id, by_person=True)
    response = render(request, "erased.html", {"erasure": erasure})
    clear_cookie(request, response, ME_COOKIE)
    return response


@router.post("/me/rotate", response_class=HTMLResponse)
def rotate(request: Request, csrf: Annotated[str, Form()] = "") -> Any:
    """A new link in place of this one (which stops working); other links are left alone."""
    check_redeem_rate(request)
    guard = service_of(request).guard
    Csrf(request, guard.keys.hasher()).verify(csrf)
    holder, token = _holder(request)
    link = guard.registry.management_links.rotate(token)
    response = _page(
        request,
        holder,
        notice="Your old link no longer works. Keep the new link below.",
        new_link=f"{request.base_url}me/link/{link.token}",
    )
    set_cookie(request, response, ME_COOKIE, link.token)
    return response


@router.post("/me/sign-out", response_class=HTMLResponse)
def sign_out(request: Request, csrf: Annotated[str, Form()] = "") -> Any:
    """Switch this link off (a lost or shared link): it opens nothing any more."""
    check_redeem_rate(request)
    guard = service_of(request).guard
    Csrf(request, guard.keys.hasher()).verify(csrf)
    _, token = _holder(request)
    guard.registry.management_links.revoke(token)
    response = render(request, "signed_out.html")
    clear_cookie(request, response, ME_COOKIE)
    return response


@router.get("/me/receipts/{index}.json")
def receipt(request: Request, index: int) -> Any:
    """The audit receipt of one decision that matched the person (verifiable offline)."""
    check_redeem_rate(request)
    holder, _ = _holder(request)
    guard = service_of(request).guard
    try:
        if not 0 <= index <= _MAX_INDEX or not mentions(
            guard, holder.subject_id, holder.tenant, index
        ):
            raise NotFound("There is no such decision on your page.")
    except NotFound:
        raise NotFound("There is no such decision on your page.") from None
    body = json.dumps(guard.audit.receipt(index).to_dict(), indent=2)
    return Response(
        body,
        media_type="application/json",
        headers={
            **PAGE_HEADERS,
            "Content-Disposition": f'attachment; filename="receipt-{index}.json"',
        },
    )
