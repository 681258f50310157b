"""What a piece of a request is, read by its content and never by its label: an image (raw
bytes, base64, a data URL), a URL, JSON nested in a string, or plain text.

The gateway sniffs more formats than the guard decodes (:data:`guard.media.FORMATS`): an
upstream may read HEIC, AVIF, SVG or PSD, and an image the guard cannot read must still be
*noticed*, so that it refuses the request instead of letting it through unchecked.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import urllib.parse
from dataclasses import dataclass
from typing import Literal

_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")
_BMP_HEADER_SIZES = (12, 16, 40, 52, 56, 64, 108, 124)
_SVG = re.compile(
    rb"^\s*(<\?xml[^>]*>\s*)?(<!--.*?-->\s*)*(<!DOCTYPE svg[^>]*>\s*)?<svg[\s>]", re.S | re.I
)


def looks_like_image(data: bytes) -> bool:
    """Whether ``data`` starts like a raster or vector image file any common decoder reads."""
    head = data[:64]
    return (
        head.startswith(b"\x89PNG\r\n\x1a\n")
        or head.startswith(b"\xff\xd8\xff")  # JPEG
        or head.startswith((b"GIF87a", b"GIF89a"))
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"))  # TIFF, BigTIFF
        or (head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS)  # HEIC, AVIF
        or head.startswith(b"\x00\x00\x00\x0cjP  \r\n\x87\n")  # JPEG 2000
        or head.startswith((b"\xff\x0a", b"\x00\x00\x00\x0cJXL \r\n\x87\n"))  # JPEG XL
        or head.startswith((b"8BPS", b"qoif", b"\x76\x2f\x31\x01"))  # PSD, QOI, OpenEXR
        or (
            head.startswith(b"BM")
            and len(head) >= 18
            and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES
        )
        or (head.startswith(b"\x00\x00\x01\x00") and len(head) >= 6 and head[4:6] != b"\x00\x00")
        or bool(re.match(rb"P[1-7]\s+(#[^\n]*\n\s*)*\d", head))  # Netpbm
        or bool(_SVG.match(data[:4096]))
    )


StringKind = Literal["image", "url", "json", "text"]


@dataclass(frozen=True)
class ReadString:
    """What one string in a request is. ``image`` holds the decoded bytes (``kind="image"``);
    ``nested`` the parsed JSON (``kind="json"``)."""

    kind: StringKind
    image: bytes = b""
    nested: object = None


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+|//[^\s/]+/\S*")
_BASE64 = re.compile(r"[A-Za-z0-9+/\-_\s]+={0,2}\s*")
_BASE64_RUN = re.compile(r"[A-Za-z0-9+/\-_]{96,}={0,2}")
_DATA_URL = re.compile(r"data:[^,\s]{0,200},", re.I)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_MIN_BASE64 = 16  # shorter than any image file's base64
_NESTING = 4


def read_string(value: str, *, depth: int = 0) -> ReadString:
    """Classify a string: an image (base64, URL-safe base64, a data URL, SVG markup), a URL
    (any scheme: the upstream may fetch it), JSON (an object or array; walked like the body)
    or text. Text is searched for embedded images too (a data URL or a long base64 run inside
    a prompt), so that none hides in prose."""
    stripped = value.strip()
    if stripped[:5].lower() == "data:":
        return ReadString("image", image=_data_url_payload(stripped))
    if _URL.fullmatch(stripped):
        return ReadString("url")
    if len(stripped) >= _MIN_BASE64 and _BASE64.fullmatch(stripped):
        decoded = decode_base64(stripped)
        if decoded is not None and looks_like_image(decoded):
            return ReadString("image", image=decoded)
        if decoded is not None and depth < _NESTING:
            inner = as_text(decoded)
            if inner is not None and _is_or_holds_image(read_string(inner, depth=depth + 1)):
                return ReadString("image", image=decoded)
    if stripped[:1] in ("{", "[") and depth < _NESTING:
        try:
            return ReadString("json", nested=json.loads(stripped))
        except (ValueError, RecursionError):
            pass
    encoded = value.encode("utf-8", "surrogatepass")
    if looks_like_image(encoded):  # SVG markup, or image bytes smuggled as text
        return ReadString("image", image=encoded)
    if depth < _NESTING and _embeds_image(value, depth):
        return ReadString("image", image=encoded)
    return ReadString("text")


def holds_image(value: object) -> bool:
    """Whether a parsed JSON value has an image anywhere inside it."""
    if isinstance(value, dict):
        return any(holds_image(item) for item in value.values())
    if isinstance(value, list):
        return any(holds_image(item) for item in value)
    return isinstance(value, str) and _is_or_holds_image(read_string(value))


def _is_or_holds_image(read: ReadString) -> bool:
    return read.kind == "image" or (read.kind == "json" and holds_image(read.nested))


def as_text(data: bytes) -> str | None:
    """``data`` as text, or ``None`` for binary: not UTF-8, or holding control characters
    other than tab, line feed, form feed and carriage return."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _CONTROL.search(text) else text


def decode_base64(value: str) -> bytes | None:
    """Decode standard or URL-safe base64, with or without padding and line breaks, as lenient
    decoders upstream would (``None``: not base64)."""
    compact = "".join(value.split())
    compact += "=" * (-len(compact) % 4)
    alphabet_safe = "-" in compact or "_" in compact
    try:
        if alphabet_safe:
            return base64.b64decode(compact, altchars=b"-_", validate=True)
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def _data_url_payload(value: str) -> bytes:
    """The bytes of a data URL. Any data URL counts as an image: an upstream given one in an
    image field decodes it whatever its label says, and one the guard cannot decode must
    refuse, not pass."""
    header, _, payload = value.partition(",")
    if header.lower().endswith(";base64"):
        return decode_base64(payload) or payload.encode("utf-8", "surrogatepass")
    return urllib.parse.unquote_to_bytes(payload)


def _embeds_image(text: str, depth: int) -> bool:
    for found in _DATA_URL.finditer(text):
        tail = text[found.start() :].split(None, 1)[0].rstrip("\"')>]},;")
        if read_string(tail, depth=depth + 1).kind == "image":
            return True
    for run in _BASE64_RUN.finditer(text):
        decoded = decode_base64(run.group())
        if decoded is not None and looks_like_image(decoded):
            return True
    return False
