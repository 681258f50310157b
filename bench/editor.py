"""Classic editor cost per operation at 512² and 1024² (target: well under a second at 1024²).

Baseline: one plain full-frame Gaussian blur of the same image (no masks, no faces), the
cheapest edit there is. Faces come from the real group photo. Prints a Markdown table.

Usage: ``python bench/editor.py``
"""

from __future__ import annotations

import cv2
import numpy as np
from timing import median_ms

from guard.editors import ClassicEditor
from guard.faces.dlib_engine import DlibEngine
from guard.samples import sample_rgb

OPERATIONS: list[tuple[str, dict[str, str | float]]] = [
    ("background_blur", {}),
    ("relight", {"direction": "left"}),
    ("color_grade", {"look": "teal_orange"}),
]


def main() -> None:
    editor, engine = ClassicEditor(), DlibEngine()
    t1 = sample_rgb("t1")
    height, width = t1.shape[:2]
    square = np.ascontiguousarray(t1[:, (width - height) // 2 : (width - height) // 2 + height])
    print("| image | operation | faces | ms | vs plain blur baseline |")
    print("|---|---|---|---|---|")
    for side in (512, 1024):
        rgb = np.asarray(cv2.resize(square, (side, side), interpolation=cv2.INTER_AREA))
        faces = engine.detect_and_embed(rgb)
        sigma = 0.02 * side
        baseline = median_ms(lambda rgb=rgb, sigma=sigma: cv2.GaussianBlur(rgb, (0, 0), sigma))
        print(f"| t1 {side}² | plain blur (baseline) | – | {baseline:.1f} | 1.0× |")
        for operation, params in OPERATIONS:
            ms = median_ms(
                lambda rgb=rgb, faces=faces, op=operation, p=params: editor.edit(rgb, faces, op, p)
            )
            print(f"| t1 {side}² | {operation} | {len(faces)} | {ms:.1f} | {ms / baseline:.1f}× |")


if __name__ == "__main__":
    main()
