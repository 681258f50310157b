"""Admission control weighs requests by the pixels their headers declare: large requests hold at
most all slots but one and half the queue, so a stream of large images never keeps a small
request waiting behind them (docs/service.md, Cost budget)."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from PIL import Image, PngImagePlugin

from guard.api.admission import Admission, Busy
from guard.media import header_pixels


def png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("P", (width, height), 0).save(buffer, "PNG")
    return buffer.getvalue()


SMALL = png(512, 512)
LARGE = png(2000, 1500)  # 3 MP: over the 2 MP default


@contextmanager
def holding(admission: Admission, *images: bytes | None) -> Iterator[list[threading.Event]]:
    """A thread per image, started in order, each holding a place for its image until the
    block ends (waiting for a slot if it must); yields the events each sets once it works."""
    release = threading.Event()
    working = [threading.Event() for _ in images]

    def hold(image: bytes | None, started: threading.Event) -> None:
        with admission.admitted(image):
            started.set()
            release.wait(10)

    threads = [
        threading.Thread(target=hold, args=(image, started))
        for image, started in zip(images, working, strict=True)
    ]
    for thread in threads:
        thread.start()
    try:
        yield working
    finally:
        release.set()
        for thread in threads:
            thread.join(10)


def wait_until(condition: object, seconds: float = 5.0) -> None:
    event = threading.Event()
    for _ in range(int(seconds / 0.01)):
        if callable(condition) and condition():
            return
        event.wait(0.01)
    raise AssertionError("timed out")


def test_header_pixels_read_without_decoding() -> None:
    assert header_pixels(LARGE) == 3_000_000
    assert header_pixels(png(6000, 6000)) == 36_000_000  # 36 MP from a file of a few KB
    assert header_pixels(b"not an image") == 0
    assert header_pixels(b"") == 0


def test_a_png_size_comes_from_its_ihdr_without_opening_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Pillow's opener inflates compressed text chunks before the pixels; a crafted PNG would
    make the header read cost real work before admission."""
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "A" * 8_000_000, zip=True)
    buffer = io.BytesIO()
    Image.new("RGB", (300, 200)).save(buffer, "PNG", pnginfo=info)
    monkeypatch.setattr(Image, "open", lambda *a, **k: pytest.fail("Image.open was called"))
    assert header_pixels(buffer.getvalue()) == 60_000


def test_past_the_slots_and_the_queue_a_request_is_refused_at_once() -> None:
    admission = Admission(slots=1, queue=1, retry_after_s=2.0)
    with holding(admission, SMALL, SMALL) as (working, _):
        assert working.wait(5)
        wait_until(lambda: len(admission._queues[False]) == 1)
        with pytest.raises(Busy) as refused, admission.admitted(SMALL):
            pass
    assert (refused.value.http_status, refused.value.code) == (503, "busy")
    assert refused.value.retry_after == 2.0
    with admission.admitted(SMALL):  # every place is free again
        pass


def test_large_requests_leave_a_slot_and_half_the_queue_to_small_ones() -> None:
    admission = Admission(slots=2, queue=4, large_image_pixels=2_000_000)
    assert (admission.large_slots, admission.large_queue) == (1, 2)
    with holding(admission, LARGE, LARGE, LARGE) as (first, *_):
        assert first.wait(5)
        wait_until(lambda: len(admission._queues[True]) == 2)
        with pytest.raises(Busy), admission.admitted(LARGE):  # the large share is full
            pass
        done = threading.Event()

        def small_check() -> None:
            with admission.admitted(SMALL):
                done.set()

        thread = threading.Thread(target=small_check)
        thread.start()
        assert done.wait(5), "a small request waited behind large ones"
        thread.join()


def test_a_request_is_as_large_as_its_images_together() -> None:
    admission = Admission(slots=2, queue=0, large_image_pixels=2_000_000)
    with holding(admission, LARGE) as (working,):
        assert working.wait(5)
        # a small image next to a large one is a large request
        with pytest.raises(Busy), admission.admitted(SMALL, LARGE):
            pass
        # eight images just under the limit are eight times the work of one
        with pytest.raises(Busy), admission.admitted(*[png(1400, 1400)] * 8):
            pass
        with admission.admitted(SMALL, None):  # a prompt-only part weighs nothing
            pass


def test_a_request_without_images_takes_no_slot() -> None:
    admission = Admission(slots=1, queue=0)
    with holding(admission, SMALL) as (working,):
        assert working.wait(5)
        with admission.admitted(None):  # a prompt-only check is not refused as busy
            pass
        with pytest.raises(Busy), admission.admitted(SMALL):
            pass


def test_work_for_an_admitted_request_waits_past_the_queue() -> None:
    admission = Admission(slots=1, queue=0)
    done = threading.Event()
    with holding(admission, SMALL) as (working,):
        assert working.wait(5)

        def stamp_the_answer() -> None:
            with admission.admitted(SMALL, queue_full_ok=True):
                done.set()

        thread = threading.Thread(target=stamp_the_answer)
        thread.start()
        assert not done.wait(0.2)  # it waits for the slot instead of being refused
    thread.join(5)
    assert done.is_set()


def test_newcomers_do_not_overtake_waiters() -> None:
    admission = Admission(slots=1, queue=4)
    order: list[str] = []
    with holding(admission, SMALL) as (working,):
        assert working.wait(5)
        threads = []
        for waiting, name in enumerate(("first", "second", "third"), start=1):
            thread = threading.Thread(target=admission.run, args=([SMALL], order.append, name))
            thread.start()
            threads.append(thread)
            wait_until(lambda w=waiting: len(admission._queues[False]) == w)
    for thread in threads:
        thread.join(5)
    assert order == ["first", "second", "third"]


def test_one_slot_is_shared_and_waiters_are_admitted_in_turn() -> None:
    admission = Admission(slots=1, queue=2, large_image_pixels=2_000_000)
    assert (admission.large_slots, admission.large_queue) == (1, 1)
    order: list[str] = []
    with holding(admission, LARGE) as (working,):
        assert working.wait(5)
        threads = []
        for name, image in (("small", SMALL), ("large", LARGE)):
            thread = threading.Thread(
                target=lambda n=name, i=image: admission.run([i], order.append, n)
            )
            thread.start()
            threads.append(thread)
        wait_until(lambda: sum(map(len, admission._queues.values())) == 2)
        assert order == []
    for thread in threads:
        thread.join(5)
    assert sorted(order) == ["large", "small"]
    assert admission._working == {False: 0, True: 0}


def test_an_exception_in_the_work_frees_its_slot() -> None:
    admission = Admission(slots=1, queue=0)
    with pytest.raises(RuntimeError), admission.admitted(SMALL):
        raise RuntimeError("the work failed")
    with admission.admitted(SMALL):
        pass
