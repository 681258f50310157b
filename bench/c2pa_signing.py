"""C2PA cost at 1024²: sign and read (validate) time and bytes added, thumbnails off and on.

Baseline: encoding the same pixels to the same format without a manifest (what an output
costs anyway). "sign" includes the read-back the guard does to store the manifest it signed.
Uses a throwaway development signing identity. Prints a Markdown table.

Usage: ``python bench/c2pa_signing.py``
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import cv2
import numpy as np
from timing import median_ms

from guard.media import OutputFormat, encode_image
from guard.policy import Decision, Verdict
from guard.provenance import (
    ManifestFacts,
    SigningCredentials,
    SoftwareAgent,
    create_dev_signing_identity,
    read_manifest,
    sign_image,
)
from guard.samples import sample_rgb

MIME = {"jpeg": "image/jpeg", "png": "image/png", "webp": "image/webp"}


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        files = create_dev_signing_identity(Path(folder))
        credentials = SigningCredentials.from_pem(files.chain.read_bytes(), files.key.read_bytes())
    rgb = np.asarray(cv2.resize(sample_rgb("t1"), (1024, 1024), interpolation=cv2.INTER_AREA))
    decision = Decision(Verdict.ALLOW, (), "default", "bench", "output")
    facts = ManifestFacts(
        title="bench",
        software_agent=SoftwareAgent("classic", "1.0.0"),
        operation="relight",
        decision=decision,
        watermark_algorithm="io.likenessguard.watermark.lg-tiled-ss.1",
        record_id=0xC0FFEE,
    )
    print(
        "| format | thumbnails | encode ms (baseline) | sign ms | vs encode "
        "| read+validate ms | KiB added |"
    )
    print("|---|---|---|---|---|---|---|")
    formats: tuple[OutputFormat, ...] = ("jpeg", "png", "webp")
    for fmt in formats:
        encoded = encode_image(rgb, fmt)
        encode_ms = median_ms(lambda fmt=fmt: encode_image(rgb, fmt), repeats=3)
        for thumbnails in (False, True):

            def sign(data: bytes = encoded, fmt: str = fmt, thumbs: bool = thumbnails) -> bytes:
                return sign_image(data, MIME[fmt], facts, credentials, thumbnails=thumbs).data

            signed = sign()
            sign_ms = median_ms(sign)
            read_ms = median_ms(lambda signed=signed, fmt=fmt: read_manifest(signed, MIME[fmt]))
            added = (len(signed) - len(encoded)) / 1024
            print(
                f"| {fmt} | {'on' if thumbnails else 'off'} | {encode_ms:.0f} | {sign_ms:.1f} | "
                f"{sign_ms / encode_ms:.2f}× | {read_ms:.1f} | {added:.1f} |"
            )


if __name__ == "__main__":
    main()
