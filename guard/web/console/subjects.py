"""A subject's report and an erasure's certificate: what a tenant answers a person (or their
regulator) who asks "what do you hold about me?" and "prove you erased me".

- ``/console/subjects/{id}``: who the subject is to this tenant (id, display name), their
  grants and consent requests, and every audit entry that carries their keyed reference
  (:meth:`~guard.audit.search.AuditSearch.referring`) with links to the decisions: the first
  :data:`LISTED`, with a warning when there are more (the certificate then covers only those).
- ``/console/erasures/{id}``: the erasure certificate. What was erased and when (the erasures
  row and the ``subject_erased`` / ``subject_erased_by_person`` entry: the templates count), by
  whom, what remains (the keyed reference and the entries that carry it, with their grant
  references), and for each such entry its inclusion proof against one checkpoint, printed with
  the checkpoint note and the verifier key, so the certificate is checked offline with the
  ``guard audit`` tools without trusting this page.

Both are for the subject's tenant only: another tenant's subject or erasure, a malformed id and
one that does not exist get the same 404 page.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from sqlalchemy import select
from starlette.responses import JSONResponse, Response

from guard.api.auth import service_of
from guard.api.views import own_subject
from guard.audit import audit_verifier_key
from guard.audit.index import entry_time
from guard.audit.search import AuditSearch
from guard.audit.tables import AuditEntryRow
from guard.db import Database
from guard.errors import NotFound
from guard.identity import Subject
from guard.identity.models import ErasureRow
from guard.pipeline import Guard
from guard.web.console.access import ConsoleRoute, render_console, viewer
from guard.web.console.consent import tenant_grants, tenant_requests
from guard.web.console.decision import checkpoint_size
from guard.web.console.names import RequesterNames, requester_label, requester_names
from guard.web.console.sessions import Viewer
from guard.web.security import PAGE_HEADERS
from guard.web.wording import verdict_words

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

_SUBJECT_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")
_ERASURE_ID = re.compile(r"[0-9a-f]{32}")
"""An erasure certificate's id: random (migration 0014), not the deployment-wide row number."""
ERASURE_KINDS = ("subject_erased", "subject_erased_by_person")
LISTED = 1_000
"""The most audit entries a subject report or an erasure certificate lists (and proves); past
it the page says the list is cut, and its receipts.json holds the same listed entries. It bounds
what one request builds in memory (receipts.json: each entry's text and an inclusion proof, a
few MB at this cap; the certificate prints every proof inline), as no admission control covers
these pages: at 10,000 a single answer was tens of MB."""
SUBJECT_NOT_COVERED = (
    "The subject's details, grants and consent requests above come from the consent registry, "
    "not the audit log, and requester names come from this tenant's keys: the check covers the "
    "keyed requester reference behind each name, not the name."
)
ERASURE_NOT_COVERED = (
    'The erasure time and "What is not kept" come from the erasure record and the guard itself, '
    "not the audit log."
)


@dataclass(frozen=True)
class LoggedEntry:
    """An audit entry as the reports list it."""

    index: int
    leaf_hash: str
    entry: dict[str, Any]
    at: datetime | None
    requester: str | None
    text: str
    """The entry as stored: the bytes its leaf hash was made from."""

    @property
    def kind(self) -> str:
        return str(self.entry.get("kind", ""))

    @property
    def verdict(self) -> str | None:
        verdict = self.entry.get("verdict")
        return str(verdict) if verdict is not None else None

    @property
    def verdict_words(self) -> str:
        return verdict_words(self.verdict or "")

    @property
    def requester_ref(self) -> object:
        """The keyed requester reference as recorded (``None`` when the entry has none): the row
        prints it beside the name, and verify_all.js requires it printed exactly then."""
        return self.entry.get("requester")

    @property
    def decision_id(self) -> str | None:
        if self.kind != "decision":
            return None
        found = self.entry.get("decision_id")
        return str(found) if found else None

    @property
    def grant_refs(self) -> list[str]:
        """The grant references the entry carries (a list member only, as verify_all.js reads
        it: a string is not a list of references)."""
        refs = self.entry.get("grant_refs")
        return [str(r) for r in refs] if isinstance(refs, list) else []

    def shown(self, members: tuple[str, ...]) -> dict[str, Any]:
        """The entry's ``members`` a report row displays, raw (``None`` where absent): the row
        carries them (``data-shown``) and "Verify every entry" compares each with the proven
        entry's, so a row cannot show another entry's facts beside this one's index."""
        return {member: self.entry.get(member) for member in members}


