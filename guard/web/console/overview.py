"""``/console``: the overview of a tenant's decisions over the last ``days`` days (1 to 90).

Totals by verdict and the denial rate; decisions per day (per hour for one or two days) by
verdict and by reason code, as server-drawn SVG charts with their numbers in tables
(:mod:`.charts`); the busiest requesters, by name, each linking to their decisions; the
tenant's open usage flags (the oldest 200, saying when there are more); and the audit log's
size, the age of its latest checkpoint (verified with the log's public key before its time is
believed) and what witnesses it.

The operator sees the same across every tenant, except names: a requester's name is recomputed
with its tenant's key (:mod:`.names`), which is a tenant's business, so the operator sees the
tenant and the requester's keyed reference.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from guard.api.auth import service_of
from guard.api.flags import UsageFlag
from guard.api.service import Service
from guard.audit.log import audit_verifier
from guard.audit.search import AuditSearch, HourCount
from guard.errors import InvalidInput, NotFound
from guard.policy.decision import Verdict
from guard.web.console.access import ConsoleRoute, render_console, viewer
from guard.web.console.charts import Chart, chart
from guard.web.console.names import requester_label, requester_names
from guard.web.console.sessions import Viewer

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)
SeenBy = Annotated[Viewer, Depends(viewer)]

MAX_DAYS = 90
VERDICTS = (
    (Verdict.ALLOW.value, "allow"),
    (Verdict.ALLOW_WITH_CONDITIONS.value, "allow with conditions"),
    (Verdict.DENY.value, "deny"),
)
FLAGS_LISTED = 200  # the most open usage flags the overview lists
_REASON_SERIES = 7  # the most frequent codes drawn on their own; the rest as "other codes"


def parse_days(request: Request) -> int:
    """``days`` from the query (default 7); anything but a whole number 1..90 is a 400."""
    values = request.query_params.getlist("days")
    unknown = sorted(set(request.query_params) - {"days"})
    if unknown:
        raise InvalidInput(f"the overview takes only 'days', not {', '.join(unknown)!s}")
    if len(values) > 1:
        raise InvalidInput("give 'days' once")
    if not values or values[0] == "":
        return 7
    text = values[0]
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_DAYS):
        raise InvalidInput(f"'days' is a whole number of days from 1 to {MAX_DAYS}")
    return int(text)


def time_range(days: int, now: datetime) -> tuple[datetime, datetime, timedelta]:
    """[since, until) and the bar width: whole UTC hours for up to two days, else whole UTC
    days, ending with the current one."""
    if days <= 2:
        until = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
        return until - timedelta(days=days), until, timedelta(hours=1)
    until = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    return until - timedelta(days=days), until, timedelta(days=1)


def period(since: datetime, until: datetime) -> dict[str, str]:
    """[since, until) as the decisions page's filters (whose ``until`` includes its minute)."""
    return {
        "since": f"{since:%Y-%m-%dT%H:%M}",
        "until": f"{until - timedelta(minutes=1):%Y-%m-%dT%H:%M}",
    }


def _binned(
    counts: list[HourCount], since: datetime, width: timedelta
) -> dict[tuple[int, str], int]:
    out: dict[tuple[int, str], int] = {}
    for c in counts:
        bucket = int((c.hour - since) / width)
        out[(bucket, c.key)] = out.get((bucket, c.key), 0) + c.count
    return out


def _charts(
    search: AuditSearch, tenant: str | None, since: datetime, until: datetime, width: timedelta
) -> tuple[Chart, Chart]:
    steps = int((until - since) / width)
    buckets = [since + width * n for n in range(steps)]
    hourly = width < timedelta(days=1)
    # An hour's label carries its date when the bars cross midnight (one or two days).
    dated = hourly and since.date() != (until - width).date()
    shape = "%d %b %H:00" if dated else "%H:00" if hourly else "%d %b"
    labels = [b.strftime(shape) for b in buckets]
    per = "hour" if hourly else "day"
    verdicts = _binned(search.per_hour(tenant, since, until), since, width)
    reasons = _binned(search.reasons_per_hour(tenant, since, until), since, width)
    by_code: dict[str, int] = {}
    for (_, code), n in reasons.items():
        by_code[code] = by_code.get(code, 0) + n
    ranked = sorted(by_code, key=lambda code: (-by_code[code], code))
    shown, rest = ranked[:_REASON_SERIES], set(ranked[_REASON_SERIES:])
    if len(rest) == 1:  # one more code fits where "other codes" would have gone
        shown, rest = ranked, set()
    folded: dict[tuple[int, str], int] = {}
    for (bucket, code), n in reasons.items():
        key = "other" if code in rest else code
        folded[(bucket, key)] = folded.get((bucket, key), 0) + n
    series = [(code, code.replace("_", " ")) for code in shown]
    if rest:
        series.append(("other", f"other codes ({', '.join(sorted(rest))})"))
    return (
        chart("by-verdict", f"Decisions per {per} by verdict", buckets, labels, verdicts, VERDICTS),
        chart("by-reason", f"Reason codes given per {per}", buckets, labels, folded, series),
    )


