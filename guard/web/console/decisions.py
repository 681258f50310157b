"""``/console/decisions``: a tenant's decisions, filtered and paged; ``.csv``: all of them.

The filters are GET parameters, so a filtered page is a link an auditor can keep or send:
``since`` and ``until`` (a date, ``YYYY-MM-DD``, or a date and time, ``YYYY-MM-DDTHH:MM``, in
UTC; ``until`` includes its whole day, or its whole minute), ``verdict``, ``reason`` (a reason
code), ``operation``, ``requester`` (part of a requester's name: the names are recomputed with
the tenant's key, :mod:`.names`; a name that matches nobody selects nothing, never everything),
``requester_ref`` (a requester's keyed reference, exactly: the operator's way to name one),
``policy`` (a policy version), ``policy_id``, ``tenant`` (the operator's only: a tenant's
auditor asking for another tenant is refused, 403, not quietly shown its own) and ``after``
(the page cursor). Every parameter is checked; an unknown, repeated or malformed one is a 400
page naming it, never a 500 and never a filter silently dropped.

Pages run newest first with a keyset cursor (:class:`~guard.audit.search.Cursor`), so "Next
page" costs the same on page 1 and page 10,000. The count stops at 10,000 ("more than").

The CSV streams every selected decision (the same filters, no cursor) a page at a time; a cell
that a spreadsheet would run as a formula (``= + - @``, tab, CR first) is prefixed with ``'``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from guard.api.auth import service_of
from guard.api.service import Service
from guard.audit.search import AuditSearch, Cursor, DecisionFilter, DecisionRow
from guard.errors import Forbidden, InvalidInput
from guard.policy.decision import ReasonCode, Verdict
from guard.requests import OPERATION_NAME
from guard.web.console.access import ConsoleRoute, render_console, viewer
from guard.web.console.names import RequesterNames, requester_label, requester_names
from guard.web.console.sessions import Viewer
from guard.web.console.streams import streamed_download

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
SeenBy = Annotated[Viewer, Depends(viewer)]

PAGE_SIZE = 50
COUNT_CAP = 10_000
_OPERATIONS_SHOWN = 100
PARAMS = (
    "since",
    "until",
    "verdict",
    "reason",
    "operation",
    "requester",
    "requester_ref",
    "policy",
    "policy_id",
    "tenant",
    "after",
)
CSV_COLUMNS = (
    "time",
    "decision_id",
    "verdict",
    "reason_codes",
    "operation",
    "stage",
    "requester",
    "policy_id",
    "policy_version",
    "audit_index",
)
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2})?")
_REF = re.compile(r"[0-9a-f]{64}")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Filters:
    """What the query asked for, checked: the search filter, the cursor, the parameters as
    given (for the links that keep them) and the form's values."""

    where: DecisionFilter
    after: Cursor | None
    given: dict[str, str]
    form: dict[str, str]
    names: RequesterNames | None


def _moment(name: str, text: str, *, end: bool) -> tuple[datetime, str]:
    """The instant a ``since``/``until`` value names (``until``: the end of its day or minute,
    exclusive) and the value a ``datetime-local`` field shows for it: the minute as given, or
    the second when one was given (so resubmitting the form keeps the same filter)."""
    problem = (
        f"'{name}' is a date (YYYY-MM-DD) or a date and time (YYYY-MM-DDTHH:MM), in UTC; "
        f"{text[:40]!r} is neither"
    )
    try:
        if _DATE.fullmatch(text):
            start = datetime.fromisoformat(text).replace(tzinfo=UTC)
            shown = f"{text}T23:59" if end else f"{text}T00:00"
            return (start + timedelta(days=1) if end else start), shown
        if _DATETIME.fullmatch(text):
            start = datetime.fromisoformat(text).replace(tzinfo=UTC)
            step = timedelta(seconds=1) if text.count(":") == 2 else timedelta(minutes=1)
            return (start + step if end else start), text
    except (ValueError, OverflowError):
        raise InvalidInput(problem) from None
    raise InvalidInput(problem)


def _text(name: str, text: str, limit: int) -> str:
    if len(text) > limit or not text.isprintable():
        raise InvalidInput(f"'{name}' is at most {limit} printable characters")
    return text


