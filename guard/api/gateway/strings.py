"""What a string in a request or an answer is: an image (base64, a data URL, SVG markup, a
long base64 blob of binary), a URL, JSON nested in a string, or plain text.

Decoding is as lenient as the most lenient reader upstream: base64 in either alphabet, with
or without padding, wrapped in lines or sprinkled with characters a lenient decoder drops
(Python's and Node's default decoders skip them). Text is searched for images too: a data URL
or a base64 run inside prose, joined across line breaks. A base64 blob of at least
:data:`BLOB_BYTES` that decodes to binary counts as an image whatever its magic number: an
upstream may read formats the sniffer does not name, and no field of the known APIs carries
other binary that way.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
import urllib.parse
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from guard.api.gateway.sniff import as_text, is_svg, looks_like_image

StringKind = Literal["image", "url", "json", "text"]
BLOB_BYTES = 1024
BLOB_ENTROPY = 6.0  # bits a byte: compressed images 7.5-8, raw photo pixels 6.5-7.8
NESTING = 4
MAX_DEPTH = 64
"""JSON deeper than this is refused: walks are recursive, and no API nests this deep."""


@dataclass(frozen=True)
class ReadString:
    """What one string is. ``image`` holds the decoded bytes (``kind="image"``); ``nested``
    the parsed JSON (``kind="json"``)."""

    kind: StringKind
    image: bytes = b""
    nested: object = None


_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://\S+|//[^\s/]+/\S*")
_BASE64_CHARS = re.compile(r"[A-Za-z0-9+/\-_=]")
_STRICT_BASE64 = re.compile(r"[A-Za-z0-9+/\-_\s]+={0,2}\s*")
# A base64 run in prose, wrapped lines joined; it starts after a non-base64 character (so the
# search does not restart inside a run) and continues over line breaks.
_BASE64_RUN = re.compile(
    r"(?<![A-Za-z0-9+/\-_])[A-Za-z0-9+/\-_]{40,}(?:={0,2}\s+[A-Za-z0-9+/\-_]{8,})*={0,2}"
)
_DATA_URL = re.compile(r"data:[^,\s]{0,200},", re.I)
_SVG_INSIDE = re.compile(r"<([A-Za-z_][\w.\-]*:)?svg[\s/>]", re.I)
_IMAGE_FILE = re.compile(
    r"\S*/\S*\.(?:png|jpe?g|jfif|webp|gif|avif|heic|heif|bmp|tiff?|svg|jxl|jp2)(?:[?#]\S*)?", re.I
)
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})+")
_MIN_BASE64 = 16  # shorter than any image file's base64
_MOSTLY = 0.95


def read_string(value: str, *, depth: int = 0) -> ReadString:
    """Classify a string (see the module docstring). URLs of any scheme count: the upstream
    may fetch them."""
    stripped = value.strip()
    if stripped[:5].lower() == "data:":
        return ReadString("image", image=_data_url_payload(stripped))
    if _URL.fullmatch(stripped):
        return ReadString("url")
    if len(stripped) >= _MIN_BASE64:
        decoded = _strict_base64_of(stripped)
        if decoded is not None and _binary_image(decoded, depth):
            return ReadString("image", image=decoded)
    if stripped[:1] in ("{", "[") and depth < NESTING:
        try:
            return ReadString("json", nested=json.loads(stripped))
        except (ValueError, RecursionError):
            pass
    encoded = value.encode("utf-8", "surrogatepass")
    if looks_like_image(encoded):  # SVG markup, or image bytes smuggled as text
        return ReadString("image", image=encoded)
    lenient = _lenient_base64_of(stripped)
    if lenient is not None and _binary_image(lenient, depth):
        return ReadString("image", image=lenient)
    if depth < NESTING and _embeds_image(value, depth):
        return ReadString("image", image=encoded)
    return ReadString("text")


def names_image_file(value: str) -> bool:
    """A path or URL of an image file (``/files/out.png``, ``cdn.example.com/x.webp?sig=…``):
    what an answer may point its client at instead of carrying the image."""
    return bool(_IMAGE_FILE.fullmatch(value.strip()))


def holds_image(value: object, depth: int = 0) -> bool:
    """Whether a parsed JSON value has an image anywhere inside it (keys included)."""
    if depth > MAX_DEPTH:
        return True  # too deep to look through: an upstream might; count it as one
    if isinstance(value, dict):
        return any(
            holds_image(key, depth + 1) or holds_image(item, depth + 1)
            for key, item in value.items()
        )
    if isinstance(value, list):
        return byte_array(value) is not None or any(holds_image(i, depth + 1) for i in value)
    return isinstance(value, str) and _is_or_holds_image(read_string(value))


def byte_array(value: list[object]) -> bytes | None:
    """A JSON array of integers 0–255 long enough to be a file (Jackson reads one into a
    ``byte[]``, Node's ``Buffer.from`` too) whose bytes are an image or a binary blob."""
    if len(value) < 64 or not all(type(v) is int and 0 <= v <= 255 for v in value):
        return None
    data = bytes(value)  # type: ignore[arg-type]
    return data if looks_like_image(data) or is_blob(data) else None


def decode_base64(value: str) -> bytes | None:
    """Strict-alphabet base64 (standard or URL-safe), padding and line breaks optional
    (``None``: not base64)."""
    compact = "".join(value.split())
    compact += "=" * (-len(compact) % 4)
    try:
        if "-" in compact or "_" in compact:
            return base64.b64decode(compact, altchars=b"-_", validate=True)
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        return None


def _strict_base64_of(value: str) -> bytes | None:
    """Hex (a string of hex digits only is read as hex, not as base64 that happens to use
    few letters) or strict base64."""
    if _HEX.fullmatch(value):
        return bytes.fromhex(value)
    if _STRICT_BASE64.fullmatch(value):
        return decode_base64(value)
    return None


def _lenient_base64_of(value: str) -> bytes | None:
    """For a string that is mostly base64, what a lenient decoder that drops the other
    characters makes of it."""
    kept = "".join(_BASE64_CHARS.findall(value))
    if len(kept) < BLOB_BYTES or len(kept) < _MOSTLY * len("".join(value.split())):
        return None
    return decode_base64(kept.rstrip("=").replace("=", ""))


def _binary_image(decoded: bytes, depth: int) -> bool:
    if looks_like_image(decoded):
        return True
    inner = as_text(decoded)
    if inner is None:
        return is_blob(decoded)
    return depth < NESTING and _is_or_holds_image(read_string(inner, depth=depth + 1))


def is_blob(data: bytes) -> bool:
    """Binary the size and density of an image file: at least :data:`BLOB_BYTES`, with the
    byte entropy of image data (``BLOB_ENTROPY``). Long runs of one letter, hex strings
    (at most 5.3 bits a byte once read as base64) and ids do not qualify."""
    if len(data) < BLOB_BYTES:
        return False
    sample = data[:65536]
    counts = Counter(sample)
    entropy = -sum(n / len(sample) * math.log2(n / len(sample)) for n in counts.values())
    return entropy >= BLOB_ENTROPY


def _is_or_holds_image(read: ReadString) -> bool:
    return read.kind == "image" or (read.kind == "json" and holds_image(read.nested))


def _data_url_payload(value: str) -> bytes:
    """The bytes of a data URL. Any data URL counts as an image: an upstream given one in an
    image field decodes it whatever its label says, and one the guard cannot decode must
    refuse, not pass."""
    header, _, payload = value.partition(",")
    if header.lower().endswith(";base64"):
        decoded = _strict_base64_of(payload) or _lenient_base64_of(payload)
        return decoded or payload.encode("utf-8", "surrogatepass")
    return urllib.parse.unquote_to_bytes(payload)


def _embeds_image(text: str, depth: int) -> bool:
    if _SVG_INSIDE.search(text) and is_svg(text[_SVG_INSIDE.search(text).start() :]):  # type: ignore[union-attr]
        return True
    for found in _DATA_URL.finditer(text):
        tail = text[found.start() :].split(None, 1)[0].rstrip("\"')>]},;")
        if read_string(tail, depth=depth + 1).kind == "image":
            return True
    for run in _BASE64_RUN.finditer(text):
        decoded = decode_base64(run.group())
        if decoded is not None and _binary_image(decoded, depth + 1):
            return True
    return False
