"""Face recall against cost, per configuration of the dlib face path, on every real test photo
and transform.

Ground truth is identity, not boxes: the people the baseline engine finds in each untouched
photo (insightface's t1.jpg: 6, Tom_Hanks_54745.png: 1, scikit-image's astronaut: 1). A person
counts as found in a transformed image when one face read there matches them at the registry
threshold (the strict one: a face found but not recognised is not counted as found).

Cases: each photo untouched, JPEG 50, resized by half, flipped, cropped by 10 %, turned by
±15°, ±20°, ±30° and 45°, scaled up to 1024 px and to 3 MP, and the photo pasted small into a
2048² scene (the person's face 48, 64 and 96 px wide; and 96 px turned by 20°).

Configurations: the working side of the upright search (``GUARD_DETECT_MAX_SIDE``), and where
turned views are searched: everywhere (the baseline, the face path up to 2026-12-02), only
around faces NudeNet saw that the upright search missed (the default since issue 18), or
nowhere. The cost is the face stage alone (NudeNet runs for every image either way, for NSFW
and for unreadable faces; its cost is printed once).

Usage: ``python bench/faces.py [--quick]`` (``--quick``: fewer configurations).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import cv2
import numpy as np

from guard.config import Settings
from guard.faces import Face
from guard.faces.dlib_engine import DlibEngine
from guard.faces.rotation import views
from guard.media import RGBImage
from guard.safety import NudeNetClassifier
from guard.samples import TRANSFORMS, sample_rgb

SAME = Settings(data_dir=Path("unused")).dlib_registry_threshold
PHOTOS = ("t1", "tom_hanks", "astronaut")
SCENE_SIDE = 2048


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def resized(rgb: RGBImage, long_side: int) -> RGBImage:
    factor = long_side / max(rgb.shape[:2])
    size = (round(rgb.shape[1] * factor), round(rgb.shape[0] * factor))
    interpolation = cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=interpolation))


def in_scene(rgb: RGBImage, face_width: float, face_px: int, angle: float = 0.0) -> RGBImage:
    """The photo scaled so its face is ``face_px`` wide, pasted into a 2048² real scene."""
    scene = cv2.resize(sample_rgb("coffee"), (SCENE_SIDE, SCENE_SIDE))
    small = resized(rgb, max(1, round(max(rgb.shape[:2]) * face_px / face_width)))
    if angle:
        small = views(small, (angle,))[-1].image
    height, width = small.shape[:2]
    top, left = SCENE_SIDE // 3, SCENE_SIDE // 3
    scene[top : top + height, left : left + width] = small[: SCENE_SIDE - top, : SCENE_SIDE - left]
    return scene


@dataclass(frozen=True)
class Case:
    photo: str
    name: str
    kind: str  # plain, turned, small
    image: RGBImage


def cases(reference: dict[str, list[Face]]) -> list[Case]:
    found = []
    for photo in PHOTOS:
        rgb = sample_rgb(photo)  # type: ignore[arg-type]
        found.append(Case(photo, "untouched", "plain", rgb))
        for name, transform in sorted(TRANSFORMS.items()):
            found.append(Case(photo, name, "plain", transform(rgb)))
        for angle in (-30, -20, -15, 15, 20, 30, 45):
            found.append(Case(photo, f"turned {angle}°", "turned", views(rgb, (angle,))[-1].image))
        found.append(Case(photo, "1024 px", "plain", resized(rgb, 1024)))
        found.append(Case(photo, "3 MP", "plain", resized(rgb, 2080)))
        width = statistics.median(f.bbox[2] - f.bbox[0] for f in reference[photo])
        for face_px in (48, 64, 96):
            found.append(Case(photo, f"{face_px} px face", "small", in_scene(rgb, width, face_px)))
        found.append(Case(photo, "96 px face, 20°", "small", in_scene(rgb, width, 96, 20)))
    return found


@dataclass(frozen=True)
class Config:
    label: str
    engine: DlibEngine
    steer: bool  # pass NudeNet's faces as candidates


def configs(quick: bool) -> list[Config]:
    sides = (1280, 640) if quick else (1280, 960, 640)
    found = [Config("1280, turned views everywhere (baseline)", DlibEngine(), steer=False)]
    for side in sides:
        found.append(
            Config(
                f"{side}, turned views at NudeNet's faces", DlibEngine(detect_max_side=side), True
            )
        )
    found.append(
        Config("1280, no turned views", DlibEngine(rotation_sweep=()), steer=False),
    )
    return found


def recall_of(faces: list[Face], people: list[Face]) -> int:
    return sum(
        any(float(face.embedding @ person.embedding) >= SAME for face in faces) for person in people
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    baseline = DlibEngine()
    reference = {p: baseline.detect_and_embed(sample_rgb(p)) for p in PHOTOS}  # type: ignore[arg-type]
    all_cases = cases(reference)
    nudenet = NudeNetClassifier("cpu")
    seen: list[list[tuple[int, int, int, int]]] = []
    nudenet_ms = []
    for case in all_cases:
        start = time.perf_counter()
        seen.append([face.box for face in nudenet.score(case.image).faces])
        nudenet_ms.append((time.perf_counter() - start) * 1000)
    print(
        f"\n`bench/faces.py` — {datetime.now(UTC):%Y-%m-%d}, {platform.machine()}, "
        f"{len(os.sched_getaffinity(0))} cores; {len(all_cases)} images, "
        f"{sum(len(reference[c.photo]) for c in all_cases)} people to find; NudeNet "
        f"{statistics.median(nudenet_ms):.0f} ms p50 an image (paid by every configuration)\n"
    )
    kinds = ("plain", "turned", "small")
    print(
        "| working side, turned views | found (all) | "
        + " | ".join(f"found ({k})" for k in kinds)
        + " | extra faces | face stage p50 ms | mean ms | mean vs baseline |"
    )
    print("|---|---|" + "---|" * len(kinds) + "---|---|---|---|")
    baseline_mean = 0.0
    misses: dict[str, list[str]] = {}
    for config in configs(args.quick):
        log(config.label)
        found = {k: 0 for k in kinds}
        total = {k: 0 for k in kinds}
        extra = 0
        times = []
        for case, boxes in zip(all_cases, seen, strict=True):
            people = reference[case.photo]
            start = time.perf_counter()
            faces = config.engine.detect_and_embed(
                case.image, candidates=boxes if config.steer else None
            )
            times.append((time.perf_counter() - start) * 1000)
            hits = recall_of(faces, people)
            found[case.kind] += hits
            total[case.kind] += len(people)
            extra += max(0, len(faces) - hits)
            if hits < len(people):
                misses.setdefault(config.label, []).append(
                    f"{case.photo} {case.name} ({hits}/{len(people)})"
                )
        mean = statistics.mean(times)
        baseline_mean = baseline_mean or mean
        all_found, all_total = sum(found.values()), sum(total.values())
        print(
            f"| {config.label} | {all_found}/{all_total} | "
            + " | ".join(f"{found[k]}/{total[k]}" for k in kinds)
            + f" | {extra} | {statistics.median(times):.0f} | {mean:.0f} | "
            f"{mean / baseline_mean:.2f}× |",
            flush=True,
        )
    print("\nMissed people per configuration:\n")
    for label, missed in misses.items():
        print(f"- {label}: " + "; ".join(missed))


if __name__ == "__main__":
    main()
