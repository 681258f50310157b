"""Safe image decoding and encoding.

Every image that enters the guard goes through :func:`decode_image`, which enforces byte and pixel
caps *before* pixels are decoded, refuses decompression bombs, truncated files and (unless asked)
multi-frame files, applies the EXIF orientation and returns 8-bit RGB whatever the source mode
(palette, CMYK, 16-bit, alpha). Every failure is a typed :class:`~guard.errors.InvalidInput`.

    >>> decoded = decode_image(open("photo.jpg", "rb").read())  # doctest: +SKIP
    >>> decoded.rgb.shape, decoded.sha256[:8]                    # doctest: +SKIP
    ((886, 1280, 3), '3f1c9a02')
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from guard.errors import InvalidInput, PayloadTooLarge, UndecodableImage, UnsupportedMedia

ACCEPTED_FORMATS = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF"})
OutputFormat = Literal["png", "jpeg", "webp"]

RGBImage = NDArray[np.uint8]


@dataclass(frozen=True)
class DecodedImage:
    """An image ready for the pipeline: 8-bit RGB pixels plus where they came from."""

    rgb: RGBImage
    source_format: str
    sha256: str

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])


def content_hash(data: bytes) -> str:
    """SHA-256 of the bytes as received, hex: the id of an input or output in decisions."""
    return hashlib.sha256(data).hexdigest()


def decode_image(
    data: bytes,
    *,
    max_bytes: int = 25 * 1024 * 1024,
    max_pixels: int = 40_000_000,
    allow_multiframe: bool = False,
) -> DecodedImage:
    """Decode ``data`` into 8-bit RGB or raise :class:`InvalidInput` (and subclasses)."""
    if not data:
        raise InvalidInput("the image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"the image is {len(data):,} bytes; the limit is {max_bytes:,} (GUARD_MAX_IMAGE_BYTES)"
        )
    image = _open_checked(data, max_pixels=max_pixels, allow_multiframe=allow_multiframe)
    source_format = str(image.format)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombWarning) as exc:
        raise UndecodableImage(
            f"the image could not be decoded (truncated or corrupt): {exc}"
        ) from exc
    return DecodedImage(rgb=_to_rgb8(image), source_format=source_format, sha256=content_hash(data))


def _open_checked(data: bytes, *, max_pixels: int, allow_multiframe: bool) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data), formats=sorted(ACCEPTED_FORMATS))
    except UnidentifiedImageError as exc:
        raise UnsupportedMedia(
            "the file is not an image the guard accepts (JPEG, PNG, WebP, GIF, BMP, TIFF)"
        ) from exc
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise PayloadTooLarge(
            f"the image is a decompression bomb ({exc}); nothing was decoded"
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise UndecodableImage(f"the image header could not be read: {exc}") from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InvalidInput(f"the image has no pixels ({width}x{height})")
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"the image is {width}x{height} = {width * height:,} pixels; the limit is "
            f"{max_pixels:,} (GUARD_MAX_IMAGE_PIXELS)"
        )
    frames = int(getattr(image, "n_frames", 1))
    if frames > 1 and not allow_multiframe:
        raise InvalidInput(
            f"the image has {frames} frames (animated or multi-page); send a single frame "
            "or set GUARD_ALLOW_MULTIFRAME=true to use the first one"
        )
    return image


def _to_rgb8(image: Image.Image) -> RGBImage:
    """Any Pillow mode to HxWx3 uint8 RGB; alpha is composited over white."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        wide = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if mode.startswith("I;16") or wide.max(initial=0) > 255 else 255.0
        gray = np.clip(np.rint(wide * (255.0 / peak)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "F":
        gray = np.clip(np.rint(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if mode in ("RGBA", "LA", "PA") or image.mode == "RGBA":
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    rgb = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def encode_image(rgb: RGBImage, fmt: OutputFormat = "png", *, quality: int = 92) -> bytes:
    """Encode 8-bit RGB pixels; JPEG and WebP use ``quality``."""
    buffer = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    if fmt == "png":
        image.save(buffer, format="PNG", optimize=False)
    elif fmt == "jpeg":
        image.save(buffer, format="JPEG", quality=quality)
    else:
        image.save(buffer, format="WEBP", quality=quality)
    return buffer.getvalue()


def output_format_for(path_suffix: str) -> OutputFormat:
    """Map a file suffix (``.jpg``) to an output format, or raise :class:`InvalidInput`."""
    suffix = path_suffix.lower().lstrip(".")
    formats: dict[str, OutputFormat] = {"png": "png", "jpg": "jpeg", "jpeg": "jpeg", "webp": "webp"}
    if suffix not in formats:
        raise InvalidInput(f"output format '.{suffix}' is not supported; use .png, .jpg or .webp")
    return formats[suffix]
