"""Red-team evaluation: how often do disguised prompts and transformed photos get past the gate?

1. **Prompts** (``tests/data/redteam/prompts.jsonl``, written by
   ``tests/data/redteam/make_prompts.py``): attack prompts naming 20 public figures through one
   manipulation family each (exact name as control, zero-width characters, Cyrillic look-alike
   letters, other scripts, leetspeak, spread-out letters, typos, several at once, and
   descriptions instead of names), and benign prompts that merely resemble names. Reported per
   family: attack success rate (the figure was *not* found) and false-positive rate (a benign
   prompt flagged). Baseline in the same run: the exact folding alone (``rules=("exact",)``).
2. **Face gate**: the blocklisted photos (Tom Hanks from insightface, Eileen Collins from
   scikit-image) transformed as an attacker would, each checked against a blocklist built from
   the untransformed photos at the configured threshold. Reported per transform: how often the
   figure is identified (true-positive rate), and how often the gate denies it at all (also
   as an unreadable face: a face NudeNet sees that dlib cannot read). The references are the
   same photos the attacks start from (the only offline photos of these people), so this
   measures robustness to the transform, not to a new photo.

Usage: ``python bench/redteam.py [--sections prompts faces]``
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Callable
from importlib import util
from pathlib import Path

import cv2
import numpy as np

from guard.config import Settings
from guard.faces.dlib_engine import DlibEngine
from guard.identity import Blocklist, PublicFigure, reference_face
from guard.media import RGBImage
from guard.safety import NudeNetClassifier, PromptScreen, UnreadableFaces
from guard.samples import flip, jpeg, sample_rgb

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "redteam" / "prompts.jsonl"


def prompts() -> None:
    rows = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines()]
    spec = util.spec_from_file_location("make_prompts", DATA.parent / "make_prompts.py")
    assert spec is not None and spec.loader is not None
    generator = util.module_from_spec(spec)
    spec.loader.exec_module(generator)
    names: dict[str, str] = generator.FIGURES
    figures = [PublicFigure(fid, name, (), (i,)) for i, (fid, name) in enumerate(names.items())]
    screens = {
        "all rules": PromptScreen(figures),
        "exact only (baseline)": PromptScreen(figures, rules=("exact",)),
    }
    print(
        f"\n{len(rows)} prompts ({sum(r['target'] is not None for r in rows)} attacks), "
        f"{len(figures)} figures\n"
    )
    print("| family (rate) | prompts | all rules | exact only (baseline) | rules that fired |")
    print("|---|---|---|---|---|")
    families = list(dict.fromkeys(r["family"] for r in rows))
    for family in families:
        members = [r for r in rows if r["family"] == family]
        outcome = {}
        fired: Counter[str] = Counter()
        for label, screen in screens.items():
            missed = 0
            for row in members:
                matches = screen.screen(row["prompt"])
                if row["target"] is None:
                    missed += bool(matches)  # for benign rows: a false positive
                else:
                    hit = [m for m in matches if m.identity_id == row["target"]]
                    missed += not hit
                    if label == "all rules" and hit:
                        fired[hit[0].rule] += 1
            outcome[label] = missed / len(members)
        kind = "false positives" if members[0]["target"] is None else "attack success"
        rules = ", ".join(f"{rule} {count}" for rule, count in fired.most_common())
        print(
            f"| {family} ({kind}) | {len(members)} | {outcome['all rules']:.0%} "
            f"| {outcome['exact only (baseline)']:.0%} | {rules} |"
        )


def occlude(rgb: RGBImage, box: tuple[int, int, int, int], rows: tuple[float, float]) -> RGBImage:
    out = rgb.copy()
    x0, y0, x1, y1 = box
    top, bottom = (y0 + int(f * (y1 - y0)) for f in rows)
    out[top:bottom, x0:x1] = 20
    return out


def face_transforms(engine: DlibEngine) -> dict[str, Callable[[RGBImage], RGBImage]]:
    def box(rgb: RGBImage) -> tuple[int, int, int, int]:
        return reference_face(engine.detect_and_embed(rgb), "the photo").bbox

    def crop_face(rgb: RGBImage) -> RGBImage:
        x0, y0, x1, y1 = box(rgb)
        pad = (x1 - x0) // 4
        return rgb[max(0, y0 - pad) : y1 + pad, max(0, x0 - pad) : x1 + pad].copy()

    def small(rgb: RGBImage) -> RGBImage:
        x0, _, x1, _ = box(rgb)
        scale = 64 / (x1 - x0)
        size = (max(1, int(rgb.shape[1] * scale)), max(1, int(rgb.shape[0] * scale)))
        return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)

    def grayscale(rgb: RGBImage) -> RGBImage:
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        return np.ascontiguousarray(np.stack([gray] * 3, axis=-1))

    def in_group(rgb: RGBImage) -> RGBImage:
        group = sample_rgb("t1").copy()
        face = crop_face(rgb)
        height = 150
        width = int(face.shape[1] * height / face.shape[0])
        group[600 : 600 + height, 560 : 560 + width] = cv2.resize(face, (width, height))
        return group

    return {
        "original": lambda rgb: rgb,
        "flipped": flip,
        "cropped to the face": crop_face,
        "JPEG 30": lambda rgb: jpeg(rgb, 30),
        "grayscale": grayscale,
        "small (64 px face width)": small,
        "lower half occluded": lambda rgb: occlude(rgb, box(rgb), (0.55, 1.0)),
        "sunglasses-like band": lambda rgb: occlude(rgb, box(rgb), (0.25, 0.5)),
        "in a group photo": in_group,
    }


def faces() -> None:
    engine = DlibEngine()
    threshold = Settings().blocklist_threshold(engine.name)
    photos = {"tom-hanks": sample_rgb("tom_hanks"), "eileen-collins": sample_rgb("astronaut")}
    blocklist = Blocklist.empty(engine.name, engine.dimension)
    for figure_id, rgb in photos.items():
        blocklist.add_figure(
            figure_id,
            figure_id,
            [reference_face(engine.detect_and_embed(rgb), figure_id).embedding],
        )
    nudenet = NudeNetClassifier("cpu")
    unreadable_faces = UnreadableFaces()
    print(f"\nface gate: dlib, blocklist threshold {threshold} (cosine), and NudeNet's face net\n")
    print(
        "| transform | " + " | ".join(photos) + " | identified as the figure | denied by the gate |"
    )
    print("|---|" + "---|" * (len(photos) + 2))
    for name, transform in face_transforms(engine).items():
        cells, hits, denied = [], 0, 0
        for figure_id, rgb in photos.items():
            image = transform(rgb)
            seen = nudenet.score(image).faces
            found = engine.detect_and_embed(image, candidates=[face.box for face in seen])
            matches = blocklist.match([f.embedding for f in found])
            best = max(
                (
                    c.similarity
                    for candidates in matches
                    for c in candidates
                    if c.figure_id == figure_id
                ),
                default=0.0,
            )
            hit = best >= threshold
            # A face NudeNet sees that dlib cannot read is an unknown face: denied.
            unreadable = unreadable_faces.boxes(image, seen, found)
            hits += hit
            denied += hit or bool(unreadable)
            if hit:
                cells.append(f"caught ({best:.3f})")
            elif unreadable:
                cells.append("not identified; denied as an unreadable face")
            else:
                cells.append(f"MISSED ({best:.3f}, {len(found)} faces)")
        print(
            f"| {name} | "
            + " | ".join(cells)
            + f" | {hits / len(photos):.0%} | {denied / len(photos):.0%} |"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sections", nargs="+", default=["prompts", "faces"], choices=["prompts", "faces"]
    )
    args = parser.parse_args()
    if "prompts" in args.sections:
        prompts()
    if "faces" in args.sections:
        faces()


if __name__ == "__main__":
    main()
