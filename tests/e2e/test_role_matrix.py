"""Who may call what: every route × every role × own/other tenant → the expected status.

Tenant ``acme`` owns the objects; keys of ``acme`` (own) and ``globex`` (other) in every tenant
role, and the deployment's operator key (no tenant), ask for them. A role not allowed on a route
gets 403 whoever owns the object; an allowed role of the other tenant gets 404, exactly as for an
object that does not exist. The operator acts only on the deployment's own state (the blocklist,
public-figure links) and gets 403 on every tenant route. A route the matrix does not list fails
``test_the_matrix_covers_every_route``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass
from datetime import timedelta
from typing import Any

import pytest

from guard import Guard
from guard.api import ApiKeyStore, Role
from guard.api.flags import FlagStore
from guard.identity import Blocklist
from guard.jobs.records import NewJob, new_job_id
from guard.jobs.store import JobStore
from guard.safety import UsageAlert
from guard.samples import sample_bytes
from tests.support.live import LiveFactory, LiveService, image_part, params
from tests.support.registry import EVIDENCE, link_to_figure, reference_face

# Authorisation is decided before any storage is touched, and the storage paths these routes
# use are tested on both databases elsewhere: the matrix runs on SQLite only.

OPERATOR = frozenset({Role.OPERATOR})
TENANT_ROLES = frozenset({Role.ADMIN, Role.INTEGRATOR, Role.AUDITOR})
WRITERS = frozenset({Role.ADMIN, Role.INTEGRATOR})
READERS = frozenset({Role.ADMIN, Role.AUDITOR})
ADMIN = frozenset({Role.ADMIN})
NOBODY: frozenset[Role] = frozenset()

# Answer without a key by design: probes and Prometheus scrape them.
UNAUTHENTICATED = {"GET /healthz", "GET /readyz", "GET /metrics"}


@dataclass
class Owned:
    """Objects of tenant acme; ``fresh_*`` make a new one for routes that use one up."""

    service: LiveService
    subject_id: str
    grant_id: str
    entry_index: int
    decision_id: str
    job_id: str
    made: int = 0

    def fresh_subject(self) -> str:
        return self.service.guard.registry.create_subject("acme").id

    def fresh_linked_subject(self) -> str:
        subject_id = self.fresh_subject()
        link_to_figure(self.service.guard, subject_id, "tom-hanks")
        return subject_id

    def fresh_grant(self) -> str:
        registry = self.service.guard.registry
        return registry.grant(
            self.subject_id, grantee="acme/app", scopes=["relight"], evidence_sha256=EVIDENCE
        ).id

    def fresh_consent_request(self) -> str:
        return self.service.guard.registry.consent_requests.create(
            self.subject_id,
            tenant="acme",
            requester="acme/app",
            requester_display_name="Acme Photo",
            tenant_display_name="Acme",
            scopes=["relight"],
            grant_days=30,
        ).request.id

    def fresh_flag(self) -> str:
        key = ApiKeyStore(self.service.guard.db).create(tenant="acme", role=Role.INTEGRATOR)
        flag = FlagStore(self.service.guard.db).raise_flag(
            key.key, UsageAlert("denials", "test flag", 0)
        )
        assert flag is not None
        return flag.id

    def fresh_figure(self) -> str:
        self.made += 1
        figure_id = f"figure-{self.made}"
        face = reference_face(self.service.guard, "tom_hanks")

        def add(blocklist: Blocklist) -> None:
            blocklist.add_figure(figure_id, "A Figure", [face.embedding])

        self.service.guard.blocklists.update(add)
        return figure_id


Request = Callable[[Owned], tuple[str, str, dict[str, Any]]]


@dataclass(frozen=True)
class Endpoint:
    route: str
    """``METHOD /path/{template}`` as the OpenAPI schema names it (``*``: every method)."""
    roles: frozenset[Role]
    request: Request
    _: KW_ONLY
    ok: int = 200
    tenant_scoped: bool = True
    """The object belongs to acme: another tenant's allowed role gets 404."""
    gateway_header: bool = False
    """The key goes in ``x-guard-api-key`` (the Envoy endpoint reads only that header)."""


def _text_check(o: Owned) -> tuple[str, str, dict[str, Any]]:
    return "POST", "/v1/checks", {"data": params(operation="generate")}


