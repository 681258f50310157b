"""Admission control: how many images one worker works on at once, and how many may wait.

Checking, editing, stamping and enrolling an image is CPU work measured in seconds for a large
image; without a bound, a few large uploads take every core and a small check waits behind them
for as long as they keep coming (a 512² check waited 15.8 s behind one 9 MP palette PNG). Each
worker admits ``GUARD_API_MAX_CONCURRENT_IMAGES`` at a time and lets ``GUARD_API_ADMISSION_QUEUE``
more wait; anyone past that is told to come back (503 ``busy`` with ``Retry-After``) at once,
which keeps every admitted request's wait bounded.

Routes take it as a dependency, after authentication (an unknown key never holds a slot):

    async def create_check(..., _admitted: Admitted) -> Any: ...
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, Request

from guard.api.auth import service_of
from guard.config import Settings
from guard.errors import RateLimited


class Busy(RateLimited):
    """Every slot and queue place of this worker is taken; retry after ``retry_after`` s.

    A :class:`RateLimited` so the problem handler sends its ``Retry-After``; a 503, not a 429,
    because no quota of the caller's was spent: the worker is full."""

    code = "busy"
    http_status = 503


class Admission:
    """One worker's slots and queue. Used from its event loop only, so plain counters do."""

    def __init__(self, slots: int, queue: int, retry_after_s: float) -> None:
        self._slots = asyncio.Semaphore(slots)
        self._capacity = slots + queue
        self._inside = 0  # working or waiting
        self._retry_after_s = retry_after_s

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission:
        return cls(
            settings.api_max_concurrent_images,
            settings.api_admission_queue,
            settings.api_admission_retry_after_s,
        )

    @asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        if self._inside >= self._capacity:
            raise Busy(
                "the service is working on as many images as it takes at once; retry shortly "
                "(GUARD_API_MAX_CONCURRENT_IMAGES, GUARD_API_ADMISSION_QUEUE)",
                retry_after=self._retry_after_s,
            )
        self._inside += 1
        try:
            async with self._slots:
                yield
        finally:
            self._inside -= 1


def admission_of(request: Request) -> Admission:
    """This app's admission, made on first use from its guard's settings."""
    state = request.app.state
    admission: Admission | None = getattr(state, "admission", None)
    if admission is None:
        admission = Admission.from_settings(service_of(request).guard.settings)
        state.admission = admission
    return admission


async def admit(request: Request) -> AsyncIterator[None]:
    async with admission_of(request).admitted():
        yield


Admitted = Annotated[None, Depends(admit)]