def _top_requesters(
    service: Service, seen_by: Viewer, since: datetime, until: datetime
) -> list[dict[str, Any]]:
    top = AuditSearch(service.guard.db).top_requesters(seen_by.tenant, since, until)
    window = period(since, until)
    if seen_by.tenant is None:
        return [
            {
                "tenant": tenant,
                "name": requester_label(None, ref),
                "count": n,
                # An empty requester_ref is no filter: it would open every decision.
                "href": "/console/decisions?"
                + urlencode({"tenant": tenant, "requester_ref": ref, **window})
                if ref
                else None,
            }
            for tenant, ref, n in top
        ]
    names = requester_names(service.guard, service.keys, seen_by.tenant)
    rows = []
    for _, ref, n in top:
        name = names.by_ref.get(ref)
        rows.append(
            {
                "tenant": seen_by.tenant,
                "name": requester_label(names, ref),
                "count": n,
                # The name alone is "name containing" ("acme" would take in "acme/app"'s
                # decisions too); with the reference the list is exactly this requester's.
                "href": "/console/decisions?"
                + urlencode({"requester": name, "requester_ref": ref, **window})
                if name and ref
                else None,
            }
        )
    return rows


def _open_flags(service: Service, tenant: str | None) -> tuple[list[UsageFlag], bool]:
    """The open usage flags (the tenant's, or every tenant's for the operator), oldest first:
    the first :data:`FLAGS_LISTED`, and whether there are more."""
    flags = service.flags.list_flags(tenant, limit=FLAGS_LISTED + 1)
    return flags[:FLAGS_LISTED], len(flags) > FLAGS_LISTED


def _age(seconds: float) -> str:
    for unit, length, below in (
        ("second", 1, 90),
        ("minute", 60, 90 * 60),
        ("hour", 3600, 48 * 3600),
    ):
        if seconds < below:
            return _count(max(int(seconds // length), 0), unit)
    return _count(int(seconds // 86400), "day")


def _count(number: int, unit: str) -> str:
    return f"{number} {unit}" + ("" if number == 1 else "s")


def audit_state(service: Service, now: datetime) -> dict[str, Any]:
    """The log's size and its latest checkpoint, verified with the log's public key."""
    log = service.guard.audit
    size = log.size()
    state: dict[str, Any] = {"size": size, "checkpoint": None, "problem": None}
    if size == 0:
        return state
    try:
        note = log.checkpoint()
        head = audit_verifier(service.settings).verify(note)
    except (InvalidInput, NotFound) as exc:  # no checkpoint, or one that does not verify
        state["problem"] = f"the latest checkpoint could not be verified: {exc.message}"
        return state
    signatures = [line for line in note.partition("\n\n")[2].splitlines() if line.strip()]
    state["checkpoint"] = {
        "size": head.size,
        "time": head.time,
        "age": _age((now - head.time).total_seconds()),
        "signatures": len(signatures),
    }
    return state


@router.get("")
def overview(request: Request, seen_by: SeenBy) -> Response:
    days = parse_days(request)
    service = service_of(request)
    now = datetime.now(UTC)
    since, until, width = time_range(days, now)
    by_verdict, by_reason = _charts(
        AuditSearch(service.guard.db), seen_by.tenant, since, until, width
    )
    totals = {key: by_verdict.series_total(key) for key, _ in VERDICTS}
    total = sum(totals.values())
    denied = totals[Verdict.DENY.value]
    flags, flags_cut = _open_flags(service, seen_by.tenant)
    context = {
        "days": days,
        "day_choices": (1, 2, 7, 30, 90),
        "since": since,
        "until": until,
        "hourly": width < timedelta(days=1),
        "totals": [(key, label, totals[key]) for key, label in VERDICTS],
        "total": total,
        "denial_rate": f"{100 * denied / total:.1f} %" if total else "no decisions",
        "charts": (by_verdict, by_reason),
        "requesters": _top_requesters(service, seen_by, since, until),
        "flags": flags,
        "flags_cut": flags_cut,
        "flags_listed": FLAGS_LISTED,
        "audit": audit_state(service, now),
        "decisions_href": "/console/decisions?" + urlencode(period(since, until)),
    }
    return render_console(request, "console/overview.html", seen_by, context)