def entries_at(
    db: Database, indices: list[int], tenant: str, names: RequesterNames | None = None
) -> list[LoggedEntry]:
    """The entries at ``indices`` (in one query) that are ``tenant``'s, oldest first."""
    if not indices:
        return []
    with db.transaction() as session:
        rows = session.execute(
            select(AuditEntryRow.idx, AuditEntryRow.leaf_hash, AuditEntryRow.entry)
            .where(AuditEntryRow.idx.in_(indices))
            .order_by(AuditEntryRow.idx)
        ).all()
    found = []
    for idx, leaf, text in rows:
        entry = json.loads(text)
        if entry.get("tenant") != tenant:
            continue  # the search index is per tenant already; the entry itself is the rule
        ref = entry.get("requester")
        name = None if ref is None or names is None else requester_label(names, ref)
        found.append(LoggedEntry(int(idx), str(leaf), entry, entry_time(entry), name, text))
    return found


def referring(
    guard: Guard,
    tenant: str,
    reference: str,
    size: int | None,
    names: RequesterNames | None = None,
) -> tuple[list[LoggedEntry], bool]:
    """The tenant's first :data:`LISTED` entries that carry ``reference`` (a subject's keyed
    reference) in the tree of ``size`` (index below it; all when ``None``), oldest first, and
    whether more of them carry it (the list is cut)."""
    indices = AuditSearch(guard.db).referring(tenant, reference, limit=LISTED + 1)
    # Oldest first, so the entries past the tree are the list's tail: what is left is still
    # the first ones in the tree, and more than LISTED of those means the list is cut.
    in_tree = [i for i in indices if size is None or i < size]
    return entries_at(guard.db, in_tree[:LISTED], tenant, names), len(in_tree) > LISTED


@router.get("/subjects/{subject_id}")
def subject_report(
    request: Request, subject_id: str, seen_by: Annotated[Viewer, Depends(viewer)]
) -> Response:
    tenant = seen_by.require_tenant()
    service = service_of(request)
    guard = service.guard
    subject = _subject(guard, subject_id, tenant)
    ref = guard.registry.subject_ref(subject_id, tenant)
    names = requester_names(guard, service.keys, tenant)
    # The tree "Verify every entry" proves against, read before the list: an entry for the
    # subject appended after it is neither listed nor proven (receipts.json?size= keeps only
    # the entries below it), where one appended between the two reads would be proven but
    # not listed, a false failure.
    size = guard.audit.size()
    entries, cut = referring(guard, tenant, ref, size, names)
    return render_console(
        request,
        "console/subject.html",
        seen_by,
        {
            "subject": subject,
            "subject_ref": ref,
            "grants": tenant_grants(guard.db, tenant, subject_id=subject_id),
            "one_subject": True,
            "requests": tenant_requests(guard.db, tenant, subject_id=subject_id),
            "entries": entries,
            "cut": cut,
            "listed": LISTED,
            "row_members": SUBJECT_ROW,
            **_verify_all(
                guard,
                f"/console/subjects/{subject_id}/receipts.json?size={size}",
                ref,
                entries,
                tenant=tenant,
                not_covered=SUBJECT_NOT_COVERED,
            ),
        },
    )


@router.get("/subjects/{subject_id}/receipts.json")
def subject_receipts(
    request: Request,
    subject_id: str,
    seen_by: Annotated[Viewer, Depends(viewer)],
    size: int | None = None,
) -> Response:
    """Every listed entry's stored text and receipt, for "Verify every entry": against the
    checkpoint at ``size`` (the one the report was made at) when given, and then only the
    entries in that tree, as the report lists them."""
    tenant = seen_by.require_tenant()
    guard = service_of(request).guard
    _subject(guard, subject_id, tenant)
    ref = guard.registry.subject_ref(subject_id, tenant)
    return _receipts(guard, referring(guard, tenant, ref, size)[0], size)


def _subject(guard: Guard, subject_id: str, tenant: str) -> Subject:
    """The tenant's subject; one 404 for a malformed id, none such and another tenant's."""
    missing = NotFound(f"There is no subject {subject_id[:40]} in tenant {tenant}.")
    if not _SUBJECT_ID.fullmatch(subject_id):
        raise missing
    try:
        return own_subject(guard.registry, subject_id, tenant)
    except NotFound:
        raise missing from None


SUBJECT_ROW = ("kind", "time", "verdict", "requester", "decision_id")
"""The entry members a subject report's row displays (verify_all.js's SUBJECT_ROW)."""
ACT_SHOWN = ("kind", "count")
"""The erasure act's members the certificate displays (by whom, the templates count;
verify_all.js's ACT_SHOWN)."""
ERASURE_ROW = ("kind", "time")
"""The members a certificate's row displays besides its leaf hash (verify_all.js's)."""


