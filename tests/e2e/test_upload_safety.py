"""Upload safety: 413 before the body is read, 415 for what is not an image, 422 for what
cannot be decoded; none of them decides, audits or stores anything."""

from __future__ import annotations

import socket
import time
from urllib.parse import urlparse

import httpx

from guard.api import Role
from guard.samples import sample_bytes
from tests.support.live import LiveFactory, LiveService, image_part, params


def _state(service: LiveService) -> tuple[int, int]:
    return service.guard.audit.size(), len(service.guard.registry.list_subjects())


def test_declared_oversize_body_is_refused_before_it_is_read(live: LiveFactory) -> None:
    service = live(api_max_body_bytes=100_000)
    before = _state(service)
    url = urlparse(service.base_url)
    token = service.token("acme", Role.INTEGRATOR)
    with socket.create_connection((url.hostname, url.port), timeout=5) as connection:
        connection.sendall(
            b"POST /v1/edits HTTP/1.1\r\nHost: guard\r\n"
            + f"Authorization: Bearer {token}\r\n".encode()
            + b"Content-Type: multipart/form-data; boundary=x\r\n"
            + b"Content-Length: 1000000000\r\n\r\n"
            + b"--x\r\n" * 10
        )
        started = time.monotonic()
        reply = connection.recv(65536).decode("latin-1")
    assert reply.startswith("HTTP/1.1 413"), reply[:200]
    assert "application/problem+json" in reply
    assert time.monotonic() - started < 2, "answered without waiting for a gigabyte"
    assert _state(service) == before


def test_streamed_oversize_body_is_refused(live: LiveFactory) -> None:
    service = live(api_max_body_bytes=100_000)
    before = _state(service)

    def chunks():  # no Content-Length: chunked transfer encoding
        yield (
            b'--x\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n"
        )
        for _ in range(50):
            yield b"x" * 10_000

    with service.client() as api:
        response = api.post(
            "/v1/edits",
            content=chunks(),
            headers={"content-type": "multipart/form-data; boundary=x"},
        )
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert _state(service) == before


def test_wrong_type_undecodable_and_malformed_change_nothing(live: LiveFactory) -> None:
    service = live()
    before = _state(service)
    png = sample_bytes("astronaut")
    with service.client() as api:
        as_text = api.post(
            "/v1/edits",
            data=params(operation="relight"),
            files={"image": ("a.txt", b"hello", "text/plain")},
        )
        not_an_image = api.post(
            "/v1/edits",
            data=params(operation="relight"),
            files={"image": ("a.png", b"%PDF-1.7 not an image at all", "image/png")},
        )
        truncated = api.post(
            "/v1/edits",
            data=params(operation="relight"),
            files={"image": ("a.png", png[: len(png) // 2], "image/png")},
        )
        bad_params = api.post("/v1/edits", data={"params": "{not json"}, files=image_part())
        unknown_operation = api.post(
            "/v1/edits", data=params(operation="face_swap"), files=image_part()
        )
        enroll_text = api.post(
            "/v1/subjects/sub_missing/faces", files={"image": ("a.txt", b"x", "text/plain")}
        )
    assert (as_text.status_code, as_text.json()["code"]) == (415, "unsupported_media")
    assert (not_an_image.status_code, not_an_image.json()["code"]) == (415, "unsupported_media")
    assert (truncated.status_code, truncated.json()["code"]) == (422, "undecodable_image")
    assert bad_params.status_code == 400 and "params" in bad_params.json()["detail"]
    assert unknown_operation.status_code == 400
    assert enroll_text.status_code in (404, 415)
    for response in (as_text, not_an_image, truncated, bad_params, unknown_operation):
        assert response.headers["content-type"] == "application/problem+json"
    assert _state(service) == before


def test_missing_parts_are_422_problems(live: LiveFactory) -> None:
    service = live()
    with service.client() as api:
        response = api.post("/v1/edits", data=params(operation="relight"))
    assert response.status_code == 422
    assert response.json()["type"].endswith("/invalid_request")
    assert any("image" in error["loc"] for error in response.json()["errors"])


def test_health_is_open_and_metrics_count_routes(live: LiveFactory) -> None:
    service = live()
    assert httpx.get(f"{service.base_url}/healthz").json() == {"status": "ok"}
    with service.client() as api:
        api.get("/v1/subjects/sub_one")
        api.get("/v1/subjects/sub_two")
    metrics = httpx.get(f"{service.base_url}/metrics").text
    assert 'route="/v1/subjects/{subject_id}",status="404"} 2.0' in metrics
    assert "guard_stage_seconds" in metrics
