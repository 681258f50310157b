"""What the person's page lists under "how you were used": every decision that matched them.

Read from the audit log (entries of the subject's tenant that carry the subject's keyed
reference, found through the log's search index); requesters appear there only as keyed
references, which are turned back into the display names the person was shown (their consent
requests) or the grantee ids they agreed to (their grants). Nothing else about the picture is
shown, because nothing else is stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from guard.pipeline import Guard
from guard.web.wording import verdict_words


@dataclass(frozen=True)
class UsageRow:
    index: int
    """The audit entry's index: the receipt link names it."""
    time: datetime
    requester: str
    operation: str
    verdict: str
    verdict_code: str


def usage_for(guard: Guard, subject_id: str, tenant: str) -> list[UsageRow]:
    registry = guard.registry
    hasher = guard.keys.hasher().for_tenant(tenant)
    names: dict[str, str] = {}
    for grant in registry.grants_for(subject_id):
        names[hasher.ref("requester", grant.grantee)] = grant.grantee
    for asked in registry.consent_requests.for_subject(subject_id):
        names[hasher.ref("requester", asked.requester)] = asked.requester_display_name
    reference = registry.subject_ref(subject_id, tenant)
    rows = []
    for index, entry in guard.audit.entries_referring(reference, tenant=tenant):
        if entry.get("kind") != "decision" or reference not in entry.get("subject_refs", ()):
            continue
        rows.append(
            UsageRow(
                index=index,
                time=datetime.fromisoformat(str(entry["time"])),
                requester=names.get(str(entry.get("requester")), "an app of this organisation"),
                # An edit is decided twice: the request, then the result the editor made.
                operation=str(entry.get("operation", ""))
                + (" (the result)" if entry.get("stage") == "output" else ""),
                verdict=verdict_words(str(entry.get("verdict", ""))),
                verdict_code=str(entry.get("verdict", "")),
            )
        )
    return rows[::-1]  # newest first


def mentions(guard: Guard, subject_id: str, tenant: str, index: int) -> bool:
    """Whether audit entry ``index`` is a decision of ``tenant`` that matched the subject."""
    entry = guard.audit.entry(index)
    reference = guard.registry.subject_ref(subject_id, tenant)
    return (
        entry.get("tenant") == tenant
        and entry.get("kind") == "decision"
        and reference in entry.get("subject_refs", ())
    )
