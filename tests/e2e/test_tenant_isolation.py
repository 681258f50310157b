"""Tenant isolation: lists, photos and keys show a tenant only its own (the route-by-route
matrix of who may call what is tests/e2e/test_role_matrix.py)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from guard.api import ApiKeyStore, Role
from tests.support.live import LiveFactory, LiveService, image_part, params
from tests.support.registry import EVIDENCE

pytestmark = pytest.mark.storage


@dataclass
class Owned:
    """Tenant acme's subject and its grant, on a live service."""

    service: LiveService
    subject_id: str
    grant_id: str


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
    return Owned(service, subject.id, grant.id)


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
