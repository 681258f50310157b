"""Who may open which console route: the console's role matrix (docs/trust.md).

Every route under ``/console`` is listed here with what it shows; the test fails when a route
exists that the table does not list. For each route: without a session a page redirects to the
sign-in page and a data route answers 401; a tenant's auditor and admin open their own
tenant's objects, and another tenant's object answers exactly as one that does not exist; the
operator opens decisions of every tenant and no tenant's people (403)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import ClassVar

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from guard.api import create_app
from guard.api.keys import ApiKeyStore, Role
from guard.identity.models import ErasureRow
from guard.pipeline import Guard
from guard.web.console import ROUTERS
from tests.support.guards import GuardFactory

pytestmark = pytest.mark.storage

# (method, path, what it shows): "sign-in" needs no session; "page" and "data" show decisions
# or the log (the operator may); "people" shows a tenant's people (the operator may not).
ROUTES = {
    ("GET", "/console/sign-in"): "sign-in",
    ("POST", "/console/sign-in"): "sign-in",
    ("POST", "/console/sign-out"): "sign-in",
    ("GET", "/console"): "page",
    ("GET", "/console/decisions"): "page",
    ("GET", "/console/decisions.csv"): "data",
    ("GET", "/console/decisions/{decision_id}"): "page",
    ("GET", "/console/decisions/{decision_id}/receipt.json"): "data",
    ("GET", "/console/export"): "page",
    ("GET", "/console/export/audit.jsonl"): "data",
    ("GET", "/console/verify"): "page",
    ("POST", "/console/verify"): "page",
    ("GET", "/console/consent"): "people",
    ("GET", "/console/subjects/{subject_id}"): "people",
    ("GET", "/console/erasures/{erasure_id}"): "people",
    ("GET", "/console/subjects/{subject_id}/receipts.json"): "people",
    ("GET", "/console/erasures/{erasure_id}/receipts.json"): "people",
}
DATA = (".json", ".csv", ".jsonl")  # data routes answer 401 without a session, pages redirect


@dataclass
class Objects:
    """One of each object per tenant, keyed by the path parameter that names it."""

    acme: dict[str, str]
    globex: dict[str, str]
    nobody: ClassVar[dict[str, str]] = {
        "decision_id": "dec_" + "0" * 32,
        "subject_id": "sub_" + "0" * 24,
        "erasure_id": "999999",
    }


def _decision(guard: Guard, tenant: str, n: int) -> str:
    decision_id = f"dec_{tenant[:4]}{n:028x}"
    guard.audit.append(
        {
            "v": 2,
            "kind": "decision",
            "time": "2026-12-05T10:00:00+00:00",
            "tenant": tenant,
            "requester": "r" * 64,
            "operation": "relight",
            "stage": "input",
            "decision_id": decision_id,
            "verdict": "allow",
            "reason_codes": [],
            "policy": {"id": "default", "version": "1"},
        }
    )
    return decision_id


def _objects(guard: Guard, tenant: str) -> dict[str, str]:
    subject = guard.registry.create_subject(tenant, display_name=f"Someone of {tenant}")
    erased = guard.registry.create_subject(tenant, display_name="Erased")
    guard.registry.erase(erased.id)
    with guard.db.transaction() as session:
        erasure = session.scalars(
            select(ErasureRow.certificate_id).where(ErasureRow.tenant == tenant)
        ).one()
    return {
        "decision_id": _decision(guard, tenant, 1),
        "subject_id": subject.id,
        "erasure_id": str(erasure),
    }


@pytest.fixture
def setup(make_guard: GuardFactory) -> Iterator[tuple[TestClient, Guard, Objects]]:
    guard = make_guard()
    objects = Objects(_objects(guard, "acme"), _objects(guard, "globex"))
    with TestClient(create_app(guard=guard), base_url="https://testserver") as client:
        yield client, guard, objects


def _sign_in(client: TestClient, token: str | None) -> None:
    client.cookies.clear()
    page = client.get("/console/sign-in")
    if token is None:
        return
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    answer = client.post(
        "/console/sign-in", data={"key": token, "csrf": csrf.group(1)}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text


def _path(template: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], template)


def _get(client: TestClient, template: str, values: dict[str, str]) -> tuple[int, str]:
    answer = client.get(_path(template, values), follow_redirects=False)
    # The 404's text names the id asked for; with it taken out, two 404s must be identical.
    text = answer.text
    for value in values.values():
        text = text.replace(value, "<id>")
    return answer.status_code, text


def test_the_matrix_covers_every_console_route(
    setup: tuple[TestClient, Guard, Objects],
) -> None:
    client, _, _ = setup
    served = {
        (method, route.path)
        for router in ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods - {"HEAD"}
    }
    assert served == set(ROUTES)
    # And the app serves exactly those under /console: an unlisted path is a 404.
    assert client.get("/console/anything-else", follow_redirects=False).status_code == 404


def test_without_a_session_nothing_opens(setup: tuple[TestClient, Guard, Objects]) -> None:
    client, _, objects = setup
    for (method, template), shows in ROUTES.items():
        if method != "GET" or shows == "sign-in":
            continue
        answer = client.get(_path(template, objects.acme), follow_redirects=False)
        if template.endswith(DATA):
            assert answer.status_code == 401, template
        else:
            assert answer.status_code == 303, template
            assert answer.headers["location"] == "/console/sign-in"


@pytest.mark.parametrize("role", [Role.AUDITOR, Role.ADMIN])
def test_a_tenant_opens_its_own_and_another_tenants_reads_as_nothing(
    setup: tuple[TestClient, Guard, Objects], role: Role
) -> None:
    client, guard, objects = setup
    _sign_in(client, ApiKeyStore(guard.db).create(tenant="acme", role=role).token)
    for (method, template), shows in ROUTES.items():
        if method != "GET" or shows == "sign-in":
            continue
        own, _ = _get(client, template, objects.acme)
        assert own == 200, template
        if "{" not in template:
            continue
        theirs = _get(client, template, objects.globex)
        nothing = _get(client, template, objects.nobody)
        assert theirs[0] == 404, template
        assert theirs == nothing, template


def test_the_operator_sees_decisions_of_every_tenant_and_no_tenants_people(
    setup: tuple[TestClient, Guard, Objects],
) -> None:
    client, guard, objects = setup
    _sign_in(client, ApiKeyStore(guard.db).create(tenant=None, role=Role.OPERATOR).token)
    for (method, template), shows in ROUTES.items():
        if method != "GET" or shows == "sign-in":
            continue
        for values in (objects.acme, objects.globex):
            status, _ = _get(client, template, values)
            assert status == (403 if shows == "people" else 200), (template, status)
