"""Admission control: how many images one worker works on at once, how many may wait, and
how much of that large images may take.

Checking, editing, stamping and enrolling an image is CPU work measured in seconds for a large
image; without a bound, a few large uploads take every core and a small check waits behind them
for as long as they keep coming (a 512² check waited 15.8 s behind one 9 MP palette PNG). Each
worker admits ``GUARD_API_MAX_CONCURRENT_IMAGES`` requests at a time and lets
``GUARD_API_ADMISSION_QUEUE`` more wait; anyone past that is told to come back (503 ``busy``
with ``Retry-After``) at once, which keeps every admitted request's wait bounded.

Counting requests is not enough: two maximum-size images holding both slots keep a 512² check
waiting for a whole large check. So requests are weighed by their pixels, read from the image
headers before any decoding: one whose largest image is over ``GUARD_API_LARGE_IMAGE_PIXELS`` is
*large*, and large requests may hold at most ``slots - 1`` slots (one, if there is only one
slot) and half the queue. Whatever stream of large images arrives, at least one slot and half
the queue stay for small requests, which wait only behind other small ones.

The gate is thread-safe and blocking, because every caller already does its image work on a
worker thread: the HTTP routes (inside ``run_in_threadpool``), the gateway flow (ext_authz,
``GuardMiddleware``) and the ext_proc gRPC streams. A caller wraps exactly the image work:

    with service.admission.admitted(image_bytes):
        decision = guard.check(...)

or hands the work to it: ``run_in_threadpool(admission.run, [data], guard.check, request)``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from guard.config import Settings
from guard.errors import RateLimited
from guard.media import header_pixels

P = ParamSpec("P")
T = TypeVar("T")


class Busy(RateLimited):
    """Every slot and queue place this request may take is taken; retry after ``retry_after``.

    A :class:`RateLimited` so the problem handler sends its ``Retry-After``; a 503, not a 429,
    because no quota of the caller's was spent: the worker is full."""

    code = "busy"
    http_status = 503


class Admission:
    """One worker's slots and queue, shared by its threads."""

    def __init__(
        self,
        slots: int,
        queue: int,
        *,
        large_image_pixels: int = 2_000_000,
        retry_after_s: float = 1.0,
    ) -> None:
        if slots < 1 or queue < 0:
            raise ValueError("admission needs at least one slot and a queue of 0 or more")
        self.slots = slots
        self.queue = queue
        self.large_image_pixels = large_image_pixels
        self.large_slots = max(1, slots - 1)
        self.large_queue = queue // 2
        self.retry_after_s = retry_after_s
        self._changed = threading.Condition()
        self._working = {False: 0, True: 0}  # by "is large"
        self._waiting = {False: 0, True: 0}

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission:
        return cls(
            settings.api_max_concurrent_images,
            settings.api_admission_queue,
            large_image_pixels=settings.api_large_image_pixels,
            retry_after_s=settings.api_admission_retry_after_s,
        )

    def is_large(self, images: tuple[bytes | None, ...]) -> bool:
        """Whether the largest image declares more pixels than a small request may have.
        An unreadable header counts as small: decoding refuses it before any real work."""
        return max((header_pixels(i) for i in images if i), default=0) > self.large_image_pixels

    @contextmanager
    def admitted(self, *images: bytes | None) -> Iterator[None]:
        """Hold a slot for the work on ``images`` (waiting in the queue for one if need be),
        or raise :class:`Busy` at once when this request's share of the queue is full too."""
        large = self.is_large(images)
        with self._changed:
            if not self._may_work(large):
                if not self._may_wait(large):
                    raise Busy(
                        "the service is working on as many images as it takes at once; retry "
                        "shortly (GUARD_API_MAX_CONCURRENT_IMAGES, GUARD_API_ADMISSION_QUEUE"
                        + (", GUARD_API_LARGE_IMAGE_PIXELS)" if large else ")"),
                        retry_after=self.retry_after_s,
                    )
                self._waiting[large] += 1
                try:
                    self._changed.wait_for(lambda: self._may_work(large))
                finally:
                    self._waiting[large] -= 1
            self._working[large] += 1
        try:
            yield
        finally:
            with self._changed:
                self._working[large] -= 1
                self._changed.notify_all()

    def run(
        self,
        images: Sequence[bytes | None],
        work: Callable[P, T],
        /,
        *args: P.args,
        **kwargs: P.kwargs,
    ) -> T:
        """``work(*args, **kwargs)`` inside :meth:`admitted` for ``images``: what a route
        hands to ``run_in_threadpool``."""
        with self.admitted(*images):
            return work(*args, **kwargs)

    def _may_work(self, large: bool) -> bool:
        if sum(self._working.values()) >= self.slots:
            return False
        return not large or self._working[True] < self.large_slots

    def _may_wait(self, large: bool) -> bool:
        if sum(self._waiting.values()) >= self.queue:
            return False
        return not large or self._waiting[True] < self.large_queue
