"""Safe decoding: every malformed input is a typed InvalidInput; valid odd modes become RGB."""

from __future__ import annotations

import contextlib
import io
import struct
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from guard.errors import InvalidInput, PayloadTooLarge, UndecodableImage, UnsupportedMedia
from guard.media import decode_image, encode_image, output_format_for
from guard.samples import sample_bytes


def _save(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, with one tiny IDAT: a decompression-bomb shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def test_empty_input() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        decode_image(b"")


def test_truncated_jpeg() -> None:
    data = sample_bytes("t1")
    with pytest.raises(UndecodableImage, match="truncated or corrupt") as caught:
        decode_image(data[: len(data) // 2])
    assert caught.value.http_status == 422


def test_huge_png_header_is_rejected_before_decoding() -> None:
    with pytest.raises(PayloadTooLarge, match="decompression bomb"):
        decode_image(_png_header_only(60000, 60000))
    with pytest.raises(PayloadTooLarge, match=r"8000x8000 .*GUARD_MAX_IMAGE_PIXELS"):
        decode_image(_png_header_only(8000, 8000))


def test_too_many_bytes() -> None:
    with pytest.raises(PayloadTooLarge, match="GUARD_MAX_IMAGE_BYTES"):
        decode_image(sample_bytes("t1"), max_bytes=1000)


def test_animated_gif_rejected_unless_allowed() -> None:
    frames = [Image.new("RGB", (32, 32), colour) for colour in ("red", "blue", "green")]
    data = _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50, loop=0)
    with pytest.raises(InvalidInput, match="3 frames"):
        decode_image(data)
    decoded = decode_image(data, allow_multiframe=True)
    assert decoded.rgb.shape == (32, 32, 3)


def test_not_an_image() -> None:
    with pytest.raises(UnsupportedMedia):
        decode_image(b"%PDF-1.7 not an image at all")


def test_cmyk_jpeg_becomes_rgb() -> None:
    cmyk = Image.new("CMYK", (40, 30), (0, 255, 255, 0))  # pure red in CMYK
    decoded = decode_image(_save(cmyk, "JPEG", quality=95))
    assert decoded.rgb.shape == (30, 40, 3)
    red, green, blue = decoded.rgb[15, 20].astype(int)
    assert red > 200 and green < 60 and blue < 60


def test_corrupt_cmyk_jpeg_is_invalid() -> None:
    data = _save(Image.new("CMYK", (400, 300), (10, 200, 30, 5)), "JPEG")
    with pytest.raises(InvalidInput):
        decode_image(data[: len(data) // 3])


def test_sixteen_bit_png_becomes_8_bit_rgb() -> None:
    ramp = (np.arange(64, dtype=np.uint16)[None, :] * 1024).repeat(8, axis=0)
    decoded = decode_image(_save(Image.fromarray(ramp), "PNG"))
    assert decoded.rgb.dtype == np.uint8 and decoded.rgb.shape == (8, 64, 3)
    assert decoded.rgb[0, 0, 0] == 0 and decoded.rgb[0, -1, 0] == round(63 * 1024 * 255 / 65535)


def test_corrupt_sixteen_bit_png_is_invalid() -> None:
    noise = np.random.default_rng(1).integers(0, 65535, (256, 256), dtype=np.uint16)
    data = _save(Image.fromarray(noise), "PNG")
    with pytest.raises(InvalidInput):
        decode_image(data[:-200])


def test_palette_with_transparency_and_alpha_composite_on_white() -> None:
    rgba = Image.new("RGBA", (10, 10), (255, 0, 0, 0))
    assert decode_image(_save(rgba, "PNG")).rgb[0, 0].tolist() == [255, 255, 255]
    palette = rgba.convert("P")
    assert decode_image(_save(palette, "PNG")).rgb.shape == (10, 10, 3)


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), "white")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    decoded = decode_image(_save(image, "JPEG", exif=exif.tobytes()))
    assert decoded.rgb.shape == (40, 20, 3)


def test_content_hash_is_of_the_bytes() -> None:
    import hashlib

    data = sample_bytes("tom_hanks")
    assert decode_image(data).sha256 == hashlib.sha256(data).hexdigest()


def test_round_trip_formats() -> None:
    rgb = np.random.default_rng(0).integers(0, 255, (20, 30, 3), dtype=np.uint8)
    assert np.array_equal(decode_image(encode_image(rgb, "png")).rgb, rgb)
    assert decode_image(encode_image(rgb, "webp")).rgb.shape == rgb.shape
    assert output_format_for(".JPG") == "jpeg"
    with pytest.raises(InvalidInput):
        output_format_for(".gif")


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=4096))
def test_arbitrary_bytes_never_escape_as_other_errors(data: bytes) -> None:
    try:
        decoded = decode_image(data)
    except InvalidInput:
        return
    assert decoded.rgb.dtype == np.uint8 and decoded.rgb.ndim == 3


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=1, max_value=4000), st.binary(min_size=1, max_size=64))
def test_mangled_real_jpeg_never_escapes(cut: int, garbage: bytes) -> None:
    """No assert on purpose: the property is that decoding either succeeds or raises the typed
    ``InvalidInput``; any other exception escapes the ``suppress`` and fails the test."""
    data = sample_bytes("tom_hanks")
    mangled = data[: min(cut, len(data) - 1)] + garbage
    with contextlib.suppress(InvalidInput):
        decode_image(mangled)
