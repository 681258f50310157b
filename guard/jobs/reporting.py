"""What a job's run tells its job while it runs: phases and steps (each write also asks
whether to stop), and its lease, renewed from a thread for as long as the run lasts."""

from __future__ import annotations

import threading
import time

from guard.errors import GuardError, Unavailable
from guard.jobs.records import Claim
from guard.jobs.store import JobStore
from guard.requests import EditPhase

PROGRESS_EVERY_S = 0.25  # steps are written (and cancellation looked for) at most this often


class JobStopped(GuardError):
    """The run stopped between steps: its job was cancelled, or another run owns it now."""

    code = "job_stopped"
    http_status = 409


class RunReporter:
    """A run's phase and step callbacks, written to the job (steps at most every
    :data:`PROGRESS_EVERY_S`), and, while it is entered, its lease renewed from a thread (an
    editor may spend longer than a lease on one step). Each write also asks whether the run
    should stop; the next callback stops it."""

    def __init__(self, store: JobStore, claim: Claim) -> None:
        self._store, self._claim = store, claim
        self._last = 0.0
        self._stop = threading.Event()
        self._lost = False
        self._renewal = threading.Thread(target=self._renew, name="guard job lease", daemon=True)

    def __enter__(self) -> RunReporter:
        self._renewal.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._renewal.join()

    def phase(self, name: EditPhase) -> None:
        self._stop_if(self._store.report(self._claim, phase=name))

    def progress(self, done: int, total: int) -> None:
        now = time.monotonic()
        if now - self._last < PROGRESS_EVERY_S:
            self._stop_if(False)
            return
        self._last = now
        self._stop_if(self._store.report(self._claim, done=done, total=total))

    def _stop_if(self, stop: bool) -> None:
        if stop or self._lost:
            raise JobStopped(f"job {self._claim.job_id} stops")

    def _renew(self) -> None:
        every = self._store.lease.total_seconds() / 4
        while not self._stop.wait(every):
            try:
                self._lost = self._store.report(self._claim) or self._lost
            except Unavailable:
                continue  # if this lasts, the lease runs out and another run may take over
