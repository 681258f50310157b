"""How much a process's resident memory grows while a block runs, sampled from /proc."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path


def resident_bytes(pid: str = "self") -> int:
    """VmRSS of ``pid`` (this process by default), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("/proc does not report VmRSS")


@dataclass
class Growth:
    before: int = 0
    peak: int = 0

    @property
    def peak_growth_mb(self) -> float:
        return (self.peak - self.before) / 2**20


@contextmanager
def resident_growth(pid: str = "self", every_s: float = 0.02) -> Iterator[Growth]:
    """Sample ``pid``'s resident memory every ``every_s`` while the block runs; the yielded
    :class:`Growth` holds the value before and the highest seen."""
    growth = Growth(before=resident_bytes(pid))
    growth.peak = growth.before
    done = threading.Event()

    def sample() -> None:
        while not done.wait(every_s):
            growth.peak = max(growth.peak, resident_bytes(pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        yield growth
    finally:
        done.set()
        sampler.join()
        growth.peak = max(growth.peak, resident_bytes(pid))
