"""The person's own pages and the compliance console, server-rendered in the service's FastAPI
app (no build step).

- ``/consent/{token}``: answer a consent request (:mod:`guard.web.consent`);
- ``/confirm/{token}``: confirm a grant the integrator made (:mod:`guard.web.confirm`);
- ``/me``: their grants, the decisions that matched them, withdraw, erase
  (:mod:`guard.web.me`);
- ``/console``: the compliance console for a tenant's auditors and admins
  (:mod:`guard.web.console`);
- ``/web-static``: stylesheets and scripts, served from this package (no CDN).

:func:`mount_web` adds them to an app (``guard.api.create_app`` does).
"""

from __future__ import annotations

from fastapi import FastAPI
from starlette.staticfiles import StaticFiles

from guard.web import confirm, consent, me
from guard.web.console import mount_console
from guard.web.pages import RedeemLimit

STATIC_PATH = "/web-static"


def mount_web(app: FastAPI, *, redeem_limit: RedeemLimit | None = None) -> None:
    app.state.web_redeem_limit = redeem_limit or RedeemLimit()
    app.include_router(consent.router)
    app.include_router(confirm.router)
    app.include_router(me.router)
    mount_console(app)
    app.mount(STATIC_PATH, StaticFiles(packages=[("guard.web", "static")]), name="web-static")


__all__ = ["STATIC_PATH", "RedeemLimit", "mount_web"]