def _given(request: Request) -> dict[str, str]:
    """The query's parameters, each known and given once (an empty one: not given)."""
    params = request.query_params
    unknown = sorted(set(params) - set(PARAMS))
    if unknown:
        raise InvalidInput(
            f"unknown filter {', '.join(repr(u[:40]) for u in unknown)}: the filters are "
            + ", ".join(PARAMS)
        )
    given: dict[str, str] = {}
    for key in PARAMS:
        values = params.getlist(key)
        if len(values) > 1:
            raise InvalidInput(f"give '{key}' once")
        if values and values[0].strip():
            given[key] = values[0].strip()
    return given


def _choices(given: dict[str, str]) -> tuple[str | None, str | None, str | None]:
    """The verdict, reason code and operation asked for, each checked."""
    verdict = given.get("verdict")
    if verdict is not None and verdict not in {v.value for v in Verdict}:
        raise InvalidInput(
            f"'verdict' is one of {', '.join(v.value for v in Verdict)}, not {verdict[:40]!r}"
        )
    reason = given.get("reason")
    if reason is not None and reason not in {c.value for c in ReasonCode}:
        raise InvalidInput(f"'reason' is a reason code; {reason[:40]!r} is not one")
    operation = given.get("operation")
    if operation is not None and not OPERATION_NAME.fullmatch(operation):
        raise InvalidInput(
            "'operation' is an operation name: 1 to 64 characters of a-z, 0-9, '_', '.', '-'"
        )
    return verdict, reason, operation


def _requesters(given: dict[str, str], names: RequesterNames | None) -> tuple[str, ...] | None:
    """The keyed references the requester filters select (``None``: no such filter)."""
    requesters: tuple[str, ...] | None = None
    if "requester" in given:
        wanted = _text("requester", given["requester"], 200)
        if names is None:
            raise InvalidInput(
                "the operator cannot filter by requester name: names are made with each "
                "tenant's key; sign in with the tenant's auditor key"
            )
        requesters = names.refs_named(wanted)
    if "requester_ref" in given:
        ref = given["requester_ref"]
        if not _REF.fullmatch(ref):
            raise InvalidInput("'requester_ref' is a keyed reference: 64 hexadecimal digits")
        requesters = (ref,) if requesters is None or ref in requesters else ()
    return requesters


def read_filters(
    request: Request, seen_by: Viewer, service: Service, *, paged: bool = True
) -> Filters:
    """The checked filters of this request (see the module docstring for each rule)."""
    given = _given(request)
    form = dict(given)
    tenant = seen_by.tenant
    if "tenant" in given:
        asked = _text("tenant", given["tenant"], 128)
        if seen_by.tenant is None:
            tenant = asked
        elif asked != seen_by.tenant:
            raise Forbidden(
                f"this key sees tenant {seen_by.tenant}'s decisions only, not {asked}'s"
            )
    since = until = None
    if "since" in given:
        since, form["since"] = _moment("since", given["since"], end=False)
    if "until" in given:
        until, form["until"] = _moment("until", given["until"], end=True)
    if since is not None and until is not None and since >= until:
        raise InvalidInput("'since' must come before 'until'")
    verdict, reason, operation = _choices(given)
    names = None
    if tenant is not None and seen_by.tenant is not None:
        names = requester_names(service.guard, service.keys, tenant)
    after = None
    if "after" in given:
        if not paged:
            raise InvalidInput("the CSV holds every selected decision: it takes no page cursor")
        after = Cursor.parse(_text("after", given["after"], 60))
    where = DecisionFilter(
        tenant=tenant,
        since=since,
        until=until,
        verdict=verdict,
        reason=reason,
        operation=operation,
        requesters=_requesters(given, names),
        policy_id=_text("policy_id", given["policy_id"], 128) if "policy_id" in given else None,
        policy_version=_text("policy", given["policy"], 64) if "policy" in given else None,
    )
    return Filters(where, after, given, form, names)


def _caption(filters: Filters) -> str:
    f, given = filters.where, filters.given
    parts = [f"Decisions of tenant {f.tenant}" if f.tenant else "Decisions of every tenant"]
    labels = (
        ("verdict", "verdict"),
        ("reason", "reason code"),
        ("operation", "operation"),
        ("requester", "requester name containing"),
        ("requester_ref", "requester reference"),
        ("policy_id", "policy"),
        ("policy", "policy version"),
        ("since", "from"),
        ("until", "until"),
    )
    parts += [f"{label} {given[key]}" for key, label in labels if key in given]
    ending = "newest first" + (", a later page" if filters.after else "")
    return ", ".join(parts) + "; " + ending