def _verify_all(
    guard: Guard,
    receipts_url: str,
    reference: str,
    entries: list[LoggedEntry],
    *,
    tenant: str,
    not_covered: str,
) -> dict[str, Any]:
    """What the "Verify every entry" section (``console/verify_all.html``) needs."""
    return {
        "receipts_url": receipts_url,
        "reference": reference,
        "indices": [e.index for e in entries],
        "verify_tenant": tenant,
        "not_covered": not_covered,
        "verifier_key": audit_verifier_key(guard.settings),
    }


def _receipts(guard: Guard, entries: list[LoggedEntry], size: int | None = None) -> Response:
    """The entries' stored texts and receipts against one checkpoint (``size``, default the
    latest; one tree for all, proved in one transaction), with the key the server says signs
    the log. A ``size`` with no checkpoint is the log's :class:`NotFound` naming the nearest."""
    receipts = guard.audit.receipts([e.index for e in entries], size)
    body = {
        "verifier_key": audit_verifier_key(guard.settings),
        "entries": [
            {"index": e.index, "entry_text": e.text, "receipt": r.to_dict()}
            for e, r in zip(entries, receipts, strict=True)
        ],
    }
    return JSONResponse(body, headers=PAGE_HEADERS)


def _erasure(db: Database, erasure_id: str, tenant: str) -> ErasureRow:
    missing = NotFound(f"There is no erasure {erasure_id[:32]} in tenant {tenant}.")
    if not _ERASURE_ID.fullmatch(erasure_id):
        raise missing
    with db.transaction() as session:
        row = session.scalars(
            select(ErasureRow).where(
                ErasureRow.certificate_id == erasure_id, ErasureRow.tenant == tenant
            )
        ).one_or_none()
        if row is None:
            raise missing
        session.expunge(row)
        return row


@router.get("/erasures/{erasure_id}")
def erasure_certificate(
    request: Request, erasure_id: str, seen_by: Annotated[Viewer, Depends(viewer)]
) -> Response:
    tenant = seen_by.require_tenant()
    guard = service_of(request).guard
    log = guard.audit
    erasure = _erasure(guard.db, erasure_id, tenant)
    # One tree for every proof: the latest size, read once (a batch end, so it is signed), and
    # before the list, which keeps only entries in it: one appended between the two reads
    # would otherwise be listed without a proof in this tree, or proven but not listed.
    size = log.size()
    entries, cut = referring(guard, tenant, erasure.subject_ref, size)
    erased = [e for e in entries if e.kind in ERASURE_KINDS]
    act = erased[-1] if erased else None
    proofs = list(zip(entries, log.receipts([e.index for e in entries], size), strict=True))
    grant_refs = sorted({r for e in entries for r in e.grant_refs})
    note = log.checkpoint(size)
    return render_console(
        request,
        "console/erasure.html",
        seen_by,
        {
            "erasure": erasure,
            "erasure_id": erasure_id,
            "act": act,
            "by_person": act is not None and act.kind == "subject_erased_by_person",
            "templates": act.entry.get("count") if act is not None else None,
            # What the page says of the act, for verify_all.js to compare with the proven one.
            "act_shown": None if act is None else {"index": act.index, **act.shown(ACT_SHOWN)},
            "entries": entries,
            "cut": cut,
            "listed": LISTED,
            "proofs": proofs,
            "grant_refs": grant_refs,
            "checkpoint": note,
            "checkpoint_size": checkpoint_size(note),
            "row_members": ERASURE_ROW,
            # The check proves against the printed checkpoint, so the printed proofs and note
            # are the ones it compares (the latest could have grown since the page was made).
            **_verify_all(
                guard,
                f"/console/erasures/{erasure_id}/receipts.json?size={size}",
                erasure.subject_ref,
                entries,
                tenant=tenant,
                not_covered=ERASURE_NOT_COVERED,
            ),
        },
    )


@router.get("/erasures/{erasure_id}/receipts.json")
def erasure_receipts(
    request: Request,
    erasure_id: str,
    seen_by: Annotated[Viewer, Depends(viewer)],
    size: int | None = None,
) -> Response:
    """The certificate's entries' stored texts and receipts, for "Verify every entry": against
    the checkpoint at ``size`` (the one the certificate printed) when given."""
    tenant = seen_by.require_tenant()
    guard = service_of(request).guard
    erasure = _erasure(guard.db, erasure_id, tenant)
    # Entries appended since the certificate was printed are not in its tree (nor listed).
    return _receipts(guard, referring(guard, tenant, erasure.subject_ref, size)[0], size)
