"""The diffusers editor: a CPU smoke figure with the tiny test pipelines, and what the guard adds
around an editor call at 1024².

1. Per pipeline class: seconds per denoising step and peak memory (RSS) of a tiny, randomly
   initialised pipeline (tests/support/tiny_pipelines.py) at two working sizes, each class
   in its own process so that peak memory is its own. **A smoke figure**: real models are
   thousands of times larger; it shows the editor's plumbing works and what it costs, not what
   Qwen-Image-Edit or FLUX.1 Kontext cost.
2. Guard overhead: ``Guard.edit`` on a 1024² photo with one consented face (input gate, NSFW
   screen, output scan, drift, watermark, C2PA signing, audit) minus the editor's own time, as
   measured by the pipeline's stage timings. Baseline: the editor call alone.

Usage: ``python bench/diffusion.py [--steps N]``
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

# The tiny pipelines are built by the test suite's helper; bench scripts run from bench/.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from guard import EditRequest, Guard
from guard.bootstrap import initialise
from guard.config import Settings
from guard.editors.diffusion import DiffusersEditor
from guard.faces.dlib_engine import DlibEngine
from guard.media import encode_image
from guard.samples import sample_rgb
from tests.support.tiny_pipelines import has_torchvision, save_tiny_pipeline

CLASSES = ("StableDiffusionInstructPix2PixPipeline", "FluxKontextPipeline", "QwenImageEditPipeline")
REQUESTER = "bench/app"
# The woman on the left of t1.jpg, a square around her face.
FACE_SQUARE = (200, 462, 0, 262)


def _step_profile(class_name: str, side: int, steps: int) -> dict[str, Any]:
    """In a fresh process: per-step seconds and peak RSS of one tiny pipeline at ``side``."""
    with tempfile.TemporaryDirectory() as folder:
        model_dir = save_tiny_pipeline(class_name, Path(folder) / class_name)
        settings = Settings(
            data_dir=Path(folder) / "var", diffusers_model_dir=model_dir, diffusers_resolution=side
        )
        editor = DiffusersEditor(settings)
        started = time.perf_counter()
        editor.pipeline()
        load_s = time.perf_counter() - started
        rgb = np.asarray(cv2.resize(sample_rgb("t1"), (side, side)), dtype=np.uint8)
        stamps: list[float] = []
        params = {"steps": steps, "protect_faces": False}
        editor.edit(rgb, [], "prompt_edit", params, prompt="warm up")
        editor.edit(
            rgb,
            [],
            "prompt_edit",
            params,
            prompt="make it a snowy evening",
            progress=lambda _done, _total: stamps.append(time.perf_counter()),
        )
    per_step = statistics.median(np.diff(stamps)) if len(stamps) > 1 else float("nan")
    return {
        "per_step_s": per_step,
        "load_s": load_s,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def step_table(steps: int) -> None:
    print("| pipeline (tiny, random weights) | working size | s/step | load s | peak RSS MiB |")
    print("|---|---|---|---|---|")
    context = multiprocessing.get_context("spawn")
    for class_name in CLASSES:
        if class_name == "QwenImageEditPipeline" and not has_torchvision():
            print(f"| {class_name} | – | not run: needs torchvision (no CPU build here) | – | – |")
            continue
        for side in (256, 512):
            with context.Pool(1) as pool:
                row = pool.apply(_step_profile, (class_name, side, steps))
            print(
                f"| {class_name} | {side}² | {row['per_step_s']:.3f} | {row['load_s']:.2f} | "
                f"{row['peak_rss_mib']:.0f} |"
            )


class _StageTimes:
    def __init__(self) -> None:
        self.seconds: dict[str, list[float]] = {}

    def observe_stage(self, stage: str, seconds: float) -> None:
        self.seconds.setdefault(stage, []).append(seconds)


def overhead_table(steps: int, repeats: int = 5) -> None:
    with tempfile.TemporaryDirectory() as folder:
        model_dir = save_tiny_pipeline("FluxKontextPipeline", Path(folder) / "kontext")
        settings = Settings(
            data_dir=Path(folder) / "var",
            editor="diffusers",
            diffusers_model_dir=model_dir,
            diffusers_resolution=256,
            diffusers_steps=steps,
        )
        engine = DlibEngine()
        initialise(settings, engine)
        stages = _StageTimes()
        guard = Guard(settings, face_engine=engine, observer=stages)
        y0, y1, x0, x1 = FACE_SQUARE
        photo = cv2.resize(sample_rgb("t1")[y0:y1, x0:x1], (1024, 1024), cv2.INTER_CUBIC)
        image = encode_image(np.asarray(photo, dtype=np.uint8), "jpeg")
        subject = guard.registry.create_subject("bench", display_name="Model A")
        guard.registry.enroll(subject.id, guard.faces_in(image))
        guard.registry.grant(
            subject.id, grantee=REQUESTER, scopes=("prompt_edit",), evidence_sha256="ab" * 32
        )
        request = EditRequest(
            image=image, operation="prompt_edit", requester=REQUESTER, prompt="a snowy street"
        )
        assert guard.edit(request).image is not None, "the benchmark edit must be allowed"
        stages.seconds.clear()
        totals = []
        for _ in range(repeats):
            started = time.perf_counter()
            guard.edit(request)
            totals.append(time.perf_counter() - started)
        guard.close()
    total = statistics.median(totals)
    editor = statistics.median(stages.seconds["edit"])
    overhead = total - editor
    print()
    print("| 1024² photo, 1 consented face | ms | vs the editor call alone (baseline) |")
    print("|---|---|---|")
    print(
        f"| editor call (tiny FLUX.1 Kontext, 256², {steps} steps) | {editor * 1000:.0f} | 1.0× |"
    )
    print(f"| Guard.edit, everything | {total * 1000:.0f} | {total / editor:.2f}× |")
    print(
        f"| guard overhead (everything but the editor) | {overhead * 1000:.0f} | "
        f"{overhead / editor:.2f}× |"
    )
    # Per edit; nsfw runs inside the input gate and inside output_scan, so it is not additive.
    for stage in ("faces", "match", "nsfw", "output_scan", "stamp", "audit"):
        if stage in stages.seconds:
            ms = sum(stages.seconds[stage]) / repeats * 1000
            print(f"| · {stage} | {ms:.0f} | {ms / 1000 / editor:.2f}× |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    arguments = parser.parse_args()
    step_table(arguments.steps)
    overhead_table(arguments.steps)


if __name__ == "__main__":
    main()
