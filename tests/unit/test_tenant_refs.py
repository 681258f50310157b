"""Keyed references are per tenant: two tenants' references to one value cannot be joined.

The attack (issue 15): every audit entry referenced people with the deployment's one HMAC key,
so the same person (or the same raw id) had the same reference in every tenant's entries, and a
tenant's auditor could join its entries with another tenant's. Each tenant's key is now derived
from the deployment key (``KeyedHasher.for_tenant``), and every entry and manifest uses the key of
the tenant it belongs to.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from guard.audit.entries import decision_entry, registry_entry, release_entry
from guard.identity import RegistryChange
from guard.policy import Decision, FaceDecision, Reason, ReasonCode, Verdict
from guard.provenance import consent_grant_refs
from guard.secrets import KeyedHasher

KEY = os.urandom(32)
tenants = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}", fullmatch=True)
values = st.text(min_size=1, max_size=40)
kinds = st.sampled_from(["subject", "grant", "requester"])


@settings(max_examples=200, deadline=None)
@given(a=tenants, b=tenants, kind=kinds, value=values)
def test_two_tenants_refs_to_one_value_differ(a: str, b: str, kind: str, value: str) -> None:
    assume(a != b)
    hasher = KeyedHasher(KEY)
    ref_a = hasher.for_tenant(a).ref(kind, value)
    assert ref_a == hasher.for_tenant(a).ref(kind, value), "stable within a tenant"
    assert ref_a != hasher.for_tenant(b).ref(kind, value)
    assert ref_a != hasher.ref(kind, value), "not the deployment key's reference"
    assert ref_a != KeyedHasher(os.urandom(32)).for_tenant(a).ref(kind, value)


def test_a_tenant_hasher_needs_a_tenant() -> None:
    with pytest.raises(ValueError, match="needs a tenant"):
        KeyedHasher(KEY).for_tenant("")


def _decision(subject_id: str, grant_id: str) -> Decision:
    reason = Reason(
        ReasonCode.CONSENT_GRANTED,
        "consent granted",
        {"face_index": 0, "subject_id": subject_id, "grant_id": grant_id},
    )
    face = FaceDecision(0, (0, 0, 10, 10), "consented_subject", Verdict.ALLOW, (reason,))
    return Decision(Verdict.ALLOW, (reason,), "default", "1", "input", faces=(face,))


@settings(max_examples=50, deadline=None)
@given(a=tenants, b=tenants, subject_id=values, grant_id=values)
def test_entries_and_manifests_use_their_tenants_key(
    a: str, b: str, subject_id: str, grant_id: str
) -> None:
    """The same raw ids in two tenants' entries and manifests give references that differ,
    each recomputable with its own tenant's key."""
    assume(a != b)
    hasher = KeyedHasher(KEY)
    decision = _decision(subject_id, grant_id)
    refs = {}
    for tenant in (a, b):
        own = hasher.for_tenant(tenant)
        entry = decision_entry(
            decision,
            requester=f"{tenant}/app",
            operation="relight",
            input_sha256=None,
            hasher=hasher,
        )
        assert entry["tenant"] == tenant
        assert entry["requester"] == own.ref("requester", f"{tenant}/app")
        assert entry["subject_refs"] == [own.ref("subject", subject_id)]
        assert entry["grant_refs"] == [own.ref("grant", grant_id)]
        change = RegistryChange(
            "consent_granted",
            tenant,
            subject_id,
            grant_id=grant_id,
            grantee=f"{tenant}/app",
            scopes=("relight",),
        )
        registered = registry_entry(change, hasher)
        assert registered["subject_refs"] == entry["subject_refs"]
        assert registered["grant_refs"] == entry["grant_refs"]
        assert registered["grantee"] == entry["requester"]
        released = release_entry(
            decision,
            requester=f"{tenant}/app",
            output_sha256="0" * 64,
            watermark_record_id="r",
            manifest_label="m",
            hasher=hasher,
        )
        assert released["requester"] == entry["requester"]
        manifest_refs = consent_grant_refs(decision, hasher, tenant=tenant)
        assert list(manifest_refs) == entry["grant_refs"]
        refs[tenant] = set(entry["subject_refs"] + entry["grant_refs"])
    assert refs[a].isdisjoint(refs[b])
