"""Admission control over HTTP and in the gateway: a worker full of image work answers 503
``busy`` with ``Retry-After`` at once, instead of letting requests pile up behind a large image,
and large images leave room for small ones (the rules themselves: tests/unit/test_admission.py)."""

from __future__ import annotations

import threading
import time

import cv2
import httpx
import numpy as np
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.testclient import TestClient

from guard.api import GuardMiddleware
from guard.api.admission import Admission
from guard.api.app import create_app
from guard.media import encode_image
from guard.samples import sample_bytes, sample_rgb
from tests.support.guards import GuardFactory
from tests.support.live import LiveService, image_part, params, serve


def check_in_background(
    service: LiveService, image: bytes, media_type: str
) -> tuple[threading.Thread, list[httpx.Response]]:
    """Send a check of ``image`` from a thread; its answer lands in the list when it is done."""
    answers: list[httpx.Response] = []

    def check() -> None:
        with service.client() as api:
            files = {"image": ("large.img", image, media_type)}
            answers.append(
                api.post("/v1/checks", data=params(operation="relight"), files=files, timeout=120)
            )

    worker = threading.Thread(target=check)
    worker.start()
    return worker, answers


def test_a_second_concurrent_check_gets_503_busy(make_guard: GuardFactory) -> None:
    guard = make_guard(api_max_concurrent_images=1, api_admission_queue=0)
    app = create_app(guard=guard)
    admission = app.state.service.admission
    running = serve(app)
    service = LiveService(guard, next(running))
    before = guard.audit.size()
    rgb = sample_rgb("astronaut")
    # 36 MP: seconds of work. The test waits until the check holds the slot rather than for a
    # fixed time: a faster face path once finished a smaller image before the second arrived.
    large = encode_image(cv2.resize(rgb, (6000, 6000), interpolation=cv2.INTER_CUBIC), "jpeg")
    worker, first = check_in_background(service, large, "image/jpeg")
    for _ in range(600):
        if sum(admission._working.values()):
            break
        time.sleep(0.01)
    with service.client() as api:
        second = api.post("/v1/checks", data=params(operation="relight"), files=image_part())
    assert first == [], "the large check finished too soon to hold the slot"
    assert second.status_code == 503
    assert second.json()["code"] == "busy"
    assert int(second.headers["retry-after"]) >= 1
    worker.join()
    assert first[0].status_code in (200, 403)  # decided, allow or deny
    assert guard.audit.size() > before  # the first was decided and audited
    with service.client() as api:  # the slot is free again
        third = api.post("/v1/checks", data=params(operation="relight"), files=image_part())
    next(running, None)
    assert third.status_code in (200, 403)


def test_large_images_leave_a_slot_for_a_small_check(make_guard: GuardFactory) -> None:
    guard = make_guard(api_max_concurrent_images=2, api_admission_queue=0)
    app = create_app(guard=guard)
    admission = app.state.service.admission
    running = serve(app)
    service = LiveService(guard, next(running))
    rgb = sample_rgb("astronaut")
    # 36 MP: seconds of work (decode, detection at the working size, NSFW).
    large = encode_image(cv2.resize(rgb, (6000, 6000), interpolation=cv2.INTER_CUBIC), "jpeg")
    worker, answers = check_in_background(service, large, "image/jpeg")
    for _ in range(600):  # until the large check holds the one slot large images may take
        if admission._working[True]:
            break
        time.sleep(0.01)
    with service.client() as api:
        # A tiny faceless image is decided in milliseconds: the probe for "admitted now".
        small = api.post(
            "/v1/checks",
            data=params(operation="relight"),
            files={
                "image": ("tiny.png", encode_image(np.full((64, 64, 3), 90, np.uint8)), "image/png")
            },
        )
        # Still refused after the small check was decided: the large one worked throughout.
        second_large = api.post(
            "/v1/checks",
            data=params(operation="relight"),
            files={"image": ("large.jpg", large, "image/jpeg")},
        )
    worker.join()
    next(running, None)
    assert small.status_code in (200, 403), small.text  # decided beside the large one
    assert (second_large.status_code, second_large.json()["code"]) == (503, "busy")
    assert answers[0].status_code in (200, 403)


def test_guard_middleware_answers_busy_when_its_worker_is_full(
    make_guard: GuardFactory,
) -> None:
    upstream_calls: list[str] = []

    async def generate(request: Request) -> Response:
        upstream_calls.append(request.url.path)
        return Response(b"{}", media_type="application/json")

    guard = make_guard()
    app = GuardMiddleware(
        Starlette(routes=[Route("/generate", generate, methods=["POST"])]),
        guard=guard,
        requester="acme/studio",
        generator="stub",
    )
    app.flow.admission = admission = Admission(slots=1, queue=0, retry_after_s=2.0)
    before = guard.audit.size()
    with admission.admitted(sample_bytes("astronaut")), TestClient(app) as client:
        answer = client.post("/generate", data=params(prompt="a lighthouse"), files=image_part())
    assert (answer.status_code, answer.json()["code"]) == (503, "busy")
    assert answer.headers["retry-after"] == "2"
    assert upstream_calls == [] and guard.audit.size() == before
