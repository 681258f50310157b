"""The cost budget under abuse: a 512² one-face check alone, and while a stream of
maximum-size images (6000x6000 palette PNGs, 36 MP from 36 KB) is checked in parallel.

``guard serve`` (1 worker, default admission: 2 images at once, 4 waiting) runs as a subprocess,
as in bench/service.py. The table gives the small check's p50/p99 alone and under the stream,
their ratio, how many small checks were told ``busy`` (503, retried after ``Retry-After``, the
wait counted in the latency), and the worker's peak RSS (VmHWM). Same 2 cores for client and
server: figures are a floor.

Usage: ``python bench/budget.py [--checks 20] [--streams 2]``
"""

from __future__ import annotations

import argparse
import io
import platform
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from service import Server, prepare  # bench/ is a folder of scripts, not a package

CHECK = "/v1/checks"
PARAMS = {"params": '{"operation": "relight"}'}


def max_size_png(side: int = 6000) -> bytes:
    """A flat palette PNG under the 40 MP cap: tiny on the wire, 108 MB as RGB."""
    image = Image.new("P", (side, side), 0)
    image.putpalette([i % 256 for i in range(768)])
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def timed_check(
    client: httpx.Client, files: dict[str, tuple[str, bytes, str]]
) -> tuple[float, int]:
    """Seconds until the check was decided (busy answers retried after Retry-After), and how
    many busy answers it took."""
    start, busy = time.perf_counter(), 0
    while True:
        response = client.post(CHECK, data=PARAMS, files=files)
        if response.status_code != 503 or response.json().get("code") != "busy":
            return time.perf_counter() - start, busy
        busy += 1
        time.sleep(float(response.headers.get("retry-after", "1")))


def quantiles(seconds: list[float]) -> tuple[float, float]:
    ordered = sorted(seconds)
    return statistics.median(ordered) * 1000, ordered[
        min(len(ordered) - 1, int(0.99 * len(ordered)))
    ] * 1000


def peak_rss_mb(pid: int) -> float:
    """The largest VmHWM of the server process and its children (uvicorn workers)."""
    pids = {str(pid)}
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        pids.update(children.read_text().split())
    peaks = []
    for each in pids:
        try:
            lines = Path(f"/proc/{each}/status").read_text().splitlines()
        except OSError:
            continue
        peaks += [int(line.split()[1]) / 1024 for line in lines if line.startswith("VmHWM:")]
    return max(peaks, default=0.0)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checks", type=int, default=20)
    parser.add_argument("--streams", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        settings, token, photo, _ = prepare(Path(folder))
        small = {"image": ("astronaut.png", photo, "image/png")}
        large = {"image": ("max.png", max_size_png(), "image/png")}
        server = Server(settings.data_dir, 1, {})
        headers = {"Authorization": f"Bearer {token}"}
        try:
            with httpx.Client(base_url=server.url, headers=headers, timeout=600) as client:
                for _ in range(3):
                    timed_check(client, small)  # warm the worker
                alone = [timed_check(client, small)[0] for _ in range(args.checks)]
                rss_alone = peak_rss_mb(server.process.pid)

                stop = threading.Event()
                large_done: list[float] = []

                def stream() -> None:
                    with httpx.Client(base_url=server.url, headers=headers, timeout=600) as c:
                        while not stop.is_set():
                            large_done.append(timed_check(c, large)[0])

                streams = [threading.Thread(target=stream) for _ in range(args.streams)]
                for thread in streams:
                    thread.start()
                time.sleep(2.0)  # the stream is in flight
                loaded, busy = [], 0
                for _ in range(args.checks):
                    seconds, refused = timed_check(client, small)
                    loaded.append(seconds)
                    busy += refused
                stop.set()
                for thread in streams:
                    thread.join()
                rss_loaded = peak_rss_mb(server.process.pid)
        finally:
            server.stop()
    alone_p50, alone_p99 = quantiles(alone)
    loaded_p50, loaded_p99 = quantiles(loaded)
    large_p50, _ = quantiles(large_done or [0.0])
    print(f"{platform.processor() or platform.machine()}, {datetime.now(UTC):%Y-%m-%d}")
    print("| case | p50 ms | p99 ms | busy answers | worker peak RSS MB |")
    print("|---|---|---|---|---|")
    print(f"| 512² check alone | {alone_p50:.0f} | {alone_p99:.0f} | 0 | {rss_alone:.0f} |")
    print(
        f"| 512² check, {args.streams} streams of 6000² in parallel | {loaded_p50:.0f} | "
        f"{loaded_p99:.0f} | {busy} | {rss_loaded:.0f} |"
    )
    print(
        f"| ratio under load / alone | {loaded_p50 / alone_p50:.1f}x | "
        f"{loaded_p99 / alone_p99:.1f}x | | |"
    )
    print(f"| 6000² check ({len(large_done)} done) | {large_p50:.0f} | | | |")


if __name__ == "__main__":
    main()
