"""``/console/decisions/{id}``: one decision, why it came out so, and the proof it was logged.

The page shows what the decision's audit entry holds (verdict, reasons in plain words, operation,
stage, time, requester name, policy, input hash), the faces as labelled boxes on a grey outline
of the image's size (never a pixel of it), the policy rules that applied
(:func:`~guard.policy.explain_entry`, as ``guard policy explain`` shows them), the release
entry if the output left the guard, and a receipt per entry.

``receipt.json`` gives the browser what it needs to check the receipt itself
(``static/console/decision.js`` with ``verify.js``): the entry's stored canonical text, the
receipt and the deployment's verifier key. The check runs in the browser because the server is
the party being checked; an auditor who pastes the key they hold (pinned out of band) does not
even trust the key the server serves.

Tenant rule: another tenant's decision reads exactly as one that does not exist (decision ids
are printed in released images' manifests, so the answer must not tell them apart); the
operator sees every tenant's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from guard.api.auth import service_of
from guard.audit import AuditLog, audit_verifier_key
from guard.audit.index import entry_time
from guard.audit.search import AuditSearch
from guard.errors import InvalidInput, NotFound, Unavailable
from guard.pipeline import Guard
from guard.policy import explain_entry
from guard.web.console.access import ConsoleRoute, render_console, viewer
from guard.web.console.names import requester_label, requester_names
from guard.web.console.sessions import Viewer
from guard.web.security import PAGE_HEADERS
from guard.web.wording import verdict_words

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

_DECISION_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_INDEXED_ID = 40  # the search index's decision_id column (guard/audit/index.py)

REASON_WORDS = {
    "public_figure": "a face is a public figure on the blocklist",
    "no_consent": "no consent on record for a face",
    "consent_expired": "the consent had expired",
    "consent_not_yet_valid": "the consent was not yet in force",
    "consent_revoked": "the consent was revoked",
    "scope_not_granted": "the consent does not cover this operation",
    "consent_not_confirmed": "the person had not confirmed the consent themselves",
    "operation_not_permitted": "the policy does not permit this operation",
    "prompt_names_public_figure": "the prompt names a public figure",
    "output_public_figure": "a public figure appeared in the output",
    "identity_drift": "the edited face is no longer the consented person",
    "nsfw_real_person": "explicit output of a real person",
    "unavailable": "the guard could not decide (a store was unavailable), so it refused",
    "consent_granted": "the person consented to this use",
    "public_figure_own_consent": "a public figure consented through a verified link",
    "unknown_face_allowed": "the policy allows faces nobody enrolled",
    "no_faces": "no faces in the image",
    "identity_preserved": "the edited face is still the consented person",
    "allowed_by_policy": "the policy allows it",
    "new_face_in_output": "a new face appeared in the output (noted)",
    "unreadable_face": "a face was too small or blurred to read (noted)",
}
KIND_WORDS = {
    "consented_subject": "consented person",
    "public_figure": "public figure",
    "unknown": "unknown face",
}
STAGE_WORDS = {
    "input": "before the edit",
    "output": "scan of the output",
}
"""The words the page prints beside a stage code (decision.js's STAGE_WORDS, which checks them)."""
NOT_RECORDED = "Face positions were not recorded for this decision."
NO_FACES = "No faces were found in this image."
"""The Faces section's sentence in place of a table: the entry recorded no positions, or
recorded positions and no face (decision.js's copies check which one the page prints)."""


def _stage_words(stage: object) -> str | None:
    # A string stage only, as decision.js reads it (a list would print as its one item there).
    return STAGE_WORDS.get(stage) if isinstance(stage, str) else None


def reason_words(code: str) -> str:
    return REASON_WORDS.get(code, code.replace("_", " "))


def visible_decision(
    log: AuditLog, decision_id: str, seen_by: Viewer
) -> tuple[int, dict[str, Any]]:
    """The index and entry of ``decision_id`` if the viewer may see it; one
    :class:`NotFound` for a malformed id, no such decision and another tenant's. The search
    index finds it with the viewer's tenant in the query, so another tenant's id costs the one
    lookup an unknown id does; the index is a cache of the log, so the stored entry (read for
    the viewer's own decisions only) must agree."""
    where = f" in tenant {seen_by.tenant}" if seen_by.tenant is not None else ""
    missing = NotFound(f"There is no decision {decision_id[:64]}{where}.")
    # The index holds ids cut to its column: a longer one cannot be found exactly there.
    if not _DECISION_ID.fullmatch(decision_id) or len(decision_id) > _INDEXED_ID:
        raise missing
    found = AuditSearch(log.db).decision_at(seen_by.tenant, decision_id)
    if found is None:
        raise missing
    index = found[0]
    entry = log.entry(index)
    tenant_ok = seen_by.tenant is None or entry.get("tenant") == seen_by.tenant
    if entry.get("kind") != "decision" or entry.get("decision_id") != decision_id or not tenant_ok:
        raise missing
    return index, entry


@dataclass(frozen=True)
class FaceBox:
    """One face as the page draws it: a box on the outline, in the image's own pixels."""

    number: int
    x: int
    y: int
    width: int
    height: int
    kind: str
    verdict: str
    label_y: int
    recorded: str
    """The box as the entry records it (the drawing is clipped to the image; the table, which
    decision.js checks against the proven entry, shows what was recorded)."""

    @property
    def taken_for(self) -> str:
        return KIND_WORDS.get(self.kind, self.kind)

    @property
    def label(self) -> str:
        return f"Face {self.number}: {self.taken_for}, {verdict_words(self.verdict)}"


@dataclass(frozen=True)
class Outline:
    width: int
    height: int
    faces: tuple[FaceBox, ...]
    stroke: int
    font: int


def outline_of(entry: dict[str, Any]) -> Outline | None:
    """The faces to draw, clipped to the image; ``None`` when the entry recorded no positions
    (entries made before positions were audited)."""
    image, faces = entry.get("image"), entry.get("faces")
    if not isinstance(image, list) or len(image) != 2 or not isinstance(faces, list):
        return None
    try:
        width, height = max(1, int(image[0])), max(1, int(image[1]))
        font = max(10, min(width, height) // 30)
        boxes = []
        for number, face in enumerate(faces, start=1):
            x0, y0, x1, y1 = recorded = [int(v) for v in face["box"]]
            x0, x1 = sorted((min(max(x0, 0), width), min(max(x1, 0), width)))
            y0, y1 = sorted((min(max(y0, 0), height), min(max(y1, 0), height)))
            label_y = y0 - font // 3 if y0 > font else y1 + font
            boxes.append(
                FaceBox(
                    number,
                    x0,
                    y0,
                    x1 - x0,
                    y1 - y0,
                    str(face.get("kind", "")),
                    str(face.get("verdict", "")),
                    label_y,
                    ", ".join(str(v) for v in recorded),
                )
            )
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    return Outline(width, height, tuple(boxes), max(2, min(width, height) // 150), font)


def _policy_text(guard: Guard) -> str | None:
    try:
        return guard.settings.policy_file.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None  # the rule texts still show, without line numbers


def explain(guard: Guard, index: int, entry: dict[str, Any]) -> tuple[Any, str | None]:
    """The explanation under the policy in force (and a note when it cannot be read)."""
    try:
        policy = guard.policies.current()
    except (Unavailable, InvalidInput):
        return None, "The policy in force could not be read, so the rules cannot be shown."
    try:
        return explain_entry(index, entry, policy, _policy_text(guard)), None
    except InvalidInput:
        return None, "This entry does not record its rules in the form the guard writes."


def _texts(value: object) -> list[str]:
    """The strings of a list member of an entry (what the guard writes); anything else in a
    damaged or foreign entry shows as nothing rather than failing the page."""
    return [item for item in value if isinstance(item, str)] if isinstance(value, list) else []


def _requester(request: Request, seen_by: Viewer, tenant: str, reference: object) -> str:
    """The requester as this viewer may read it: a name for the tenant's own viewers, the
    keyed reference for the operator (no tenant's names)."""
    service = service_of(request)
    names = None if seen_by.operator else requester_names(service.guard, service.keys, tenant)
    return requester_label(names, reference)


def _verdict_words(verdict: object) -> str:
    """The verdict in words, and nothing for none (as decision.js expects it printed)."""
    return "" if verdict is None else verdict_words(str(verdict))


def checkpoint_size(note: str) -> int | None:
    """The tree size a signed note commits to (its body's second line)."""
    lines = note.split("\n")
    return int(lines[1]) if len(lines) > 1 and lines[1].isdigit() else None


def _receipt_rows(log: AuditLog, entries: list[tuple[int, dict[str, Any]]], size: int) -> list[Any]:
    receipts = log.receipts([index for index, _ in entries], size)
    return [
        {
            "kind": entry.get("kind"),
            "index": index,
            "leaf_hash": receipt.leaf_hash,
            "size": checkpoint_size(receipt.checkpoint),
            "proof_steps": len(receipt.inclusion_proof),
        }
        for (index, entry), receipt in zip(entries, receipts, strict=True)
    ]


def _releases(guard: Guard, tenant: str, decision_id: str, size: int | None) -> list[int]:
    """The decision's release entries in the tree of ``size`` (all when ``None``)."""
    found = AuditSearch(guard.db).releases_of(tenant, decision_id)
    return [i for i in found if size is None or i < size]


RELEASE_SHOWN = ("decision_id", "output_sha256", "watermark_record_id", "manifest_label")
"""The release entry members the Release section displays (decision.js's RELEASE_SHOWN)."""


@router.get("/decisions/{decision_id}")
def decision_page(
    request: Request, decision_id: str, seen_by: Annotated[Viewer, Depends(viewer)]
) -> Response:
    guard = service_of(request).guard
    log = guard.audit
    index, entry = visible_decision(log, decision_id, seen_by)
    tenant = str(entry.get("tenant"))
    # One tree for the receipts table, read once (the latest size is a batch end, so signed);
    # "Verify inclusion" proves against this same checkpoint, so the sizes shown are checked.
    # Read before the releases, and only releases in that tree listed: one appended between
    # the two reads would be proven by receipt.json (index < size) yet not shown.
    size = log.size()
    releases = [(i, log.entry(i)) for i in _releases(guard, tenant, decision_id, size)]
    explanation, explain_note = explain(guard, index, entry)
    policy = entry.get("policy")
    return render_console(
        request,
        "console/decision.html",
        seen_by,
        {
            "decision_id": decision_id,
            "index": index,
            "entry": entry,
            "tenant": tenant,
            "decided_at": entry_time(entry),
            "requester": _requester(request, seen_by, tenant, entry.get("requester")),
            "reasons": [(c, reason_words(c)) for c in _texts(entry.get("reason_codes"))],
            "conditions": _texts(entry.get("conditions")),
            "consent_levels": _texts(entry.get("consent_levels")),
            # decision.js reads the proven entry's policy the same way: a member, or nothing.
            "policy": policy if isinstance(policy, dict) else {},
            "verdict_words": _verdict_words(entry.get("verdict")),
            "outline": outline_of(entry),
            "not_recorded": NOT_RECORDED,
            "no_faces": NO_FACES,
            "stage_words": _stage_words(entry.get("stage")),
            "explanation": explanation,
            "explain_note": explain_note,
            "releases": [
                (i, release, {member: release.get(member) for member in RELEASE_SHOWN})
                for i, release in releases
            ],
            "receipts": _receipt_rows(log, [(index, entry), *releases], size),
            "checkpoint_size": size,
            "verifier_key": audit_verifier_key(guard.settings),
        },
    )


@router.get("/decisions/{decision_id}/receipt.json")
def decision_receipt(
    request: Request,
    decision_id: str,
    seen_by: Annotated[Viewer, Depends(viewer)],
    size: int | None = None,
) -> Response:
    """What the browser checks: the stored entry text (the exact bytes that were hashed), its
    receipt, the same for each release entry of the decision (the page shows them too), all
    against one checkpoint (``size``, the one the page's receipts table used, or the latest),
    and the key the server says signs the log."""
    guard = service_of(request).guard
    log = guard.audit
    # The page's rule, in the page's one place: the index (a cache) finds it with the tenant
    # in the query, and the stored entry must agree.
    index, entry = visible_decision(log, decision_id, seen_by)
    # The same releases the page lists: the decision's tenant's (the page reads its entry's).
    releases = _releases(guard, str(entry.get("tenant")), decision_id, size)
    receipts = log.receipts([index, *releases], size)
    body = {
        "entry_text": log.entry_text(index),
        "receipt": receipts[0].to_dict(),
        "releases": [
            {"index": i, "entry_text": log.entry_text(i), "receipt": r.to_dict()}
            for i, r in zip(releases, receipts[1:], strict=True)
        ],
        "verifier_key": audit_verifier_key(guard.settings),
    }
    return JSONResponse(body, headers=PAGE_HEADERS)
