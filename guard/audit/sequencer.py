"""Group commit: many threads' appends share one transaction and one signed checkpoint.

A caller enqueues its item and blocks. One caller at a time is the *leader*: it opens the
batch's transaction and takes the append lock, and only then takes everything queued (up to
:attr:`BatchLimits.max_entries`), commits it as one batch, hands every caller in it its result
(or the batch's error), passes the lead to the oldest caller still queued and returns its own
result. Nothing waits on purpose by default: entries that arrive while a batch commits, or while
the next leader connects and waits for the lock (held by another process, say), all join the
next batch (natural batching: a lone caller pays one transaction and no delay, and callers that
arrive together share one). Taking the queue late is what keeps batches full: callers released
by one batch re-enqueue while the next leader is still starting its transaction, instead of the
first of them leading a batch of one. ``max_wait_ms`` lets a leader also wait that long for a
fuller batch before it starts: more entries per commit, that much latency added.

Results are handed out only after ``commit`` returned, i.e. after the transaction committed: a
caller never holds a receipt for an entry that is not stored. If ``commit`` raises, every
caller of that batch gets the same exception (if it raised before taking the batch, e.g. while
waiting for the lock, the batch is everything queued by then, so each caller waits for at most
one such failure), and the next batch starts afresh.

Only threads of one process meet here; processes serialise on the database's lock (see
:mod:`guard.audit.batch`).

    >>> sequencer = Sequencer(commit_batch, BatchLimits(max_entries=256))  # doctest: +SKIP
    >>> receipt = sequencer.submit(entry)                                  # doctest: +SKIP
"""

from __future__ import annotations

import os
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from guard.errors import Unavailable

Item = TypeVar("Item")
Result = TypeVar("Result")
# ``commit(take)``: start the transaction, call ``take()`` once for the batch's items (as late as
# possible), write them, commit, return one result per item in order.
Commit = Callable[[Callable[[], list[Item]]], Sequence[Result]]

MAX_BATCH_ENTRIES = 4096  # keeps one transaction's work and parameters bounded
MAX_BATCH_WAIT_MS = 100.0  # a leader never holds a request longer than this to fill a batch


@dataclass(frozen=True)
class BatchLimits:
    """How large a batch may grow and how long its leader may wait to fill it."""

    max_entries: int = 256
    max_wait_ms: float = 0.0

    def __post_init__(self) -> None:
        if not 1 <= self.max_entries <= MAX_BATCH_ENTRIES:
            raise ValueError(f"max_entries must be 1..{MAX_BATCH_ENTRIES}, not {self.max_entries}")
        if not 0.0 <= self.max_wait_ms <= MAX_BATCH_WAIT_MS:
            raise ValueError(f"max_wait_ms must be 0..{MAX_BATCH_WAIT_MS}, not {self.max_wait_ms}")


class _Ticket(Generic[Item, Result]):
    """One caller's place in the queue: its item, then its result or error."""

    __slots__ = ("done", "error", "item", "leads", "result", "wake")

    def __init__(self, item: Item) -> None:
        self.item = item
        self.wake = threading.Event()  # set when done, or when handed the lead
        self.leads = False
        self.done = False
        self.result: Result | None = None
        self.error: BaseException | None = None

    def outcome(self) -> Result:
        if self.error is not None:
            raise self.error
        assert self.done
        return self.result  # type: ignore[return-value]


class _Batch(Generic[Item, Result]):
    """The tickets one leader takes from the queue, once, when its commit asks for them."""

    def __init__(self, sequencer: Sequencer[Item, Result]) -> None:
        self._sequencer = sequencer
        self.tickets: list[_Ticket[Item, Result]] = []
        self._taken = False

    def take(self) -> list[Item]:
        if self._taken:
            raise RuntimeError("a batch is taken once")
        self._taken = True
        self.tickets = self._sequencer._pop()
        return [ticket.item for ticket in self.tickets]

    def taken(self) -> list[_Ticket[Item, Result]]:
        """The tickets, taking them now if the commit failed before it did: everything queued
        (the leader's own first), so its callers are answered by this failure rather than each
        waiting for one of its own (a held lock costs each caller one lock timeout, not two)."""
        if not self._taken:
            self.take()
        return self.tickets


class Sequencer(Generic[Item, Result]):
    """Callers' items batched into ``commit`` calls, one at a time, in arrival order.

    ``commit`` (see :data:`Commit`) must be all-or-nothing: one transaction."""

    def __init__(self, commit: Commit[Item, Result], limits: BatchLimits) -> None:
        self._commit = commit
        self.limits = limits
        self._reset()

    def _reset(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._arrived = threading.Condition(self._lock)
        self._queue: deque[_Ticket[Item, Result]] = deque()
        self._leading = False

    def submit(self, item: Item) -> Result:
        """Commit ``item`` in the next batch and return its result (or raise the batch's
        error)."""
        if self._pid != os.getpid():
            # A forked child inherits the parent's queue and lock state but none of its
            # threads: start empty, or it could wait for a leader that exists only there.
            self._reset()
        ticket: _Ticket[Item, Result] = _Ticket(item)
        with self._lock:
            self._queue.append(ticket)
            if self._leading:
                self._arrived.notify()
            else:
                self._leading = ticket.leads = True
        if not ticket.leads:
            ticket.wake.wait()
        if not ticket.done:  # handed the lead (or leading from the start)
            self._lead()
        return ticket.outcome()

    def _lead(self) -> None:
        """Commit one batch from the head of the queue (the leader's own ticket is its first),
        settle every ticket in it, then pass the lead on."""
        if self.limits.max_wait_ms > 0:
            with self._lock:  # before the transaction: no database lock is held while waiting
                self._arrived.wait_for(
                    lambda: len(self._queue) >= self.limits.max_entries,
                    timeout=self.limits.max_wait_ms / 1000,
                )
        batch = _Batch(self)
        try:
            results = self._commit(batch.take)
            if not batch.tickets or len(results) != len(batch.tickets):
                raise RuntimeError(f"a batch of {len(batch.tickets)} got {len(results)} results")
        except Exception as exc:
            self._settle(batch.taken(), error=exc)
        except BaseException as exc:  # e.g. KeyboardInterrupt in the leader: fail the others
            tickets = batch.taken()
            interrupted = Unavailable(f"the audit batch was interrupted: {exc!r}")
            self._settle(tickets[1:], error=interrupted)
            self._settle(tickets[:1], error=exc)
        else:
            for ticket, result in zip(batch.tickets, results, strict=True):
                ticket.result = result
            self._settle(batch.tickets)
        finally:
            self._pass_lead()

    def _pop(self) -> list[_Ticket[Item, Result]]:
        with self._lock:
            count = min(self.limits.max_entries, len(self._queue))
            return [self._queue.popleft() for _ in range(count)]

    @staticmethod
    def _settle(batch: Sequence[_Ticket[Item, Result]], error: BaseException | None = None) -> None:
        for ticket in batch:
            ticket.error = error
            ticket.done = True
            ticket.wake.set()

    def _pass_lead(self) -> None:
        with self._lock:
            if not self._queue:
                self._leading = False
                return
            successor = self._queue[0]
            successor.leads = True
        successor.wake.set()
