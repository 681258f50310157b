"""The visible disclosure label (policy condition ``visible_label``): a caption bar drawn into
the pixels, so that the disclosure survives where metadata is stripped and the watermark is
not read. It is drawn before the watermark, so the mark covers it too."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from guard.media import RGBImage

LABEL_TEXT = "AI-edited image"


def add_visible_label(rgb: RGBImage, text: str = LABEL_TEXT) -> RGBImage:
    """``rgb`` with a dark caption bar across the bottom carrying ``text`` in white."""
    height, width = rgb.shape[:2]
    bar = max(12, round(height * 0.05))
    image = Image.fromarray(rgb)
    font = ImageFont.load_default(size=max(9, round(bar * 0.62)))
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    draw.rectangle((0, height - bar, width, height), fill=(0, 0, 0, 170))
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    draw.text(
        (max(2, (width - (right - left)) // 2), height - bar + (bar - (bottom - top)) // 2 - top),
        text,
        font=font,
        fill=(255, 255, 255, 255),
    )
    labelled = Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB")
    return np.asarray(labelled, dtype=np.uint8).copy()
