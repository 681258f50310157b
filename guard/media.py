"""Safe image decoding and encoding.

Every image that enters the guard goes through :func:`decode_image`, which enforces byte, pixel,
aspect-ratio and decoded-memory caps from the header *before* pixels are decoded (Pillow's
``Image.open`` is lazy), so a 4 KB file declaring a huge or absurdly thin canvas costs nothing. It
refuses decompression bombs, truncated files and (unless asked) multi-frame files, applies the EXIF
orientation and returns 8-bit RGB whatever the source mode (palette, CMYK, 16-bit, alpha). Every
failure is a typed :class:`~guard.errors.InvalidInput`.

    >>> decoded = decode_image(open("photo.jpg", "rb").read())  # doctest: +SKIP
    >>> decoded.rgb.shape, decoded.sha256[:8]                    # doctest: +SKIP
    ((886, 1280, 3), '3f1c9a02')
"""

from __future__ import annotations

import hashlib
import io
import struct
import warnings
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps, UnidentifiedImageError

from guard.errors import (
    InvalidInput,
    PayloadTooLarge,
    UndecodableImage,
    UnprocessableInput,
    UnsupportedMedia,
)

OutputFormat = Literal["png", "jpeg", "webp"]

RGBImage = NDArray[np.uint8]

# The refusal codes of the header caps (docs/service.md, Cost budget).
IMAGE_TOO_LARGE = "image_too_large"
BAD_ASPECT_RATIO = "bad_aspect_ratio"


@dataclass(frozen=True)
class ImageFormat:
    """One image format the guard reads: the one table every module asks about formats."""

    name: str
    """Pillow's name (``DecodedImage.source_format``)."""
    mime_type: str
    suffixes: tuple[str, ...]
    output: OutputFormat | None
    """The format the guard writes it as, where it writes it at all."""
    carries_manifest: bool
    """Whether a C2PA manifest can be embedded in it (an edit's parent ingredient)."""


FORMATS = (
    ImageFormat("JPEG", "image/jpeg", (".jpg", ".jpeg"), "jpeg", carries_manifest=True),
    ImageFormat("PNG", "image/png", (".png",), "png", carries_manifest=True),
    ImageFormat("WEBP", "image/webp", (".webp",), "webp", carries_manifest=True),
    ImageFormat("GIF", "image/gif", (".gif",), None, carries_manifest=True),
    ImageFormat("BMP", "image/bmp", (".bmp",), None, carries_manifest=False),
    ImageFormat("TIFF", "image/tiff", (".tif", ".tiff"), None, carries_manifest=True),
)
_BY_NAME = {f.name: f for f in FORMATS}
_BY_MIME = {f.mime_type: f for f in FORMATS}
ACCEPTED_FORMATS = frozenset(_BY_NAME)
ACCEPTED_MIME_TYPES = frozenset(_BY_MIME)
# Photo files the guard reads from folders (blocklist builds): the formats it also writes.
PHOTO_SUFFIXES = frozenset(s for f in FORMATS if f.output for s in f.suffixes)


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
    max_aspect_ratio: float = 20.0,
    max_decoded_bytes: int = 192 * 1024 * 1024,
    allow_multiframe: bool = False,
) -> DecodedImage:
    """Decode ``data`` into 8-bit RGB or raise :class:`InvalidInput` (and subclasses)."""
    if not data:
        raise InvalidInput("the image is empty (0 bytes)")
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            f"the image is {len(data):,} bytes; the limit is {max_bytes:,} (GUARD_MAX_IMAGE_BYTES)"
        )
    image = _open_checked(
        data,
        max_pixels=max_pixels,
        max_aspect_ratio=max_aspect_ratio,
        max_decoded_bytes=max_decoded_bytes,
        allow_multiframe=allow_multiframe,
    )
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
    except MemoryError as exc:  # a codec's own buffers on a host already short of memory
        raise PayloadTooLarge(
            "the image could not be decoded within the memory available", code=IMAGE_TOO_LARGE
        ) from exc
    return DecodedImage(rgb=_to_rgb8(image), source_format=source_format, sha256=content_hash(data))


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def header_pixels(data: bytes) -> int:
    """The pixel count ``data``'s header declares (width x height), read without decoding
    anything; 0 when no header Pillow accepts can be read (decoding will say why). What
    admission control weighs a request by, before its image is decoded.

    A PNG's size is read from its IHDR chunk, which the format puts first: Pillow's opener
    would also inflate every compressed text and ICC chunk before the pixels (0.2 s for a
    crafted 60 KB file), work done before admission for every request."""
    if data[:8] == _PNG_SIGNATURE and data[12:16] == b"IHDR" and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width) * int(height)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=sorted(ACCEPTED_FORMATS)) as image:
                width, height = image.size
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, SyntaxError, ValueError):
        return 0
    return max(0, width) * max(0, height)


