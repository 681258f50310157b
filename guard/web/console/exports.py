"""``/console/export``: the audit log as JSON Lines, for the viewer's tenant.

``/console/export/audit.jsonl`` writes the lines of ``guard audit export``
(:func:`guard.audit.export.export_log`): one ``{"index", "entry", "leaf_hash", "checkpoint"}``
per entry, in index order, then ``{"latest_checkpoint": note}``. For the operator that is the
whole log, and the file verifies with ``guard audit verify`` as it is. For a tenant it is that
tenant's entries and the global ones (the policy and blocklist in force) — the entries the
search index selects, each checked against the entry itself
(:func:`guard.audit.export.export_chunks`: the index is a cache, never the authority) — so it
has gaps where other tenants' entries are: each line still carries its entry's leaf hash,
which a receipt proves into a signed checkpoint, but the tree cannot be recomputed from it
alone. The page says so.

The export stops at the latest checkpoint's size when it starts, so ``X-Entry-Count`` (the
number of entry lines, counted from the index before the first line is written) holds even
while decisions are being appended. The page's script (``export.js``) shows progress with it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from sqlalchemy import func, select
from starlette.responses import Response

from guard.api.auth import service_of
from guard.audit.export import closing_line, export_chunks
from guard.audit.index import GLOBAL_TENANT, AuditIndexRow
from guard.audit.log import AuditLog, audit_verifier
from guard.config import Settings
from guard.web.console.access import ConsoleRoute, render_console, viewer
from guard.web.console.decisions import download_name
from guard.web.console.sessions import Viewer
from guard.web.console.streams import streamed_download

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
SeenBy = Annotated[Viewer, Depends(viewer)]

EXPORT_PATH = "/console/export/audit.jsonl"
_BATCH = 2000


@dataclass(frozen=True)
class Snapshot:
    """What an export covers: the log up to ``size`` (its latest checkpoint, ``note``)."""

    size: int
    note: str | None


def snapshot(log: AuditLog, settings: Settings) -> Snapshot:
    """The latest checkpoint, verified, and its size (an empty log: size 0, no note)."""
    if log.size() == 0:
        return Snapshot(0, None)
    note = log.checkpoint()
    head = audit_verifier(settings).verify(note)
    return Snapshot(head.size, note)


def entry_count(log: AuditLog, tenant: str | None, size: int) -> int:
    """How many entries below ``size`` the export of ``tenant`` holds (``None``: all)."""
    if tenant is None:
        return size
    with log.db.transaction() as session:
        found = session.scalar(
            select(func.count())
            .select_from(AuditIndexRow)
            .where(
                AuditIndexRow.tenant.in_((tenant, GLOBAL_TENANT)),
                AuditIndexRow.idx < size,
            )
        )
    return int(found or 0)


def export_lines(log: AuditLog, tenant: str | None, shot: Snapshot) -> Iterator[str]:
    """The export's lines (see the module docstring), a batch of entries a chunk."""
    for lines in export_chunks(log, tenant=tenant, size=shot.size, batch=_BATCH):
        yield "".join(lines)
    yield closing_line(shot.note)


@router.get("/export")
def export_page(request: Request, seen_by: SeenBy) -> Response:
    service = service_of(request)
    log = service.guard.audit
    shot = snapshot(log, service.settings)
    context = {
        "export_href": EXPORT_PATH,
        "entries": entry_count(log, seen_by.tenant, shot.size),
        "size": shot.size,
        "filename": download_name("audit", seen_by.tenant, "jsonl"),
    }
    return render_console(request, "console/export.html", seen_by, context)


@router.get("/export/audit.jsonl")
def export_jsonl(request: Request, seen_by: SeenBy) -> Response:
    service = service_of(request)
    log = service.guard.audit
    shot = snapshot(log, service.settings)
    count = entry_count(log, seen_by.tenant, shot.size)
    return streamed_download(
        export_lines(log, seen_by.tenant, shot),
        media_type="application/jsonl; charset=utf-8",
        filename=download_name("audit", seen_by.tenant, "jsonl"),
        failed=lambda message: json.dumps({"export_failed": message}) + "\n",
        headers={"X-Entry-Count": str(count)},
    )
