"""The compliance console, ``/console``: decisions, consent, proofs and reports for a tenant's
auditors and admins (and the operator, across tenants), server-rendered in the service's app.

- ``sign-in`` / ``sign-out`` (:mod:`.signin`, sessions in :mod:`.sessions`, access rules in
  :mod:`.access`);
- the overview (:mod:`.overview`), the decisions table and CSV (:mod:`.decisions`), one
  decision with its receipt (:mod:`.decision`), consent (:mod:`.consent`), a subject's report
  and erasure certificate (:mod:`.subjects`), verifying an image (:mod:`.verify_image`) and the
  audit export (:mod:`.exports`).

Static assets (stylesheet, the receipt verifier and the page scripts) are in
``guard/web/static/console``; nothing comes from another host.
"""

from __future__ import annotations

from fastapi import FastAPI

from guard.web.console import (
    consent,
    decision,
    decisions,
    exports,
    overview,
    signin,
    subjects,
    verify_image,
)
from guard.web.console.sessions import ConsoleSessions

ROUTERS = tuple(
    module.router
    for module in (signin, overview, decisions, decision, consent, subjects, verify_image, exports)
)
"""Every console router (the role matrix test lists each of their routes)."""


def mount_console(app: FastAPI) -> None:
    service = app.state.service
    app.state.console_sessions = ConsoleSessions(
        service.guard.db, service.keys, minutes=service.settings.console_session_minutes
    )
    for router in ROUTERS:
        app.include_router(router)


__all__ = ["ROUTERS", "mount_console"]