def working_scale(height: int, width: int, max_side: int) -> float:
    """The factor that brings the long side down to ``max_side``; 1.0 for smaller images.
    Stages that only need a view of the whole image (face search, the NSFW classifier) work
    at this size, so their cost stops growing with the input past ``GUARD_DETECT_MAX_SIDE``."""
    long_side = max(height, width)
    return 1.0 if long_side <= max_side else max_side / long_side


def downscaled(rgb: RGBImage, max_side: int) -> tuple[RGBImage, float]:
    """``rgb`` with its long side at most ``max_side`` (area-averaged), and the scale used."""
    scale = working_scale(rgb.shape[0], rgb.shape[1], max_side)
    if scale == 1.0:
        return rgb, 1.0
    size = (max(1, round(rgb.shape[1] * scale)), max(1, round(rgb.shape[0] * scale)))
    return np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)), scale


def _open_checked(
    data: bytes,
    *,
    max_pixels: int,
    max_aspect_ratio: float,
    max_decoded_bytes: int,
    allow_multiframe: bool,
) -> Image.Image:
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
            f"the image is a decompression bomb ({exc}); nothing was decoded",
            code=IMAGE_TOO_LARGE,
        ) from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise UndecodableImage(f"the image header could not be read: {exc}") from exc
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InvalidInput(f"the image has no pixels ({width}x{height})")
    _check_canvas(image, max_pixels, max_aspect_ratio, max_decoded_bytes)
    frames = int(getattr(image, "n_frames", 1))
    if frames > 1 and not allow_multiframe:
        raise InvalidInput(
            f"the image has {frames} frames (animated or multi-page); send a single frame "
            "or set GUARD_ALLOW_MULTIFRAME=true to use the first one"
        )
    return image


def _check_canvas(
    image: Image.Image, max_pixels: int, max_aspect_ratio: float, max_decoded_bytes: int
) -> None:
    """Refuse a canvas from its header alone: nothing has been allocated for its pixels yet.

    The aspect ratio comes first: a 1x30,000,000 strip is under the pixel cap, yet every later
    stage that turns or pads the image (rotated detection views) squares its long side."""
    width, height = image.size
    if max(width, height) > max_aspect_ratio * min(width, height):
        raise UnprocessableInput(
            f"the image is {width}x{height}, an aspect ratio over {max_aspect_ratio:g}:1 "
            "(GUARD_MAX_IMAGE_ASPECT_RATIO); crop or pad it",
            code=BAD_ASPECT_RATIO,
        )
    if width * height > max_pixels:
        raise PayloadTooLarge(
            f"the image is {width}x{height} = {width * height:,} pixels; the limit is "
            f"{max_pixels:,} (GUARD_MAX_IMAGE_PIXELS)",
            code=IMAGE_TOO_LARGE,
        )
    decoded = width * height * _bytes_per_pixel(image.mode)
    if decoded > max_decoded_bytes:
        raise PayloadTooLarge(
            f"the image is {width}x{height} in mode {image.mode}: {decoded:,} bytes decoded; "
            f"the limit is {max_decoded_bytes:,} (GUARD_MAX_DECODED_IMAGE_BYTES)",
            code=IMAGE_TOO_LARGE,
        )


