"""The cost of one ``Guard.check``, stage by stage, at 512², 1024² and 3 MP with 1 and 6 faces.

Configurations, each a real ``Guard`` (SQLite, default policy, NudeNet on, audit appended):

- **before** (the baseline, issue 18): every turned view of the whole image searched, the
  upright and both ±30° views upsampled, at a working side of 1280 — the face path up to
  2026-12-02 (an engine that ignores NudeNet's faces reproduces it exactly);
- **now**: the upright view at the working side, turned views only where NudeNet saw a face
  the upright search missed (``candidates``), descriptors from the numpy ResNet — the default;
  and the same at a working side of 640 (what the latency goal would cost: bench/faces.py
  shows the small faces it loses);
- the **raw dlib** floor the issue names: HOG upright without upsampling, landmarks and
  descriptor, no NudeNet, no policy, no audit.

Images: scikit-image's astronaut (one face) and insightface's t1.jpg (six faces), scaled to
each size (the faces grow with the image, as in a real photo taken at a higher resolution).
Prints p50 and p99 of the whole check and the p50 of each stage, and the ratio to "before".

Usage: ``python bench/check_path.py [--repeats 15]``
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from guard import CheckRequest, Guard
from guard.bootstrap import initialise
from guard.config import Settings
from guard.faces import BBox, Face, FaceEngine
from guard.faces.dlib_engine import DlibEngine
from guard.media import RGBImage, decode_image, encode_image
from guard.samples import sample_rgb

STAGES = ("decode", "nsfw", "faces", "unreadable", "match", "audit")


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class StageClock:
    """Collects the guard's stage timings (it reports them to an observer)."""

    def __init__(self) -> None:
        self.samples: dict[str, list[float]] = defaultdict(list)

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.samples[stage].append(seconds * 1000)

    def observe_decision(self, *args: Any, **kwargs: Any) -> None:
        del args, kwargs


class DlibDescriptor:
    """dlib-bin's own descriptor (no BLAS), as the engine used it before issue 18."""

    def __init__(self) -> None:
        from guard.faces import import_dlib

        dlib, weights = import_dlib()
        self._model = dlib.face_recognition_model_v1(weights.face_recognition_model_location())

    def compute(self, chips: NDArray[np.uint8]) -> NDArray[np.float32]:
        return np.array(self._model.compute_face_descriptor(list(chips)), np.float32)


class EverywhereEngine:
    """The face path before issue 18: every turned view of the whole image, always, and
    dlib-bin's descriptor."""

    def __init__(self, engine: DlibEngine) -> None:
        engine._descriptor = DlibDescriptor()  # type: ignore[assignment]
        self._engine = engine
        self.name = engine.name
        self.dimension = engine.dimension

    def detect_and_embed(
        self, rgb: RGBImage, *, candidates: Sequence[BBox] | None = None
    ) -> list[Face]:
        del candidates
        return self._engine.detect_and_embed(rgb)


def scaled(name: str, long_side: int) -> bytes:
    rgb = sample_rgb(name)  # type: ignore[arg-type]
    factor = long_side / max(rgb.shape[:2])
    size = (round(rgb.shape[1] * factor), round(rgb.shape[0] * factor))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return encode_image(cv2.resize(rgb, size, interpolation=interpolation), "jpeg")


CASES = {
    "512², 1 face": ("astronaut", 512),
    "1024², 1 face": ("astronaut", 1024),
    "3 MP, 1 face": ("astronaut", 1732),
    "1024×709, 6 faces": ("t1", 1024),
    "2080×1440 (3 MP), 6 faces": ("t1", 2080),
}


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def check_row(guard: Guard, clock: StageClock, data: bytes, repeats: int) -> list[float]:
    """p50, p99 of the whole check, then the p50 of each stage, in ms."""
    request = CheckRequest(requester="tenant-a:bench", operation="relight", image=data)
    guard.check(request)  # warm: models load, the blocklist opens
    clock.samples.clear()
    totals = []
    for _ in range(repeats):
        start = time.perf_counter()
        guard.decode(data)
        clock.observe_stage("decode", time.perf_counter() - start)
        start = time.perf_counter()
        guard.check(request)
        totals.append((time.perf_counter() - start) * 1000)
    stages = [statistics.median(clock.samples[s]) if clock.samples[s] else 0.0 for s in STAGES]
    return [statistics.median(totals), percentile(totals, 0.99), *stages]


def raw_dlib_ms(data: bytes, repeats: int) -> float:
    """The floor: HOG upright without upsampling, then landmarks and descriptor per face."""
    from guard.faces import import_dlib

    dlib, weights = import_dlib()
    detector = dlib.get_frontal_face_detector()
    shape = dlib.shape_predictor(weights.pose_predictor_five_point_model_location())
    descriptor = dlib.face_recognition_model_v1(weights.face_recognition_model_location())

    def run() -> None:
        rgb = decode_image(data).rgb
        for rect in detector(rgb, 0):
            chip = dlib.get_face_chip(rgb, shape(rgb, rect), 150, 0.25)
            descriptor.compute_face_descriptor(chip)

    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def build(directory: Path, engine: FaceEngine, observer: StageClock) -> Guard:
    settings = Settings(data_dir=directory)
    initialise(settings, engine)
    return Guard(settings, face_engine=engine, observer=observer)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    print(
        f"\n`bench/check_path.py` — {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, "
        f"{platform.processor() or 'cpu'}, {len(__import__('os').sched_getaffinity(0))} cores\n"
    )
    print(
        "| image | path | faces | check p50 ms | p99 ms | "
        + " | ".join(f"{s} ms" for s in STAGES)
        + " | p50 vs before | raw dlib floor ms |"
    )
    print("|---|---|---|---|---|" + "---|" * len(STAGES) + "---|---|")
    with tempfile.TemporaryDirectory() as root:
        defaults = Settings(data_dir=Path(root))
        configs: dict[str, Callable[[], FaceEngine]] = {
            "before": lambda: EverywhereEngine(DlibEngine(detect_max_side=1280)),
            "now": lambda: DlibEngine.from_settings(defaults),
            "now, working side 640": lambda: DlibEngine(detect_max_side=640),
        }
        clocks = {name: StageClock() for name in configs}
        guards = {
            name: build(Path(root) / name, make(), clocks[name]) for name, make in configs.items()
        }
        for label, (name, side) in CASES.items():
            data = scaled(name, side)
            floor = raw_dlib_ms(data, max(3, args.repeats // 3))
            baseline = 0.0
            for config, guard in guards.items():
                runs = max(3, args.repeats // 3) if config == "before" else args.repeats
                log(f"{label}: {config} x{runs}")
                faces = len(guard.face_engine.detect_and_embed(decode_image(data).rgb))
                row = check_row(guard, clocks[config], data, runs)
                baseline = baseline or row[0]
                print(
                    f"| {label} | {config} | {faces} | "
                    + " | ".join(f"{v:.0f}" for v in row)
                    + f" | {row[0] / baseline:.2f}× | {floor:.0f} |",
                    flush=True,
                )
        for guard in guards.values():
            guard.close()


if __name__ == "__main__":
    main()
