"""Tenant isolation: each role × each endpoint × own/other tenant → the expected status.

Tenant ``acme`` owns the objects; keys of ``acme`` (own) and ``globex`` (other) in every role
ask for them. A role not allowed on an endpoint gets 403 whoever owns the object; an allowed
role of the other tenant gets 404, exactly as for an object that does not exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from guard.api import ApiKeyStore, Role
from guard.api.flags import FlagStore
from guard.safety import UsageAlert
from tests.support.live import LiveFactory, LiveService, image_part, params
from tests.support.registry import EVIDENCE

pytestmark = pytest.mark.storage

ALL = frozenset(Role)
WRITERS = frozenset({Role.ADMIN, Role.INTEGRATOR})
READERS = frozenset({Role.ADMIN, Role.AUDITOR})
ADMIN = frozenset({Role.ADMIN})


@dataclass
class Owned:
    """Objects of tenant acme; ``fresh_*`` make a new one for endpoints that use one up."""

    service: LiveService
    subject_id: str
    grant_id: str
    entry_index: int
    decision_id: str

    def fresh_subject(self) -> str:
        return self.service.guard.registry.create_subject("acme").id

    def fresh_grant(self) -> str:
        registry = self.service.guard.registry
        return registry.grant(
            self.subject_id, grantee="acme/app", scopes=["relight"], evidence_sha256=EVIDENCE
        ).id

    def fresh_flag(self) -> str:
        key = ApiKeyStore(self.service.guard.db).create(tenant="acme", role=Role.INTEGRATOR)
        flag = FlagStore(self.service.guard.db).raise_flag(
            key.key, UsageAlert("denials", "test flag", 0)
        )
        assert flag is not None
        return flag.id


Request = Callable[[Owned], tuple[str, str, dict[str, Any]]]


@dataclass(frozen=True)
class Endpoint:
    name: str
    roles: frozenset[Role]
    request: Request
    ok: int = 200
    tenant_scoped: bool = True


ENDPOINTS = [
    Endpoint("get subject", ALL, lambda o: ("GET", f"/v1/subjects/{o.subject_id}", {})),
    Endpoint(
        "enroll face",
        WRITERS,
        lambda o: ("POST", f"/v1/subjects/{o.subject_id}/faces", {"files": image_part()}),
        ok=201,
    ),
    Endpoint(
        "erase subject", WRITERS, lambda o: ("DELETE", f"/v1/subjects/{o.fresh_subject()}", {})
    ),
    Endpoint(
        "subject report", READERS, lambda o: ("GET", f"/v1/subjects/{o.subject_id}/report", {})
    ),
    Endpoint(
        "grant consent",
        WRITERS,
        lambda o: (
            "POST",
            "/v1/consents",
            {
                "json": {
                    "subject_id": o.subject_id,
                    "scopes": ["relight"],
                    "evidence_sha256": EVIDENCE,
                }
            },
        ),
        ok=201,
    ),
    Endpoint(
        "list subject's consents",
        ALL,
        lambda o: ("GET", f"/v1/consents?subject_id={o.subject_id}", {}),
    ),
    Endpoint(
        "revoke consent", WRITERS, lambda o: ("POST", f"/v1/consents/{o.fresh_grant()}/revoke", {})
    ),
    Endpoint(
        "edit declaring the subject",
        WRITERS,
        lambda o: (
            "POST",
            "/v1/edits",
            {
                "data": params(operation="color_grade", subject_ids=[o.subject_id]),
                "files": image_part(),
            },
        ),
        ok=403,  # own tenant: a real decision (color_grade was never granted), not 404
    ),
    Endpoint("audit entry", READERS, lambda o: ("GET", f"/v1/audit/entries/{o.entry_index}", {})),
    Endpoint(
        "audit proof", READERS, lambda o: ("GET", f"/v1/audit/entries/{o.entry_index}/proof", {})
    ),
    Endpoint(
        "decision receipt",
        READERS,
        lambda o: ("GET", f"/v1/audit/decisions/{o.decision_id}/receipt", {}),
    ),
    Endpoint("clear flag", ADMIN, lambda o: ("POST", f"/v1/flags/{o.fresh_flag()}/clear", {})),
    Endpoint("list subjects", ALL, lambda o: ("GET", "/v1/subjects", {}), tenant_scoped=False),
    Endpoint(
        "list audit entries",
        READERS,
        lambda o: ("GET", "/v1/audit/entries", {}),
        tenant_scoped=False,
    ),
    Endpoint(
        "audit checkpoint",
        READERS,
        lambda o: ("GET", "/v1/audit/checkpoint", {}),
        tenant_scoped=False,
    ),
    Endpoint("blocklist", READERS, lambda o: ("GET", "/v1/blocklist", {}), tenant_scoped=False),
    Endpoint("list flags", ADMIN, lambda o: ("GET", "/v1/flags", {}), tenant_scoped=False),
    Endpoint(
        "text check",
        WRITERS,
        lambda o: ("POST", "/v1/checks", {"data": params(operation="generate")}),
        tenant_scoped=False,
    ),
    Endpoint(
        "verify",
        ALL,
        lambda o: ("POST", "/v1/verify", {"files": image_part()}),
        tenant_scoped=False,
    ),
]


@pytest.fixture
def owned(live: LiveFactory) -> Owned:
    service = live(api_rate_burst=10_000)
    guard = service.guard
    subject = guard.registry.create_subject("acme")
    grant = guard.registry.grant(
        subject.id, grantee="acme/app", scopes=["background_blur"], evidence_sha256=EVIDENCE
    )
    with service.client("acme", Role.INTEGRATOR) as api:
        check = api.post("/v1/checks", data=params(operation="generate"))
    assert check.status_code == 200, check.text
    decision_id = check.json()["decision"]["decision_id"]
    entry_index = guard.audit.receipt_for_decision(decision_id).leaf_index
    return Owned(service, subject.id, grant.id, entry_index, decision_id)


@pytest.mark.slow
def test_every_role_and_endpoint_against_own_and_other_tenant(owned: Owned) -> None:
    failures = []
    for endpoint in ENDPOINTS:
        for tenant in ("acme", "globex"):
            for role in Role:
                if role not in endpoint.roles:
                    expected = 403
                elif tenant == "acme" or not endpoint.tenant_scoped:
                    expected = endpoint.ok
                else:
                    expected = 404
                method, path, kwargs = endpoint.request(owned)
                with owned.service.client(tenant, role) as api:
                    response = api.request(method, path, **kwargs)
                if response.status_code != expected:
                    failures.append(
                        f"{endpoint.name} as {tenant}/{role.value}: {response.status_code} "
                        f"(expected {expected}) {response.text[:200]}"
                    )
                if response.status_code >= 400:
                    assert response.headers["content-type"] == "application/problem+json"
    assert not failures, "\n".join(failures)


def test_lists_show_only_the_callers_tenant(owned: Owned) -> None:
    with owned.service.client("globex", Role.ADMIN) as other:
        assert other.get("/v1/subjects").json() == []
        assert other.get("/v1/consents").json() == []
        entries = other.get("/v1/audit/entries?limit=1000").json()["entries"]
        assert entries, "the global entries (policy and blocklist in force) are shared"
        assert all(e["entry"].get("tenant") in (None, "globex") for e in entries)
        assert owned.subject_id not in other.get("/v1/audit/export").text
    with owned.service.client("acme", Role.AUDITOR) as own:
        assert [s["id"] for s in own.get("/v1/subjects").json()] == [owned.subject_id]
        assert [g["id"] for g in own.get("/v1/consents").json()] == [owned.grant_id]


def test_another_tenants_subject_in_a_photo_is_shown_as_unknown(owned: Owned) -> None:
    """acme enrolled the astronaut; globex's edit of her photo is denied without learning
    acme's subject id or that she is enrolled."""
    faces = owned.service.guard.faces_in(image_part()["image"][1])
    owned.service.guard.registry.enroll(owned.subject_id, faces)
    with owned.service.client("globex", Role.INTEGRATOR) as other:
        denied = other.post("/v1/edits", data=params(operation="relight"), files=image_part())
    assert denied.status_code == 403
    assert denied.json()["code"] == "no_consent"
    assert owned.subject_id not in denied.text
    assert denied.json()["decision"]["faces"][0]["kind"] == "unknown"
    with owned.service.client("acme", Role.INTEGRATOR) as own:
        mine = own.post("/v1/edits", data=params(operation="relight"), files=image_part())
    assert owned.subject_id in mine.text


@pytest.mark.parametrize("token", ["", "lg_0000000000000000.notarealsecret", "Bearer junk"])
def test_missing_or_unknown_key_is_401(owned: Owned, token: str) -> None:
    import httpx

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = httpx.get(f"{owned.service.base_url}/v1/subjects", headers=headers)
    assert response.status_code == 401
    assert response.json()["type"].endswith("/unauthenticated")


def test_revoked_key_is_401(owned: Owned) -> None:
    store = ApiKeyStore(owned.service.guard.db)
    issued = store.create(tenant="acme", role=Role.ADMIN)
    import httpx

    headers = {"x-guard-api-key": issued.token}
    url = f"{owned.service.base_url}/v1/subjects"
    assert httpx.get(url, headers=headers).status_code == 200
    store.revoke(issued.key.id)
    assert httpx.get(url, headers=headers).status_code == 401