def _bytes_per_pixel(mode: str) -> int:
    """Bytes one decoded pixel takes, at least the 3 of the RGB copy every image becomes."""
    if mode.startswith("I;16"):
        sample = 2
    elif mode in ("I", "F"):
        sample = 4
    else:
        sample = 1
    try:
        bands = Image.getmodebands(mode)
    except (KeyError, ValueError):  # a raw mode Pillow does not list: assume the widest
        bands = 4
    return max(3, bands * sample)


def _to_rgb8(image: Image.Image) -> RGBImage:
    """Any Pillow mode to HxWx3 uint8 RGB; alpha is composited over white."""
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # Integer arithmetic: a float64 copy would take 8 bytes a pixel (320 MB at the cap).
        wide = np.clip(np.asarray(image), 0, 65535).astype(np.uint32)
        peak = 65535 if mode.startswith("I;16") or int(wide.max(initial=0)) > 255 else 255
        gray = ((wide * 255 + peak // 2) // peak).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "F":
        gray = np.clip(np.rint(np.asarray(image, dtype=np.float32)), 0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(gray[:, :, None], 3, axis=2))
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if mode in ("RGBA", "LA", "PA") or image.mode == "RGBA":
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    rgb = image.convert("RGB")
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


# zlib level 1, not Pillow's default 6: at 1024² level 6 took 299 of the 338 ms an edit spent
# stamping, level 1 takes 67 ms for a file 14 % larger (issue 18). Every stamped PNG pays it.
PNG_COMPRESS_LEVEL = 1


def encode_image(rgb: RGBImage, fmt: OutputFormat = "png", *, quality: int = 92) -> bytes:
    """Encode 8-bit RGB pixels; JPEG and WebP use ``quality``."""
    buffer = io.BytesIO()
    image = Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8))
    if fmt == "png":
        image.save(buffer, format="PNG", optimize=False, compress_level=PNG_COMPRESS_LEVEL)
    elif fmt == "jpeg":
        image.save(buffer, format="JPEG", quality=quality)
    else:
        image.save(buffer, format="WEBP", quality=quality)
    return buffer.getvalue()


def output_format_for(path_suffix: str) -> OutputFormat:
    """Map a file suffix (``.jpg``) to an output format, or raise :class:`InvalidInput`."""
    suffix = "." + path_suffix.lower().lstrip(".")
    for image_format in FORMATS:
        if image_format.output is not None and suffix in image_format.suffixes:
            return image_format.output
    raise InvalidInput(f"output format '{suffix}' is not supported; use .png, .jpg or .webp")


def output_format_of_media_type(mime_type: str) -> OutputFormat | None:
    """The output format of a MIME type (``image/png`` -> ``png``); None if the guard does not
    write it."""
    image_format = _BY_MIME.get(mime_type)
    return image_format.output if image_format else None


def mime_type_of(output_format: OutputFormat) -> str:
    return next(f.mime_type for f in FORMATS if f.output == output_format)


def web_format(source_format: str) -> OutputFormat:
    """What to write an image received as ``source_format`` as: the same where the guard
    writes that format, PNG otherwise."""
    image_format = _BY_NAME.get(source_format)
    return image_format.output if image_format and image_format.output else "png"


def manifest_mime_type(source_format: str) -> str | None:
    """The MIME type to read or embed a C2PA manifest in ``source_format`` with; None where
    C2PA cannot carry one."""
    image_format = _BY_NAME.get(source_format)
    return image_format.mime_type if image_format and image_format.carries_manifest else None


def sniff_mime_type(data: bytes) -> str | None:
    """The MIME type of a JPEG, PNG or WebP file by its magic bytes (no decoding)."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None
