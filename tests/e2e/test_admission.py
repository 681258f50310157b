"""Admission control: a worker full of image work answers 503 ``busy`` with ``Retry-After`` at
once, instead of letting requests pile up behind a large image."""

from __future__ import annotations

import asyncio
import threading
import time

import cv2
import httpx
import pytest

from guard.api.admission import Admission, Busy
from guard.media import encode_image
from guard.samples import sample_rgb
from tests.support.live import LiveFactory, image_part, params


def test_past_the_slots_and_the_queue_a_request_is_refused_at_once() -> None:
    async def scenario() -> None:
        admission = Admission(slots=1, queue=1, retry_after_s=2.0)
        release = asyncio.Event()

        async def hold() -> None:
            async with admission.admitted():
                await release.wait()

        working = asyncio.create_task(hold())
        waiting = asyncio.create_task(hold())
        await asyncio.sleep(0)
        with pytest.raises(Busy) as refused:
            async with admission.admitted():
                pass
        assert (refused.value.http_status, refused.value.code) == (503, "busy")
        assert refused.value.retry_after == 2.0
        release.set()
        await asyncio.gather(working, waiting)
        async with admission.admitted():  # every place is free again
            pass

    asyncio.run(scenario())


def test_a_second_concurrent_check_gets_503_busy(live: LiveFactory) -> None:
    service = live(api_max_concurrent_images=1, api_admission_queue=0)
    before = service.guard.audit.size()
    rgb = sample_rgb("astronaut")
    large = encode_image(cv2.resize(rgb, (2560, 2560), interpolation=cv2.INTER_CUBIC), "png")
    first: list[httpx.Response] = []

    def slow_check() -> None:
        with service.client() as api:
            first.append(
                api.post(
                    "/v1/checks",
                    data=params(operation="relight"),
                    files={"image": ("large.png", large, "image/png")},
                    timeout=120,
                )
            )

    worker = threading.Thread(target=slow_check)
    worker.start()
    time.sleep(1.5)  # the large check is uploaded and working (it takes seconds)
    with service.client() as api:
        second = api.post("/v1/checks", data=params(operation="relight"), files=image_part())
    assert first == [], "the large check finished too soon to hold the slot"
    assert second.status_code == 503
    assert second.json()["code"] == "busy"
    assert int(second.headers["retry-after"]) >= 1
    worker.join()
    assert first[0].status_code in (200, 403)  # decided, allow or deny
    assert service.guard.audit.size() > before  # the first was decided and audited
    with service.client() as api:  # the slot is free again
        third = api.post("/v1/checks", data=params(operation="relight"), files=image_part())
    assert third.status_code in (200, 403)
