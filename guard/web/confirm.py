"""``/confirm/{token}``: the person confirms a grant the integrator already made.

An integrator that made an ``attested`` grant (``POST /v1/consents``) can ask for a one-time
confirmation link (``POST /v1/consents/{id}/confirmation``, :mod:`guard.identity.confirmation`)
and send it to the person. GET shows what the grant allows and until when; POST (with the CSRF
token) makes it ``person_confirmed`` and spends the link. Unlike a consent request there is no
photo: the grant already names the subject, and the link only proves that whoever held it
agreed (docs/trust.md, "What each consent level proves"). Every lookup is rate limited per
client address, as on the other pages.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse

from guard.api.auth import service_of
from guard.identity.records import ConsentGrant
from guard.web.pages import PageRoute, check_redeem_rate, render
from guard.web.security import Csrf
from guard.web.wording import operation_words

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _context(token: str, grant: ConsentGrant) -> dict[str, Any]:
    return {
        "token": token,
        "grant": grant,
        "operations": [(scope, operation_words(scope)) for scope in grant.scopes],
    }


@router.get("/confirm/{token}", response_class=HTMLResponse)
async def confirm_page(request: Request, token: str) -> Any:
    check_redeem_rate(request)
    confirmations = service_of(request).guard.registry.confirmations
    grant = await run_in_threadpool(confirmations.open, token)
    return render(request, "confirm.html", _context(token, grant))


@router.post("/confirm/{token}", response_class=HTMLResponse)
async def confirm(request: Request, token: str, csrf: Annotated[str, Form()] = "") -> Any:
    check_redeem_rate(request)
    guard = service_of(request).guard
    Csrf(request, guard.keys.hasher()).verify(csrf)
    grant = await run_in_threadpool(guard.registry.confirmations.redeem, token)
    return render(request, "confirmed.html", _context(token, grant))
