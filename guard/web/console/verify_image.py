"""``/console/verify``: is this image one of the guard's, untouched, and under which decision?

GET shows a form with a file input inside a drop zone (``static/console/drop.js`` puts a dropped
file into that input and submits the form; without JavaScript, or from the keyboard, the input
itself works). POST (multipart: ``image`` and the CSRF field ``csrf``) answers the provenance
report as a page: the outcome in the report's own names (``valid``, ``recovered``,
``tampered``, ``not_from_this_guard``, ``error``), the manifest's actions, the decision (linked
only when it is the viewer's tenant's) and the watermark record.

The report is :meth:`Provenance.verify <guard.provenance.Provenance.verify>` scoped as the
``/v1/verify`` route scopes it (the viewer's tenant; the operator: every tenant's), under the
same admission control and body-size limit as the API's uploads. Nothing is stored: no row, no
file (the upload is parsed in memory), no audit entry.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException
from starlette.responses import Response

from guard.api.auth import service_of
from guard.api.uploads import image_bytes
from guard.errors import InvalidInput, NotFound
from guard.media import sniff_mime_type
from guard.pipeline import Guard
from guard.provenance.manifest import read_manifest
from guard.provenance.verify import VerificationOutcome, VerificationReport, active_assertions
from guard.web.consent import InMemoryFormParser
from guard.web.console.access import ConsoleRoute, render_console, viewer
from guard.web.console.decision import reason_words, visible_decision
from guard.web.console.sessions import Viewer
from guard.web.security import CSRF_FIELD, Csrf
from guard.web.wording import verdict_words

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

OUTCOME_WORDS = {
    VerificationOutcome.VALID: "Valid: signed by this guard, and the file is unaltered.",
    VerificationOutcome.RECOVERED: (
        "Recovered: the embedded manifest is gone (the file was re-saved or edited), but the "
        "watermark or fingerprint led to the manifest the guard stored when it released it."
    ),
    VerificationOutcome.TAMPERED: "Tampered: a manifest is there, but the file no longer "
    "matches it.",
    VerificationOutcome.NOT_FROM_THIS_GUARD: "Not ours: no manifest, watermark or fingerprint "
    "of this guard was found.",
    VerificationOutcome.ERROR: "The file could not be read as an image.",
}


@router.get("/verify")
def verify_page(request: Request, seen_by: Annotated[Viewer, Depends(viewer)]) -> Response:
    return render_console(request, "console/verify.html", seen_by)


async def _upload(request: Request) -> tuple[str, UploadFile | None]:
    """The form's CSRF token and file, parsed in memory (the image never touches the disk)."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type != "multipart/form-data":
        raise InvalidInput("Send the image with the form on this page.", code="form_unreadable")
    try:
        form = await InMemoryFormParser(
            request.headers, request.stream(), max_files=1, max_fields=4
        ).parse()
    except MultiPartException as exc:
        raise InvalidInput("The form could not be read.", code="form_unreadable") from exc
    csrf, image = form.get(CSRF_FIELD), form.get("image")
    return (
        csrf if isinstance(csrf, str) else "",
        image if isinstance(image, UploadFile) else None,
    )


def _actions(store_json: str | None) -> list[dict[str, str]]:
    """The active manifest's C2PA actions (what was done, by which software)."""
    if not store_json:
        return []
    try:
        found = []
        for assertion in active_assertions(store_json):
            if str(assertion.get("label", "")).startswith("c2pa.actions"):
                for action in assertion.get("data", {}).get("actions", []):
                    agent = action.get("softwareAgent") or {}
                    software = agent.get("name", "") if isinstance(agent, dict) else str(agent)
                    found.append(
                        {
                            "action": str(action.get("action", "")),
                            "description": str(action.get("description", "")),
                            "software": str(software),
                        }
                    )
        return found
    except (ValueError, AttributeError, TypeError):
        return []


def _manifest_json(guard: Guard, data: bytes, report: VerificationReport) -> str | None:
    """The manifest store the report rests on: the embedded one, or the stored copy found by
    the watermark or fingerprint."""
    if report.outcome is VerificationOutcome.VALID:
        mime_type = sniff_mime_type(data)
        return read_manifest(data, mime_type).store_json if mime_type else None
    if report.recovered is not None:
        stored = guard.provenance.store.by_record_id(int(report.recovered.record_id, 16))
        return stored.store_json if stored is not None else None
    return None


def _report_context(guard: Guard, data: bytes, seen_by: Viewer) -> dict[str, Any]:
    tenant = seen_by.tenant
    report = guard.provenance.verify(data, guard.decode, tenant=tenant)
    decision = report.decision or {}
    decision_id = str(decision.get("decision_id") or "") or None
    linked = False
    if decision_id is not None:
        try:
            visible_decision(guard.audit, decision_id, seen_by)
            linked = True
        except NotFound:
            linked = False  # another tenant's (or unknown here): shown, not linked
    return {
        "report": report,
        "outcome": report.outcome.value,
        "outcome_words": OUTCOME_WORDS[report.outcome],
        "actions": _actions(_manifest_json(guard, data, report)),
        "decision": decision,
        "decision_id": decision_id,
        "decision_linked": linked,
        "decision_verdict": verdict_words(str(decision.get("verdict", ""))),
        "reasons": [(c, reason_words(str(c))) for c in decision.get("reason_codes", [])],
    }


@router.post("/verify")
async def verify_upload(request: Request, seen_by: Annotated[Viewer, Depends(viewer)]) -> Response:
    service = service_of(request)
    guard = service.guard
    csrf_check = Csrf(request, guard.keys.hasher())
    csrf_check.require_cookie()  # before the body: a forged form costs no parsing
    csrf, upload = await _upload(request)
    csrf_check.verify(csrf)
    try:
        if upload is None or not upload.filename:
            raise InvalidInput("Choose an image to verify.", code="image_missing")
        data = await image_bytes(upload, "image")
    except InvalidInput as exc:
        return render_console(
            request,
            "console/verify.html",
            seen_by,
            {"error": exc.message},
            status=exc.http_status,
        )
    context = await run_in_threadpool(
        service.admission.run, (data,), partial(_report_context, guard), data, seen_by
    )
    del data  # not kept: nothing about the upload outlives this request
    return render_console(request, "console/verify.html", seen_by, context)
