"""Where the dlib match threshold comes from: genuine vs impostor similarities on real photos.

Identities: the six people of insightface's t1.jpg, Tom Hanks and the astronaut (8 people).
Genuine pairs: each face against itself after JPEG 50, resize 50 %, mirror, 10 % crop, 10°
rotation and the three first combined. Impostor pairs: every two different people, also across
the transformed copies. Prints a Markdown table; docs/thresholds.md records it.

Usage: ``python bench/thresholds.py``
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np

from guard.config import Settings
from guard.faces.dlib_engine import DlibEngine
from guard.identity import reference_face
from guard.media import RGBImage
from guard.samples import TRANSFORMS as SAMPLE_TRANSFORMS
from guard.samples import flip, half, jpeg, rotate10, sample_rgb

Transform = Callable[[RGBImage], RGBImage]

TRANSFORMS: dict[str, Transform] = {
    **SAMPLE_TRANSFORMS,
    "rotate10": rotate10,
    "jpeg50+resize50+flip": lambda rgb: flip(half(jpeg(rgb))),
}


def identities(
    engine: DlibEngine, transform: Transform | None
) -> tuple[dict[str, np.ndarray], int]:
    """Embedding per person found after ``transform``, and how many people were not found.

    t1's faces are paired with the originals greedily by similarity, each face used once, so a
    face the detector lost under the transform counts as missed instead of borrowing another
    person's embedding."""
    found: dict[str, np.ndarray] = {}
    missed = 0
    for name in ("tom_hanks", "astronaut"):
        rgb = sample_rgb(name)  # type: ignore[arg-type]
        faces = engine.detect_and_embed(transform(rgb) if transform else rgb)
        if faces:
            found[name] = reference_face(faces, name).embedding
        else:
            missed += 1
    t1 = sample_rgb("t1")
    originals = engine.detect_and_embed(t1)
    moved = engine.detect_and_embed(transform(t1) if transform else t1)
    pairs = sorted(
        (
            (float(m.embedding @ o.embedding), i, j)
            for i, o in enumerate(originals)
            for j, m in enumerate(moved)
        ),
        reverse=True,
    )
    used_original: set[int] = set()
    used_moved: set[int] = set()
    for _similarity, i, j in pairs:
        if i not in used_original and j not in used_moved:
            used_original.add(i)
            used_moved.add(j)
            found[f"t1-{i}"] = moved[j].embedding
    missed += len(originals) - len(used_original)
    return found, missed


def main() -> None:
    engine = DlibEngine()
    settings = Settings()
    reference, _ = identities(engine, None)
    print(
        f"{len(reference)} identities; GUARD_DLIB_REGISTRY_THRESHOLD = "
        f"{settings.dlib_registry_threshold}, GUARD_DLIB_BLOCKLIST_THRESHOLD = "
        f"{settings.dlib_blocklist_threshold}\n"
    )
    print("| transform | faces missed | genuine min | genuine mean | impostor max |")
    print("|---|---|---|---|---|")
    all_genuine, all_impostor = [], []
    for label, transform in TRANSFORMS.items():
        moved, missed = identities(engine, transform)
        genuine = [float(moved[k] @ reference[k]) for k in moved]
        impostor = [float(moved[a] @ reference[b]) for a in moved for b in reference if a != b]
        all_genuine += genuine
        all_impostor += impostor
        print(
            f"| {label} | {missed} | {min(genuine):.3f} | {np.mean(genuine):.3f} | "
            f"{max(impostor):.3f} |"
        )
    originals = [
        float(reference[a] @ reference[b]) for a, b in itertools.combinations(reference, 2)
    ]
    all_impostor += originals
    print(f"| (none: people vs each other) | – | – | – | {max(originals):.3f} |")
    print(
        f"\ngenuine min {min(all_genuine):.3f} over {len(all_genuine)} pairs; impostor max "
        f"{max(all_impostor):.3f} over {len(all_impostor)} pairs; margin "
        f"{min(all_genuine) - max(all_impostor):.3f}"
    )


if __name__ == "__main__":
    main()
