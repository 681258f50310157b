"""Quickstart: the library API on the photos that installed packages ship.

    .venv/bin/python examples/quickstart.py [DATA_DIR]

Creates a data directory (default: a temporary one), blocks a public figure, enrolls a person
with consent, asks the guard three questions, then verifies the edited output, stamps an image
"another generator" made, and shows a stripped copy recovered through the watermark.
"""

from __future__ import annotations

import hashlib
import sys
import tempfile
from pathlib import Path

from guard import CheckRequest, EditRequest, Guard, Settings, StampRequest
from guard.bootstrap import initialise
from guard.media import decode_image, encode_image
from guard.samples import natural_photos, sample_bytes, sample_rgb


def main(data_dir: Path) -> None:
    settings = Settings(data_dir=data_dir)
    guard = Guard(settings)
    initialise(settings, guard.face_engine)  # the same as `guard init`

    # Block a public figure: one reference photo is enough to start.
    [hanks] = guard.faces_in(sample_bytes("tom_hanks"))
    guard.blocklists.update(
        lambda blocklist: blocklist.add_figure("tom-hanks", "Tom Hanks", [hanks.embedding])
    )

    # Enroll a person (the woman on the left of the group photo) and record her consent.
    t1 = sample_rgb("t1")
    portrait = encode_image(t1[150:886, 0:262], "jpeg")
    person = guard.registry.create_subject("acme", display_name="Model A")
    guard.registry.enroll(person.id, guard.faces_in(encode_image(t1[230:450, 20:230], "jpeg")))
    guard.registry.grant(
        person.id,
        grantee="acme/photo-app",
        scopes=["color_grade"],
        evidence_sha256=hashlib.sha256(b"the signed consent form").hexdigest(),
    )

    ask = CheckRequest(requester="acme/photo-app", operation="color_grade", image=portrait)
    print("her portrait:", guard.check(ask).verdict.value)
    hanks_ask = CheckRequest(
        requester="acme/photo-app", operation="color_grade", image=sample_bytes("tom_hanks")
    )
    print("Tom Hanks:", guard.check(hanks_ask).reason_codes)

    result = guard.edit(
        EditRequest(
            image=portrait,
            operation="color_grade",
            requester="acme/photo-app",
            params={"look": "warm"},
        )
    )
    print("edit:", result.decision.verdict.value, f"{len(result.image or b'')} bytes")
    assert result.image is not None and result.provenance is not None
    print("  watermark record:", result.provenance.record_id)
    print("  verify:", guard.verify(result.image).outcome.value)  # valid: signed by this guard

    # An image made by some other generator (here: scikit-image's coffee photo, no faces).
    made_elsewhere = encode_image(natural_photos()["coffee"], "png")
    stamped = guard.stamp(
        StampRequest(image=made_elsewhere, requester="acme/photo-app", generator="other-gen")
    )
    assert stamped.image is not None
    print("stamp:", stamped.decision.verdict.value, guard.verify(stamped.image).outcome.value)

    # A social network strips the manifest by re-encoding: the watermark still leads back to it.
    stripped = encode_image(decode_image(stamped.image).rgb, "jpeg", quality=80)
    report = guard.verify(stripped)
    print("stripped copy:", report.outcome.value, "via", report.recovered and report.recovered.via)
    guard.close()


if __name__ == "__main__":
    if len(sys.argv) > 1:
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory() as directory:
            main(Path(directory))
