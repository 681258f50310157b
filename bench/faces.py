"""Per-stage cost of the identity gate, and blocklist query latency at scale.

Prints Markdown tables (paste them into docs/benchmarks.md):

1. decode, detect, embed, registry match and blocklist match at 512² and 1024², for the HOG and
   the CNN (MMOD) detectors with the default rotation sweep, as a ratio to the baseline of HOG
   on the upright image only.
2. blocklist query latency (one face, exact FAISS IndexFlatIP) at 10k and 1M random unit
   vectors, against the baseline of a brute-force NumPy matrix product over the same vectors.

Usage: ``python bench/faces.py [--quick]`` (``--quick`` uses 100k instead of 1M and fewer repeats).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from guard.bootstrap import initialise
from guard.config import Settings
from guard.devices import configure_faiss_threads
from guard.faces import Face, l2_normalise
from guard.faces.dlib_engine import DlibEngine
from guard.identity import Blocklist
from guard.media import decode_image, encode_image
from guard.pipeline import Guard
from guard.samples import sample_rgb

REGISTRY_TEMPLATES = 1_000


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def timed(function: Callable[[], object], repeats: int) -> tuple[float, float]:
    """Median and 99th percentile wall time in milliseconds."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(0.99 * len(samples)))]


def square_group_photo(side: int) -> bytes:
    t1 = sample_rgb("t1")
    height, width = t1.shape[:2]
    left = (width - height) // 2
    square = np.ascontiguousarray(t1[:, left : left + height])
    return encode_image(cv2.resize(square, (side, side), interpolation=cv2.INTER_AREA), "jpeg")


def random_faces(count: int, seed: int) -> list[Face]:
    vectors = np.random.default_rng(seed).normal(size=(count, 128))
    return [Face((0, 0, 1, 1), (), 1.0, l2_normalise(v), "dlib") for v in vectors]


def stage_row(
    engine: DlibEngine, data: bytes, guard: Guard, blocklist: Blocklist, runs: int
) -> tuple[int, list[float]]:
    """Face count and median ms of decode, detect, embed, registry and blocklist match."""
    rgb = decode_image(data).rgb
    detections = engine.detect(rgb)
    embeddings = [f.embedding for f in engine.embed(detections)]
    stages: list[Callable[[], object]] = [
        lambda: decode_image(data),
        lambda: engine.detect(rgb),
        lambda: engine.embed(detections),
        lambda: guard.registry.match(embeddings),
        lambda: blocklist.match(embeddings),
    ]
    return len(embeddings), [timed(stage, runs)[0] for stage in stages]


def stage_table(repeats: int) -> list[str]:
    rows = [
        "| image | detector | faces | decode ms | detect ms | embed ms | registry match ms "
        "| blocklist match ms | total ms | total vs baseline |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    with tempfile.TemporaryDirectory() as directory:
        settings = Settings(data_dir=Path(directory))
        # The baseline is HOG on the upright image only; the default adds two rotated passes.
        engines = {
            "hog, upright only (baseline)": DlibEngine(detector="hog", rotation_sweep=()),
            "hog + ±30° sweep (default)": DlibEngine(detector="hog"),
            "cnn + ±30° sweep": DlibEngine(detector="cnn"),
        }
        guard = Guard(settings, face_engine=engines["hog + ±30° sweep (default)"])
        initialise(settings, guard.face_engine)
        subject = guard.registry.create_subject("bench")
        guard.registry.enroll(subject.id, random_faces(REGISTRY_TEMPLATES, seed=1))
        blocklist = Blocklist.empty("dlib", 128)
        vectors = random_faces(10_000, seed=2)
        for first in range(0, len(vectors), 10):
            blocklist.add_figure(
                f"fig-{first}", "x", [f.embedding for f in vectors[first : first + 10]]
            )
        for side in (512, 1024):
            data = square_group_photo(side)
            hog_total = 0.0
            for kind, engine in engines.items():
                log(f"stages at {side}² with {kind}")
                runs = max(2, repeats // 5) if kind.startswith("cnn") else repeats
                count, ms = stage_row(engine, data, guard, blocklist, runs)
                total = sum(ms)
                hog_total = hog_total or total
                rows.append(
                    f"| t1 {side}² | {kind} | {count} | {ms[0]:.1f} | {ms[1]:.1f} | {ms[2]:.1f} | "
                    f"{ms[3]:.2f} | {ms[4]:.2f} | {total:.0f} | {total / hog_total:.1f}× |"
                )
        guard.close()
    return rows


def query_row(size: int, queries: int, rng: np.random.Generator) -> str:
    """Build a blocklist of ``size`` random vectors (10 per figure) and time single queries."""
    per_figure = 10
    matrix = rng.normal(size=(size, 128)).astype(np.float32)
    matrix /= np.linalg.norm(matrix, axis=1, keepdims=True)
    start = time.perf_counter()
    blocklist = Blocklist.empty("dlib", 128)
    for first in range(0, size, per_figure):
        blocklist.add_figure(f"fig-{first}", "x", list(matrix[first : first + per_figure]))
    build_s = time.perf_counter() - start
    members = rng.choice(size, queries, replace=False)
    noisy = matrix[members] + rng.normal(scale=0.02, size=(queries, 128)).astype(np.float32)
    probes = [l2_normalise(v) for v in noisy]
    faiss_probes, numpy_probes = iter(probes), iter(probes)
    faiss_p50, faiss_p99 = timed(lambda: blocklist.match([next(faiss_probes)]), queries)
    numpy_p50, _ = timed(lambda: int(np.argmax(matrix @ next(numpy_probes))), queries)
    hits = sum(
        blocklist.match([probe])[0][0].figure_id == f"fig-{(member // per_figure) * per_figure}"
        for probe, member in zip(probes, members, strict=True)
    )
    return (
        f"| {size:,} | {build_s:.1f} | {faiss_p50:.2f} | {faiss_p99:.2f} | {numpy_p50:.2f} | "
        f"{faiss_p50 / numpy_p50:.2f} | {hits / queries:.3f} |"
    )


def query_table(sizes: list[int], queries: int) -> list[str]:
    rows = [
        "| blocklist vectors | build s | FAISS p50 ms | FAISS p99 ms | NumPy baseline p50 ms "
        "| FAISS / baseline | top-1 recall |",
        "|---|---|---|---|---|---|---|",
    ]
    rng = np.random.default_rng(3)
    for size in sizes:
        log(f"blocklist of {size:,} random vectors")
        rows.append(query_row(size, queries, rng))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100k instead of 1M, fewer repeats")
    args = parser.parse_args()
    configure_faiss_threads(Settings().faiss_threads)
    repeats = 5 if args.quick else 15
    sizes = [10_000, 100_000] if args.quick else [10_000, 1_000_000]
    print(
        f"Machine: {platform.machine()}, {platform.processor() or 'cpu'}, "
        f"{__import__('os').cpu_count()} cores; {datetime.now(UTC):%Y-%m-%d}; "
        f"registry {REGISTRY_TEMPLATES:,} templates, stage blocklist 10,000 vectors\n"
    )
    print("\n".join(stage_table(repeats)))
    print()
    print("\n".join(query_table(sizes, queries=100 if args.quick else 300)))


if __name__ == "__main__":
    main()