def _operations_seen(service: Service, tenant: str | None, current: str | None) -> list[str]:
    """The operations the viewer's decisions name (for the dropdown), and the current one."""
    seen = set(AuditSearch(service.guard.db).operations(tenant, limit=_OPERATIONS_SHOWN))
    if current:
        seen.add(current)
    return sorted(seen)


def _row(row: DecisionRow, names: RequesterNames | None) -> dict[str, Any]:
    return {
        "time": f"{row.at.astimezone(UTC):%Y-%m-%d %H:%M:%S}",
        "iso": row.at.astimezone(UTC).isoformat(),
        "tenant": row.tenant,
        "verdict": row.verdict,
        "reasons": row.reason_codes,
        "operation": row.operation,
        "stage": row.stage,
        "requester": requester_label(names, row.requester),
        "policy_id": row.policy_id,
        "policy_version": row.policy_version,
        "decision_id": row.decision_id,
        "href": f"/console/decisions/{quote(row.decision_id, safe='')}",
    }


@router.get("/decisions")
def decisions_page(request: Request, seen_by: SeenBy) -> Response:
    service = service_of(request)
    filters = read_filters(request, seen_by, service)
    search = AuditSearch(service.guard.db)
    page = search.decisions(filters.where, after=filters.after, limit=PAGE_SIZE)
    count = search.count(filters.where, cap=COUNT_CAP)
    kept = {k: v for k, v in filters.given.items() if k != "after"}
    context = {
        "rows": [_row(r, filters.names) for r in page.rows],
        "count": count,
        "count_text": (
            f"more than {COUNT_CAP:,} decisions"
            if count > COUNT_CAP
            else f"{count:,} decision{'s' if count != 1 else ''}"
        ),
        "caption": _caption(filters),
        "form": filters.form,
        "verdicts": [v.value for v in Verdict],
        "reasons": sorted(c.value for c in ReasonCode),
        "operations": _operations_seen(service, filters.where.tenant, filters.where.operation),
        "next_href": "/console/decisions?" + urlencode({**kept, "after": page.next.token()})
        if page.next
        else None,
        "first_href": "/console/decisions?" + urlencode(kept) if filters.after else None,
        "csv_href": "/console/decisions.csv" + ("?" + urlencode(kept) if kept else ""),
        "later_page": filters.after is not None,
    }
    return render_console(request, "console/decisions.html", seen_by, context)


def csv_cell(value: object) -> str:
    """``value`` as a CSV cell a spreadsheet shows as text: a leading ``= + - @``, tab or CR
    (which would make it a formula) gets a ``'`` before it."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_lines(
    search: AuditSearch, where: DecisionFilter, names: RequesterNames | None
) -> Iterator[str]:
    """The header, one line per decision (a page of the index at a time) and a closing line
    with the count: a file without it is incomplete (:mod:`guard.web.console.streams`)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    operator = names is None
    # The header waits in the buffer for the first rows: the first chunk reads the database,
    # so a database that is down from the start is a 503 page, not an empty 200.
    writer.writerow(CSV_COLUMNS + (("tenant",) if operator else ()))
    number = 0
    for number, row in enumerate(search.every_decision(where), start=1):
        cells = [
            row.at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            row.decision_id,
            row.verdict,
            ";".join(row.reason_codes),
            row.operation,
            row.stage,
            row.requester if operator else requester_label(names, row.requester),
            row.policy_id,
            row.policy_version,
            str(row.idx),
        ]
        if operator:
            cells.append(row.tenant)
        writer.writerow([csv_cell(c) for c in cells])
        if number % 200 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue() + csv_note(f"end of export: {number} decisions (complete)")


def csv_note(text: str) -> str:
    """A closing line of the CSV (one cell starting with ``#``)."""
    return f"# {text}\r\n"


def download_name(stem: str, tenant: str | None, extension: str) -> str:
    """``<stem>-<tenant>-<date>.<extension>``, with only filename-safe characters."""
    who = re.sub(r"[^A-Za-z0-9._-]", "_", tenant) if tenant else "all-tenants"
    return f"{stem}-{who}-{datetime.now(UTC):%Y-%m-%d}.{extension}"


@router.get("/decisions.csv")
def decisions_csv(request: Request, seen_by: SeenBy) -> Response:
    service = service_of(request)
    filters = read_filters(request, seen_by, service, paged=False)
    return streamed_download(
        csv_lines(AuditSearch(service.guard.db), filters.where, filters.names),
        media_type="text/csv; charset=utf-8",
        filename=download_name("decisions", filters.where.tenant, "csv"),
        failed=lambda message: csv_note(f"INCOMPLETE: {message}"),
    )