def _figure_upload(o: Owned) -> tuple[str, str, dict[str, Any]]:
    figure = {"figure_id": "tom-hanks", "name": "Tom Hanks"}
    photo = ("hanks.png", sample_bytes("tom_hanks"), "image/png")
    return (
        "POST",
        "/v1/blocklist/figures",
        {"data": {"params": json.dumps(figure)}, "files": [("images", photo)]},
    )


ENDPOINTS = [
    # decisions
    Endpoint("POST /v1/checks", WRITERS, _text_check, tenant_scoped=False),
    Endpoint(
        "POST /v1/edits",
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
    Endpoint(
        "POST /v1/stamps",
        WRITERS,
        lambda o: (
            "POST",
            "/v1/stamps",
            {"data": params(generator="acme-diffusion"), "files": image_part("coffee")},
        ),
        tenant_scoped=False,
    ),
    Endpoint(
        "POST /v1/verify",
        TENANT_ROLES,
        lambda o: ("POST", "/v1/verify", {"files": image_part()}),
        tenant_scoped=False,
    ),
    # subjects
    Endpoint(
        "POST /v1/subjects",
        WRITERS,
        lambda o: ("POST", "/v1/subjects", {"json": {"display_name": "Model B"}}),
        ok=201,
        tenant_scoped=False,
    ),
    Endpoint(  # the attack of issue 15: a tenant linking its own subject to a public figure
        "POST /v1/subjects",
        NOBODY,
        lambda o: ("POST", "/v1/subjects", {"json": {"public_figure_id": "tom-hanks"}}),
        tenant_scoped=False,
    ),
    Endpoint(
        "GET /v1/subjects", TENANT_ROLES, lambda o: ("GET", "/v1/subjects", {}), tenant_scoped=False
    ),
    Endpoint(
        "GET /v1/subjects/{subject_id}",
        TENANT_ROLES,
        lambda o: ("GET", f"/v1/subjects/{o.subject_id}", {}),
    ),
    Endpoint(
        "DELETE /v1/subjects/{subject_id}",
        WRITERS,
        lambda o: ("DELETE", f"/v1/subjects/{o.fresh_subject()}", {}),
    ),
    Endpoint(
        "POST /v1/subjects/{subject_id}/faces",
        WRITERS,
        lambda o: ("POST", f"/v1/subjects/{o.subject_id}/faces", {"files": image_part()}),
        ok=201,
    ),
    Endpoint(
        "GET /v1/subjects/{subject_id}/report",
        READERS,
        lambda o: ("GET", f"/v1/subjects/{o.subject_id}/report", {}),
    ),
    Endpoint(
        "PUT /v1/subjects/{subject_id}/public-figure",
        OPERATOR,
        lambda o: (
            "PUT",
            f"/v1/subjects/{o.fresh_subject()}/public-figure",
            {"json": {"figure_id": "tom-hanks", "evidence_sha256": EVIDENCE}},
        ),
        tenant_scoped=False,  # the operator links a subject of any tenant
    ),
    Endpoint(
        "DELETE /v1/subjects/{subject_id}/public-figure",
        OPERATOR,
        lambda o: ("DELETE", f"/v1/subjects/{o.fresh_linked_subject()}/public-figure", {}),
        tenant_scoped=False,
    ),
    # consents
    Endpoint(
        "POST /v1/consents",
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
        "GET /v1/consents",
        TENANT_ROLES,
        lambda o: ("GET", f"/v1/consents?subject_id={o.subject_id}", {}),
    ),
    Endpoint(
        "GET /v1/consents", TENANT_ROLES, lambda o: ("GET", "/v1/consents", {}), tenant_scoped=False
    ),
    Endpoint(
        "POST /v1/consents/{grant_id}/confirmation",
        WRITERS,
        lambda o: ("POST", f"/v1/consents/{o.fresh_grant()}/confirmation", {}),
        ok=201,
    ),
    Endpoint(
        "POST /v1/consents/{grant_id}/revoke",
        WRITERS,
        lambda o: ("POST", f"/v1/consents/{o.fresh_grant()}/revoke", {}),
    ),
    # consent requests (the person answers on their own page)
    Endpoint(
        "POST /v1/consent-requests",
        WRITERS,
        lambda o: (
            "POST",
            "/v1/consent-requests",
            {
                "json": {
                    "subject_id": o.subject_id,
                    "requester_display_name": "Acme Photo",
                    "scopes": ["relight"],
                }
            },
        ),
        ok=201,
    ),
    Endpoint(
        "GET /v1/consent-requests/{request_id}",
        TENANT_ROLES,
        lambda o: ("GET", f"/v1/consent-requests/{o.fresh_consent_request()}", {}),
    ),
    # the deployment's blocklist
    Endpoint(
        "GET /v1/blocklist", OPERATOR, lambda o: ("GET", "/v1/blocklist", {}), tenant_scoped=False
    ),
    Endpoint("POST /v1/blocklist/figures", OPERATOR, _figure_upload, ok=201, tenant_scoped=False),
    Endpoint(
        "DELETE /v1/blocklist/figures/{figure_id}",
        OPERATOR,
        lambda o: ("DELETE", f"/v1/blocklist/figures/{o.fresh_figure()}", {}),
        tenant_scoped=False,
    ),
    Endpoint(  # 409: this deployment names no GUARD_BLOCKLIST_SOURCE_DIR
        "POST /v1/blocklist/rebuild",
        OPERATOR,
        lambda o: ("POST", "/v1/blocklist/rebuild", {}),
        ok=409,
        tenant_scoped=False,
    ),
    # audit
    Endpoint(
        "GET /v1/audit/checkpoint",
        READERS,
        lambda o: ("GET", "/v1/audit/checkpoint", {}),
        tenant_scoped=False,
    ),
    Endpoint(
        "GET /v1/audit/entries",
        READERS,
        lambda o: ("GET", "/v1/audit/entries", {}),
        tenant_scoped=False,
    ),
    Endpoint(
        "GET /v1/audit/entries/{index}",
        READERS,
        lambda o: ("GET", f"/v1/audit/entries/{o.entry_index}", {}),
    ),
    Endpoint(
        "GET /v1/audit/entries/{index}/proof",
        READERS,
        lambda o: ("GET", f"/v1/audit/entries/{o.entry_index}/proof", {}),
    ),
    Endpoint(
        "GET /v1/audit/decisions/{decision_id}/receipt",
        READERS,
        lambda o: ("GET", f"/v1/audit/decisions/{o.decision_id}/receipt", {}),
    ),
    Endpoint(
        "GET /v1/audit/consistency",
        READERS,
        lambda o: ("GET", "/v1/audit/consistency?old_size=1&new_size=2", {}),
        tenant_scoped=False,
    ),
    Endpoint(
        "GET /v1/audit/export",
        READERS,
        lambda o: ("GET", "/v1/audit/export", {}),
        tenant_scoped=False,
    ),
    # edit jobs (on SQLite a submission is 503: jobs need PostgreSQL's queue; the job acme owns
    # was cancelled, so its event stream ends at once and it has no result: 409)
    Endpoint(
        "POST /v1/jobs",
        WRITERS,
        lambda o: (
            "POST",
            "/v1/jobs",
            {"data": params(operation="relight"), "files": image_part()},
        ),
        ok=503,
        tenant_scoped=False,
    ),
    Endpoint(
        "GET /v1/jobs/webhook-secret",
        WRITERS,
        lambda o: ("GET", "/v1/jobs/webhook-secret", {}),
        tenant_scoped=False,
    ),
    Endpoint("GET /v1/jobs", TENANT_ROLES, lambda o: ("GET", "/v1/jobs", {}), tenant_scoped=False),
    Endpoint("GET /v1/jobs/{job_id}", TENANT_ROLES, lambda o: ("GET", f"/v1/jobs/{o.job_id}", {})),
    Endpoint(
        "GET /v1/jobs/{job_id}/events",
        TENANT_ROLES,
        lambda o: ("GET", f"/v1/jobs/{o.job_id}/events", {}),
    ),
    Endpoint(
        "GET /v1/jobs/{job_id}/result",
        WRITERS,
        lambda o: ("GET", f"/v1/jobs/{o.job_id}/result", {}),
        ok=409,
    ),
    Endpoint(
        "DELETE /v1/jobs/{job_id}",
        WRITERS,
        lambda o: ("DELETE", f"/v1/jobs/{o.job_id}", {}),
        ok=409,
    ),
    # usage flags
    Endpoint("GET /v1/flags", ADMIN, lambda o: ("GET", "/v1/flags", {}), tenant_scoped=False),
    Endpoint(
        "POST /v1/flags/{flag_id}/clear",
        ADMIN,
        lambda o: ("POST", f"/v1/flags/{o.fresh_flag()}/clear", {}),
    ),
    # the gateway
    Endpoint(
        "* /v1/ext_authz/{original_path}",
        WRITERS,
        lambda o: ("GET", "/v1/ext_authz/generate", {}),
        tenant_scoped=False,
        gateway_header=True,
    ),
]


@pytest.fixture
def owned(live: LiveFactory) -> Owned:
    service = live(api_rate_burst=10_000)
    guard = service.guard
    face = reference_face(guard, "tom_hanks")
    guard.blocklists.update(lambda b: b.add_figure("tom-hanks", "Tom Hanks", [face.embedding]))
    subject = guard.registry.create_subject("acme")
    grant = guard.registry.grant(
        subject.id, grantee="acme/app", scopes=["background_blur"], evidence_sha256=EVIDENCE
    )
    with service.client("acme", Role.INTEGRATOR) as api:
        check = api.post("/v1/checks", data=params(operation="generate"))
    assert check.status_code == 200, check.text
    decision_id = check.json()["decision"]["decision_id"]
    entry_index = guard.audit.receipt_for_decision(decision_id).leaf_index
    return Owned(service, subject.id, grant.id, entry_index, decision_id, _cancelled_job(guard))


def _cancelled_job(guard: Guard) -> str:
    """A job of acme's, written as the service writes one (submitting needs PostgreSQL)."""
    store = JobStore(guard.db, guard.keys.cipher, max_attempts=3, result_retention=timedelta(1))
    job = NewJob(
        tenant="acme",
        requester="acme/app",
        key_id="k",
        operation="relight",
        request={"prompt": "", "params": {}, "output_format": "png"},
        sealed_image=store.seal(sample_bytes("coffee")),
        input_sha256="0" * 64,
        webhook_url=None,
    )
    job_id = new_job_id()
    with guard.db.transaction() as session:
        store.create(session, job, job_id=job_id, decision_id="dec_x", leaf=0, limit=10)
    store.request_cancel(job_id, "acme")
    return job_id


def _expected(endpoint: Endpoint, tenant: str, role: Role) -> int:
    if role not in endpoint.roles:
        return 403
    if tenant == "acme" or not endpoint.tenant_scoped:
        return endpoint.ok
    return 404


@pytest.mark.slow
def test_every_role_and_route_against_own_and_other_tenant(owned: Owned) -> None:
    failures = []
    for endpoint in ENDPOINTS:
        for tenant in ("acme", "globex"):
            for role in Role:
                method, path, kwargs = endpoint.request(owned)
                token = owned.service.token(tenant, role)
                header = "x-guard-api-key" if endpoint.gateway_header else "Authorization"
                value = token if endpoint.gateway_header else f"Bearer {token}"
                with owned.service.client(tenant, role) as api:
                    api.headers.pop("Authorization")
                    response = api.request(method, path, headers={header: value}, **kwargs)
                expected = _expected(endpoint, tenant, role)
                if response.status_code != expected:
                    failures.append(
                        f"{endpoint.route} as {tenant}/{role.value}: {response.status_code} "
                        f"(expected {expected}) {response.text[:200]}"
                    )
                if response.status_code >= 400:
                    assert response.headers["content-type"] == "application/problem+json"
    assert not failures, "\n".join(failures)


def test_the_matrix_covers_every_route(owned: Owned) -> None:
    """A new route must say here who may call it (or be one of the unauthenticated probes)."""
    import httpx

    schema = httpx.get(f"{owned.service.base_url}/openapi.json").json()
    covered = {endpoint.route for endpoint in ENDPOINTS}
    missing = [
        f"{method.upper()} {path}"
        for path, methods in schema["paths"].items()
        for method in methods
        if f"{method.upper()} {path}" not in covered | UNAUTHENTICATED
        and f"* {path}" not in covered
    ]
    assert not missing, f"routes the role matrix does not cover: {missing}"
    for route in UNAUTHENTICATED:
        assert httpx.get(owned.service.base_url + route.split()[1]).status_code in (200, 503)
