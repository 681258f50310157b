"""Turning a tenant's keyed requester references back into the names its auditors know.

The audit log names requesters only by ``HMAC(tenant key, requester id)``; the console recomputes
that reference for every requester id the tenant has used (its API keys, revoked ones too, and
its grants' grantees) and shows the id, with the key's label when it has one. A reference no
longer recomputable (a key deleted outright) shows as "unknown requester" and its reference
(:func:`requester_label`). Another tenant's requesters are never in the table: the references
are made with this tenant's key.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from guard.api.keys import ApiKeyStore
from guard.identity import in_tenant
from guard.identity.models import ConsentGrantRow, SubjectRow
from guard.pipeline import Guard


@dataclass(frozen=True)
class RequesterNames:
    tenant: str
    by_ref: dict[str, str]
    """keyed reference → the requester id (with the key's label, if any)."""

    def refs_named(self, text: str) -> tuple[str, ...]:
        """The references whose name contains ``text`` (case-insensitive): a filter by name."""
        wanted = text.strip().casefold()
        return tuple(ref for ref, name in self.by_ref.items() if wanted in name.casefold())


NO_REQUESTER = "no requester recorded"


def requester_label(names: RequesterNames | None, reference: object) -> str:
    """How a requester's keyed reference reads to a viewer: its name for the tenant's own
    viewers (``names``), its reference for the operator (``None``: no tenant's names), and a
    reference no name is recomputed for as an unknown requester with its reference."""
    if not isinstance(reference, str) or not reference:
        return NO_REQUESTER
    if names is None:
        return f"requester ref {reference[:8]}…"
    return names.by_ref.get(reference) or f"unknown requester (ref {reference[:8]}…)"


def requester_names(guard: Guard, keys: ApiKeyStore, tenant: str) -> RequesterNames:
    hasher = guard.keys.hasher().for_tenant(tenant)
    labelled: dict[str, str] = {}
    for key in keys.list_keys(tenant):
        shown = f"{key.requester} ({key.label})" if key.label else key.requester
        labelled.setdefault(key.requester, shown)
    # Only this tenant's grants are read (its subjects'), whatever the deployment holds.
    with guard.db.transaction() as session:
        grantees = session.scalars(
            select(ConsentGrantRow.grantee)
            .join(SubjectRow, SubjectRow.id == ConsentGrantRow.subject_id)
            .where(SubjectRow.tenant == tenant)
            .distinct()
        ).all()
    for grantee in grantees:
        if in_tenant(grantee, tenant):
            labelled.setdefault(grantee, grantee)
    return RequesterNames(
        tenant, {hasher.ref("requester", requester): shown for requester, shown in labelled.items()}
    )
