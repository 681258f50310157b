"""What a run of bytes is, by its content and never by its label: an image file, text, or
binary; and whether an image file has bytes after its end.

The gateway sniffs more formats than the guard decodes (:data:`guard.media.FORMATS`): an
upstream may read HEIC, AVIF, SVG, PSD or TGA, and an image the guard cannot read must still
be *noticed*, so that it refuses the request instead of letting it through unchecked. Where a
magic number is too weak to name a format, the caller's rule for long binary blobs applies
(:mod:`guard.api.gateway.strings`).
"""

from __future__ import annotations

import re

_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1", b"avif", b"avis")
_BMP_HEADER_SIZES = (12, 16, 40, 52, 56, 64, 108, 124)
_MAGIC = (
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a",
    b"GIF89a",
    b"II*\x00",  # TIFF
    b"MM\x00*",
    b"II+\x00",  # BigTIFF
    b"MM\x00+",
    b"\x00\x00\x00\x0cjP  \r\n\x87\n",  # JPEG 2000
    b"\xffO\xffQ",  # JPEG 2000 codestream
    b"\xff\x0a",  # JPEG XL codestream
    b"\x00\x00\x00\x0cJXL \r\n\x87\n",
    b"8BPS",  # Photoshop
    b"qoif",
    b"\x76\x2f\x31\x01",  # OpenEXR
    b"icns",
    b"DDS ",
    b"\x01\xda",  # SGI
    b"%PDF-",
    b"%!PS",  # PostScript, EPS
    b"\xc5\xd0\xd3\xc6",  # DOS EPS
    b"\x59\xa6\x6a\x95",  # Sun raster
    b"gimp xcf",
    b"#define ",  # XBM
    b"/* XPM */",
)
_NETPBM = re.compile(rb"P[1-7]\s+(#[^\n]*\n\s*)*\d")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_SVG_ELEMENT = re.compile(r"<([A-Za-z_][\w.\-]*:)?svg[\s/>]", re.I)


def looks_like_image(data: bytes) -> bool:
    """Whether ``data`` starts like a raster or vector image file a common decoder reads."""
    head = data[:64]
    return (
        head.startswith(_MAGIC)
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or (head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS)  # HEIC, AVIF
        or (
            head.startswith(b"BM")
            and len(head) >= 18
            and int.from_bytes(head[14:18], "little") in _BMP_HEADER_SIZES
        )
        or (head.startswith(b"\x00\x00\x01\x00") and len(head) >= 6 and head[4:6] != b"\x00\x00")
        or (head[:1] == b"\x0a" and head[1:2] in b"\x00\x02\x03\x04\x05" and head[2:3] == b"\x01")
        or bool(_NETPBM.match(head))
        or is_svg(data[:65536])
    )


def is_svg(data: bytes | str) -> bool:
    """SVG markup: the document's first element is ``svg`` (any namespace prefix), after an
    optional BOM, XML declaration, processing instructions, comments and DOCTYPE (internal
    subset included). A scanner, not a regex: nested repetition would backtrack without end."""
    text = (data.decode("utf-8", "replace") if isinstance(data, bytes) else data).lstrip("\ufeff")
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        head = text[position : position + 9]
        if head.startswith("<?"):
            after = _after(text, "?>", position + 2)
        elif head.startswith("<!--"):
            after = _after(text, "-->", position + 4)
        elif head.upper().startswith("<!DOCTYPE"):
            bracket, close = text.find("[", position), text.find(">", position)
            if 0 <= bracket < close:  # an internal subset may hold '>' of its own
                close = text.find(">", text.find("]", bracket))
            after = close + 1 if close >= 0 else -1
        else:
            return bool(_SVG_ELEMENT.match(text, position))
        if after < 0:
            return False
        position = after


def _after(text: str, marker: str, start: int) -> int:
    found = text.find(marker, start)
    return found + len(marker) if found >= 0 else -1


def as_text(data: bytes) -> str | None:
    """``data`` as text, or ``None`` for binary: not UTF-8, or holding control characters
    other than tab, line feed, form feed and carriage return."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _CONTROL.search(text) else text


def trailing_bytes(data: bytes) -> int:
    """How many bytes follow an image file's own end, found by walking its structure (PNG
    chunks to IEND, JPEG segments and scans to EOI, GIF blocks to the trailer, RIFF's declared
    size); 0 for formats without a walkable end. A decoder ignores bytes after the end; a
    lenient form or multipart reader upstream may find a second image there. A file that
    ends before its end counts as no trailing bytes: decoding it fails on its own."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        end = _png_end(data)
    elif data.startswith(b"\xff\xd8"):
        end = _jpeg_end(data)
    elif data.startswith((b"GIF87a", b"GIF89a")):
        end = _gif_end(data)
    elif data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        end = 8 + int.from_bytes(data[4:8], "little")
    else:
        return 0
    return max(0, len(data) - end) if end is not None else 0


def _png_end(data: bytes) -> int | None:
    position = 8
    while position + 12 <= len(data):
        length = int.from_bytes(data[position : position + 4], "big")
        kind = data[position + 4 : position + 8]
        position += 12 + length
        if kind == b"IEND":
            return position
    return None


def _jpeg_end(data: bytes) -> int | None:
    position = 2
    while position + 4 <= len(data):
        if data[position] != 0xFF:
            return None
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xD9:
            return position + 2
        if 0xD0 <= marker <= 0xD7 or marker == 0x01:
            position += 2
            continue
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        if marker == 0xDA:  # entropy-coded data: up to the next marker that is not stuffing
            while True:
                position = data.find(b"\xff", position)
                if position < 0 or position + 1 >= len(data):
                    return None
                following = data[position + 1]
                if following == 0x00 or 0xD0 <= following <= 0xD7 or following == 0xFF:
                    position += 1
                    continue
                break
    return None


def _gif_end(data: bytes) -> int | None:
    position = 13
    if data[10] & 0x80:
        position += 3 * (2 ** ((data[10] & 0x07) + 1))
    while position < len(data):
        block = data[position]
        if block == 0x3B:
            return position + 1
        if block == 0x2C:
            flags = data[position + 9] if position + 9 < len(data) else 0
            position += 10
            if flags & 0x80:
                position += 3 * (2 ** ((flags & 0x07) + 1))
            position += 1  # LZW minimum code size
        elif block == 0x21:
            position += 2
        else:
            return None
        while position < len(data) and data[position] != 0:  # data sub-blocks
            position += data[position] + 1
        position += 1
    return None
