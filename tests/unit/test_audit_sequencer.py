"""The group-commit sequencer on its own (no database): who leads, what a batch holds, who gets
which result or error, and that a failed batch leaves the next one working."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import pytest

from guard.audit.sequencer import BatchLimits, Sequencer
from guard.errors import Unavailable


class Recorder:
    """A commit that waits ``before`` seconds (starting a transaction, waiting for a lock), then
    takes its batch and records it, takes ``delay`` seconds more, and raises ``poison[item]``
    for a batch holding that item (or ``early`` before taking anything)."""

    def __init__(
        self,
        delay: float = 0.0,
        poison: dict[int, BaseException] | None = None,
        before: float = 0.0,
    ) -> None:
        self.delay = delay
        self.before = before
        self.poison = poison or {}
        self.early: BaseException | None = None
        self.batches: list[list[int]] = []
        self.failed: list[list[int]] = []
        self._lock = threading.Lock()
        self.running = 0
        self.most_at_once = 0

    def __call__(self, take: Callable[[], list[int]]) -> list[str]:
        with self._lock:
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            time.sleep(self.before)
            if self.early is not None:
                raise self.early
            items = take()
            time.sleep(self.delay)
            for item in items:
                if item in self.poison:
                    self.failed.append(list(items))
                    raise self.poison[item]
            self.batches.append(list(items))
            return [f"receipt {item}" for item in items]
        finally:
            with self._lock:
                self.running -= 1


def submit_all(sequencer: Sequencer[int, str], items: Sequence[int]) -> list[object]:
    """Submit every item from its own thread, started together; results or raised errors."""
    start = threading.Barrier(len(items))

    def one(item: int) -> object:
        start.wait()
        try:
            return sequencer.submit(item)
        except BaseException as exc:
            return exc

    with ThreadPoolExecutor(len(items)) as pool:
        return list(pool.map(one, items))


def test_a_lone_caller_is_a_batch_of_one() -> None:
    commit = Recorder()
    sequencer = Sequencer(commit, BatchLimits())
    assert [sequencer.submit(i) for i in range(3)] == ["receipt 0", "receipt 1", "receipt 2"]
    assert commit.batches == [[0], [1], [2]]


def test_concurrent_callers_share_batches_and_each_gets_its_own_result() -> None:
    commit = Recorder(delay=0.02)
    sequencer = Sequencer(commit, BatchLimits())
    results = submit_all(sequencer, list(range(16)))
    assert results == [f"receipt {i}" for i in range(16)]
    assert sorted(item for batch in commit.batches for item in batch) == list(range(16))
    assert len(commit.batches) < 16  # while one batch commits, the others queue for the next
    assert commit.most_at_once == 1  # one leader at a time


def test_a_batch_never_exceeds_its_cap() -> None:
    commit = Recorder(delay=0.02)
    sequencer = Sequencer(commit, BatchLimits(max_entries=3))
    assert submit_all(sequencer, list(range(12))) == [f"receipt {i}" for i in range(12)]
    assert max(len(batch) for batch in commit.batches) <= 3


def queued_behind_a_slow_batch(sequencer: Sequencer[int, str], items: list[int]) -> list[object]:
    """Submit ``items`` together while another caller's batch commits, so they queue for the
    next batch together."""
    holder = threading.Thread(target=sequencer.submit, args=(100,))
    holder.start()
    time.sleep(0.02)
    results = submit_all(sequencer, items)
    holder.join()
    return results


def test_a_failed_batch_hands_every_caller_the_error_and_the_next_batch_works() -> None:
    failure = Unavailable("the database is unavailable")
    commit = Recorder(delay=0.2, poison={3: failure})
    sequencer = Sequencer(commit, BatchLimits())
    results = queued_behind_a_slow_batch(sequencer, list(range(8)))
    failed = {i for i, r in enumerate(results) if r is failure}
    assert commit.failed and failed == set(commit.failed[0]) and 3 in failed
    assert len(failed) > 1  # every caller of the batch, not only the one whose entry failed
    assert all(r == f"receipt {i}" for i, r in enumerate(results) if i not in failed)
    stored = {item for batch in commit.batches for item in batch}
    assert not stored & failed  # nothing of it is kept
    commit.poison.clear()
    assert sequencer.submit(9) == "receipt 9"
    assert sequencer.submit(3) == "receipt 3"


def test_an_interrupted_leader_fails_its_batch_closed() -> None:
    commit = Recorder(delay=0.2)
    sequencer = Sequencer(commit, BatchLimits())
    commit.poison = {2: KeyboardInterrupt()}
    results = queued_behind_a_slow_batch(sequencer, list(range(4)))
    batch = commit.failed[0]
    leader, others = batch[0], batch[1:]
    assert isinstance(results[leader], KeyboardInterrupt)  # its own thread is interrupted
    assert others and all(isinstance(results[i], Unavailable) for i in others)  # fail closed
    commit.poison.clear()
    assert sequencer.submit(5) == "receipt 5"


def test_a_leader_may_wait_to_fill_its_batch() -> None:
    commit = Recorder()
    sequencer = Sequencer(commit, BatchLimits(max_entries=4, max_wait_ms=100.0))
    assert submit_all(sequencer, list(range(8))) == [f"receipt {i}" for i in range(8)]
    assert len(commit.batches) <= 3  # without waiting, instant commits would be 8 batches
    started = time.perf_counter()
    assert sequencer.submit(8) == "receipt 8"  # alone: waits at most max_wait_ms
    assert time.perf_counter() - started < 1.0


def test_the_batch_is_taken_once_the_transaction_has_started() -> None:
    """Callers arriving while the leader starts its transaction (or waits for the lock) join
    its batch: sixteen callers released together make one or two batches, not a batch of one
    followed by one of fifteen."""
    commit = Recorder(before=0.05)
    sequencer = Sequencer(commit, BatchLimits())
    assert submit_all(sequencer, list(range(16))) == [f"receipt {i}" for i in range(16)]
    assert len(commit.batches) <= 2 and max(map(len, commit.batches)) >= 15, commit.batches


def test_a_commit_that_fails_before_taking_fails_everyone_queued_once() -> None:
    """A leader that waited out the lock timeout fails the callers that queued meanwhile with
    it: each waits for one failure, not for the leader's and then its own."""
    commit = Recorder(before=0.2)
    commit.early = Unavailable("a lock was held past the lock timeout")
    sequencer = Sequencer(commit, BatchLimits())
    started = time.perf_counter()
    results = submit_all(sequencer, list(range(8)))
    assert all(r is commit.early for r in results)
    assert time.perf_counter() - started < 0.2 * 3  # one or two waits, never eight
    commit.early = None
    commit.before = 0.0
    assert sequencer.submit(8) == "receipt 8"


@pytest.mark.parametrize(("entries", "wait"), [(0, 0.0), (4097, 0.0), (1, -1.0), (1, 100.5)])
def test_limits_are_bounded(entries: int, wait: float) -> None:
    with pytest.raises(ValueError):
        BatchLimits(max_entries=entries, max_wait_ms=wait)
