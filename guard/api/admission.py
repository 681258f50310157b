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
*large*, and large requests may hold at most ``slots - 1`` slots and half the queue. Whatever
stream of large images arrives, at least one slot (with two or more slots, the default) and half
the queue stay for small requests, which wait only behind other small ones. With a single slot
a large request takes it, and a small one waits for at most that one.

One :class:`Admission` per process is the budget: the service and ext_proc share theirs through
:class:`~guard.api.service.Service`; a ``GuardMiddleware`` builds its own from its guard's
settings (an app that also mounts the service holds both budgets).

The gate is thread-safe and blocking, because every caller already does its image work on a
worker thread: the HTTP routes (inside ``run_in_threadpool``), the gateway flow (ext_authz,
``GuardMiddleware``) and the ext_proc gRPC streams. A caller wraps exactly the image work:

    with service.admission.admitted(image_bytes):
        decision = guard.check(...)

or hands the work to it: ``run_in_threadpool(admission.run, [data], guard.check, request)``.
"""

from __future__ import annotations

import threading
from collections import deque
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
        self._queues: dict[bool, deque[object]] = {False: deque(), True: deque()}

    @classmethod
    def from_settings(cls, settings: Settings) -> Admission:
        return cls(
            settings.api_max_concurrent_images,
            settings.api_admission_queue,
            large_image_pixels=settings.api_large_image_pixels,
            retry_after_s=settings.api_admission_retry_after_s,
        )

    def is_large(self, images: tuple[bytes | None, ...]) -> bool:
        """Whether the images together declare more pixels than a small request may have
        (the sum: eight images just under the limit cost eight times one). An unreadable
        header counts as nothing: decoding refuses it before any real work."""
        return sum(header_pixels(i) for i in images if i) > self.large_image_pixels

    @contextmanager
    def admitted(self, *images: bytes | None, queue_full_ok: bool = False) -> Iterator[None]:
        """Hold a slot for the work on ``images`` (waiting in the queue for one if need be),
        or raise :class:`Busy` at once when this request's share of the queue is full too.

        A request without images (a prompt-only check) takes no slot: it costs milliseconds.
        ``queue_full_ok`` is for work that belongs to a request already admitted once (the
        gateway stamping what the upstream made for it): it waits its turn even past the
        queue's size, since refusing it would throw the upstream's work away. Waiters of one
        kind (small, large) are served in arrival order; a newcomer never overtakes them."""
        if not any(images):
            yield
            return
        large = self.is_large(images)
        turn = object()
        with self._changed:
            if self._queues[large] or not self._may_work(large):
                if not queue_full_ok and not self._may_wait(large):
                    raise Busy(
                        "the service is working on as many images as it takes at once; retry "
                        "shortly (GUARD_API_MAX_CONCURRENT_IMAGES, GUARD_API_ADMISSION_QUEUE"
                        + (", GUARD_API_LARGE_IMAGE_PIXELS)" if large else ")"),
                        retry_after=self.retry_after_s,
                    )
                queue = self._queues[large]
                queue.append(turn)
                try:
                    self._changed.wait_for(lambda: queue[0] is turn and self._may_work(large))
                finally:
                    queue.remove(turn)
                    self._changed.notify_all()  # the next in line may go now
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
        if sum(len(q) for q in self._queues.values()) >= self.queue:
            return False
        return not large or len(self._queues[True]) < self.large_queue
