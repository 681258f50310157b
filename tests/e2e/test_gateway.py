"""The gateway adapters: the Envoy ext_authz endpoint, fed requests shaped exactly as Envoy's
HTTP ext_authz client sends them, and GuardMiddleware around the example generation app."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from examples.gateway.asgi_app import wrap
from guard.api import Role
from guard.samples import sample_bytes
from tests.support.guards import GuardFactory
from tests.support.live import LiveFactory, LiveService
from tests.support.registry import EVIDENCE


def _multipart(fields: dict[str, str], image: bytes | None) -> tuple[bytes, str]:
    """A multipart body as a client would send it to the generator (Envoy forwards it as is)."""
    files = {"image": ("photo.png", image, "image/png")} if image else None
    request = httpx.Request("POST", "http://generator/", data=fields, files=files)
    return request.read(), request.headers["content-type"]


def _envoy_check(
    service: LiveService,
    method: str,
    original_path: str,
    body: bytes,
    content_type: str | None,
    *,
    key: str | None,
    partial: bool = False,
) -> httpx.Response:
    """What Envoy sends: the original method, ``path_prefix`` + the original path, Host,
    Content-Length of what it forwards, the client's Authorization, the allowed headers, the
    headers_to_add (the guard key) and, for a cut-short body, x-envoy-auth-partial-body."""
    headers = {
        "host": "images.example.com",
        "content-length": str(len(body)),
        "authorization": "Bearer sk-the-clients-key-for-the-upstream-api",
        "x-envoy-expected-rq-timeout-ms": "10000",
        "x-forwarded-proto": "https",
        "x-request-id": "4f1b2c55-6d4e-4f39-9a8d-0d6e4f1e2b3a",
    }
    if content_type:
        headers["content-type"] = content_type
    if key:
        headers["x-guard-api-key"] = key
    if partial:
        headers["x-envoy-auth-partial-body"] = "true"
    return httpx.request(
        method,
        f"{service.base_url}/v1/ext_authz{original_path}",
        headers=headers,
        content=body,
        timeout=60,
    )


def test_envoy_ext_authz_allows_denies_and_refuses(live: LiveFactory) -> None:
    service = live()
    key = service.token("acme", Role.INTEGRATOR)

    text = json.dumps({"prompt": "a lighthouse at dusk", "model": "gen-3"}).encode()
    allowed = _envoy_check(
        service, "POST", "/v1/images/generations", text, "application/json", key=key
    )
    assert allowed.status_code == 200, allowed.text
    assert allowed.headers["x-guard-decision"] == "allow_with_conditions"
    decision_id = allowed.headers["x-guard-decision-id"]
    assert service.guard.audit.receipt_for_decision(decision_id).leaf_index >= 0

    body, content_type = _multipart({"prompt": "make it brighter"}, sample_bytes("t1"))
    denied = _envoy_check(service, "POST", "/v1/images/edits", body, content_type, key=key)
    assert denied.status_code == 403
    assert denied.headers["content-type"] == "application/problem+json"
    assert denied.json()["type"] == "https://likeness-guard.dev/problems/no_consent"
    assert denied.headers["x-guard-decision"] == "deny"
    assert len(denied.json()["decision"]["faces"]) >= 5  # everyone in the group photo

    inline = json.dumps(
        {
            "prompt": "restyle",
            "image": "data:image/png;base64,"
            + base64.b64encode(sample_bytes("astronaut")).decode(),
        }
    ).encode()
    # The guard's own shape on a path no known API uses (the generic adapter).
    assert (
        _envoy_check(service, "POST", "/generate", inline, "application/json", key=key).json()[
            "code"
        ]
        == "no_consent"
    )

    get = _envoy_check(service, "GET", "/v1/models", b"", None, key=key)
    assert get.status_code == 200

    partial = _envoy_check(
        service, "POST", "/v1/images/edits", body[:1000], content_type, key=key, partial=True
    )
    assert partial.status_code == 413

    # The client's own Authorization header is never taken for a guard key.
    no_key = _envoy_check(
        service, "POST", "/v1/images/generations", text, "application/json", key=None
    )
    assert no_key.status_code == 401
    auditor = _envoy_check(
        service,
        "POST",
        "/v1/images/generations",
        text,
        "application/json",
        key=service.token("acme", Role.AUDITOR),
    )
    assert auditor.status_code == 403


def test_envoy_operation_header_is_checked_against_the_policy(live: LiveFactory) -> None:
    service = live()
    key = service.token("acme", Role.INTEGRATOR)
    text = json.dumps({"prompt": "a cat"}).encode()

    def check(path: str, operation: str) -> httpx.Response:
        return httpx.post(
            f"{service.base_url}/v1/ext_authz{path}",
            headers={
                "content-type": "application/json",
                "x-guard-api-key": key,
                "x-guard-operation": operation,
            },
            content=text,
        )

    # On a path no known API uses, the header names the operation.
    response = check("/generate", "face_swap")
    assert response.status_code == 403
    assert response.json()["code"] == "operation_not_permitted"
    # A known API's path says what it does: the header cannot swap in another operation (a
    # grant for background_blur must not let a prompt edit through).
    edits = check("/v1/images/edits", "background_blur")
    decision = service.guard.audit.receipt_for_decision(edits.headers["x-guard-decision-id"])
    assert decision.leaf_index >= 0
    entry = service.guard.audit.entry(decision.leaf_index)
    assert entry["operation"] == "prompt_edit"


@pytest.fixture
def middleware_app(make_guard: GuardFactory) -> tuple[object, object, list[str]]:
    guard = make_guard()
    app = wrap(guard)
    calls: list[str] = []
    inner = app.app

    async def counting(scope, receive, send):  # type: ignore[no-untyped-def]
        if scope["type"] == "http":
            calls.append(scope["path"])
        await inner(scope, receive, send)

    app.app = counting
    return guard, app, calls


async def _post(app: object, files: dict | None = None, data: dict | None = None) -> httpx.Response:  # type: ignore[type-arg]
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://studio") as client:
        return await client.post("/generate", files=files, data=data, timeout=120)


@pytest.mark.anyio
async def test_guard_middleware_checks_before_and_stamps_after(
    middleware_app: tuple[object, object, list[str]],
) -> None:
    guard, app, calls = middleware_app
    photo = {"image": ("astronaut.png", sample_bytes("astronaut"), "image/png")}

    denied = await _post(app, files=photo, data={"operation": "relight"})
    assert denied.status_code == 403
    assert denied.json()["code"] == "no_consent"
    assert calls == [], "a denied request never reaches the generation app"

    registry = guard.registry  # type: ignore[attr-defined]
    subject = registry.create_subject("acme")
    registry.enroll(subject.id, guard.faces_in(sample_bytes("astronaut")))  # type: ignore[attr-defined]
    registry.grant(subject.id, grantee="acme/studio", scopes=["relight"], evidence_sha256=EVIDENCE)

    allowed = await _post(app, files=photo, data={"operation": "relight"})
    assert allowed.status_code == 200, allowed.text
    assert calls == ["/generate"]
    assert allowed.headers["content-type"] == "image/png"
    assert allowed.headers["x-guard-decision"] == "allow_with_conditions"
    report = guard.verify(allowed.content)  # type: ignore[attr-defined]
    assert report.outcome.value == "valid"
    assert report.decision["decision_id"] == allowed.headers["x-guard-decision-id"]

    # The app's own errors pass through; other paths are not touched.
    bad = await _post(app, data={"operation": "relight"})
    assert bad.status_code == 400
    transport = httpx.ASGITransport(app=app)  # type: ignore[arg-type]
    async with httpx.AsyncClient(transport=transport, base_url="http://studio") as client:
        assert (await client.get("/health")).json() == {"status": "ok"}
