"""Cost of the 128-d face descriptor: dlib-bin's ResNet (the baseline) against the same network
run by ``guard.faces.dlib_resnet`` with NumPy/OpenBLAS.

Prints Markdown tables: per-face milliseconds (p50) at batch 1 and 6, with OpenBLAS limited to 1
and to 2 threads, as a ratio to dlib measured in the same run and process; and the time to load
the weights. dlib-bin has no BLAS, so its thread setting changes nothing but the conditions.
The chips are the six faces of insightface's t1.jpg (HOG detector, 5-point landmarks,
``get_face_chip(image, shape, 150, 0.25)``, as the dlib engine makes them); dlib and the NumPy
pass alternate chip by chip, so a load that comes and goes falls on both alike.

The thread count is set with threadpoolctl when it is installed, otherwise through
``OPENBLAS_NUM_THREADS`` in a subprocess per setting (OpenBLAS reads it once, at import).

Usage: ``python bench/descriptor.py [--repeats N]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

THREADS = (1, 2)
BATCH = 6


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _chips() -> tuple[Any, str, np.ndarray]:
    from guard.faces.dlib_weights import import_dlib
    from guard.samples import sample_rgb

    dlib, weights = import_dlib()
    image = sample_rgb("t1")
    detector = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(weights.pose_predictor_five_point_model_location())
    rects, _, _ = detector.run(image, 0, 0.0)
    chips = [np.asarray(dlib.get_face_chip(image, shapes(image, r), 150, 0.25)) for r in rects]
    if len(chips) < BATCH:
        raise SystemExit(f"expected {BATCH} faces in t1.jpg, found {len(chips)}")
    return dlib, weights.face_recognition_model_location(), np.stack(chips[:BATCH])


def _timed(call: Callable[[], object]) -> float:
    start = time.perf_counter()
    call()
    return (time.perf_counter() - start) * 1000


def measure(threads: int, repeats: int) -> dict[str, Any]:
    """Per-face ms samples for dlib and the NumPy pass at batch 1 and 6, and load times."""
    from guard.faces.dlib_resnet import ResNetDescriptor

    dlib, path, chips = _chips()
    model = dlib.face_recognition_model_v1(path)
    ours = ResNetDescriptor.from_file(path)
    batch_list = list(chips)
    reference = np.array(model.compute_face_descriptor(batch_list))
    difference = float(np.abs(ours.compute(chips) - reference).max())  # also warms up

    samples: dict[str, list[float]] = {k: [] for k in ("dlib/1", "ours/1", "dlib/6", "ours/6")}
    for _ in range(repeats):
        for chip in chips:
            samples["dlib/1"].append(_timed(lambda c=chip: model.compute_face_descriptor(c)))
            samples["ours/1"].append(_timed(lambda c=chip: ours.compute(c[None])))
        samples["dlib/6"].append(_timed(lambda: model.compute_face_descriptor(batch_list)) / BATCH)
        samples["ours/6"].append(_timed(lambda: ours.compute(chips)) / BATCH)

    loads: dict[str, list[float]] = {"dlib": [], "ours": []}
    for _ in range(5):
        loads["dlib"].append(_timed(lambda: dlib.face_recognition_model_v1(path)))
        loads["ours"].append(_timed(lambda: ResNetDescriptor.from_file(path)))
    return {
        "threads": threads,
        "samples": samples,
        "loads": loads,
        "max_abs_difference": difference,
        "dlib": dlib.__version__,
    }


def _in_subprocess(threads: int, repeats: int) -> dict[str, Any]:
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    command = [sys.executable, __file__, "--worker", str(threads), "--repeats", str(repeats)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _run(threads: int, repeats: int) -> tuple[dict[str, Any], str]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return _in_subprocess(threads, repeats), "OPENBLAS_NUM_THREADS in a subprocess"
    with threadpool_limits(limits=threads, user_api="blas"):
        return measure(threads, repeats), "threadpoolctl"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="rounds over the six chips")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print(json.dumps(measure(args.worker, args.repeats)))
        return

    load_before = os.getloadavg()
    results = []
    for threads in THREADS:
        result, how = _run(threads, args.repeats)
        results.append(result)
    load_after = os.getloadavg()

    print(
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"dlib-bin {results[0]['dlib']}, numpy {np.__version__}, "
        f"Python {platform.python_version()}; BLAS threads set by {how}"
    )
    print(
        f"load average (1/5/15 min) before {', '.join(f'{v:.2f}' for v in load_before)}, "
        f"after {', '.join(f'{v:.2f}' for v in load_after)}; "
        f"{args.repeats} rounds of the {BATCH} faces of t1.jpg per row; ratio: p50 over "
        "dlib's p50 in the same process"
    )
    print()
    print("| descriptor | BLAS threads | batch | p50 ms/face | p90 | faces/s | ratio to dlib |")
    print("|---|---|---|---|---|---|---|")
    for result in results:
        samples = result["samples"]
        for batch in (1, BATCH):
            baseline = statistics.median(samples[f"dlib/{batch}"])
            for key, name in (("dlib", "dlib-bin (baseline)"), ("ours", "dlib_resnet (NumPy)")):
                values = samples[f"{key}/{batch}"]
                p50 = statistics.median(values)
                print(
                    f"| {name} | {result['threads']} | {batch} | {p50:.1f} | "
                    f"{_percentile(values, 0.9):.1f} | {1000 / p50:.0f} | {p50 / baseline:.2f} |"
                )
    print()
    print("| load the weights | p50 ms | ratio to dlib |")
    print("|---|---|---|")
    loads = results[0]["loads"]
    dlib_load = statistics.median(loads["dlib"])
    print(f"| dlib.face_recognition_model_v1 (baseline) | {dlib_load:.0f} | 1.00 |")
    ours_load = statistics.median(loads["ours"])
    print(f"| ResNetDescriptor.from_file | {ours_load:.0f} | {ours_load / dlib_load:.2f} |")
    print()
    worst = max(r["max_abs_difference"] for r in results)
    print(f"max abs difference from dlib's descriptors over these chips: {worst:.2g}")


if __name__ == "__main__":
    main()
