"""``make demo``: the whole job end to end on real photos with the embedded defaults.

It creates a fresh data directory under the output folder (SQLite, development keys), builds a
blocklist holding two real public figures, enrolls one person from the group photo with a
consent grant, then runs three requests and prints each decision with its per-face explanation.
The allowed output is watermarked and C2PA-signed; the demo verifies it, then strips its metadata
the way a social network would (JPEG 75, half size) and shows the manifest recovered through the
watermark. Last, it asks Model A for consent the way an integrator would (a consent request) and
prints the single-use link to the person's own page, which `guard serve` serves.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from guard.bootstrap import initialise
from guard.cli.common import errors, out
from guard.cli.render import print_decision, print_verification
from guard.config import Settings
from guard.identity import build_from_folder
from guard.media import decode_image, encode_image
from guard.pipeline import Guard
from guard.requests import CheckRequest, EditRequest
from guard.samples import flip, half, sample_bytes, sample_rgb

TENANT = "demo-tenant"
REQUESTER = f"{TENANT}/photo-app"
# Regions of t1.jpg (y0, y1, x0, x1) around the woman on the left: one tight crop to enroll from,
# one wider portrait to edit. No other face falls inside either.
ENROLL_CROP = (230, 450, 20, 230)
PORTRAIT_CROP = (150, 886, 0, 262)
# Where `guard serve` listens by default: the consent link the demo prints points there.
DEMO_BASE_URL = "http://127.0.0.1:8080"


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _prepare_photos(out_dir: Path) -> dict[str, Path]:
    photos = out_dir / "photos"
    t1 = sample_rgb("t1")
    y0, y1, x0, x1 = ENROLL_CROP
    enroll = t1[y0:y1, x0:x1]
    y0, y1, x0, x1 = PORTRAIT_CROP
    portrait = t1[y0:y1, x0:x1]
    # The public figure as an uploader might send it: mirrored and re-compressed at quality 50.
    hanks = flip(sample_rgb("tom_hanks"))
    figures = out_dir / "figures"
    _write(figures / "tom-hanks" / "reference.png", sample_bytes("tom_hanks"))
    _write(
        figures / "tom-hanks" / "figure.json",
        json.dumps({"name": "Tom Hanks", "aliases": ["Thomas Jeffrey Hanks"]}).encode(),
    )
    _write(figures / "eileen-collins" / "reference.png", sample_bytes("astronaut"))
    _write(
        figures / "eileen-collins" / "figure.json",
        json.dumps({"name": "Eileen Collins", "aliases": []}).encode(),
    )
    return {
        "enroll": _write(photos / "model-a-enrollment.jpg", encode_image(enroll, "jpeg")),
        "portrait": _write(photos / "model-a-portrait.jpg", encode_image(portrait, "jpeg")),
        "hanks": _write(photos / "tom-hanks-upload.jpg", encode_image(hanks, "jpeg", quality=50)),
        "group": _write(photos / "group.jpg", sample_bytes("t1")),
        "figures": figures,
    }


def _ask_for_consent(
    guard: Guard, subject_id: str, photo: Path, data_dir: Path, console: Console
) -> None:
    """What an integrator does to have the person confirm on their own page: a consent request,
    whose single-use link is printed (docs/consent-pages.md)."""
    console.rule("4. Ask Model A for consent on their own page")
    asked = guard.registry.consent_requests.create(
        subject_id,
        tenant=TENANT,
        requester=REQUESTER,
        requester_display_name="Photo App (demo)",
        tenant_display_name="Demo Tenant",
        scopes=["relight", "background_blur"],
        grant_days=90,
        message="We would like to relight your portraits for the demo catalogue.",
    )
    console.print(
        f"consent request {asked.request.id} ({', '.join(asked.request.scopes)}, 90 days), "
        f"link valid until {asked.request.expires_at:%Y-%m-%d %H:%M} UTC. Start the service "
        f"with `GUARD_DATA_DIR={data_dir} guard serve`, then open (as the person would):"
    )
    console.print(f"[bold]{DEMO_BASE_URL}/consent/{asked.token}[/bold]", soft_wrap=True)
    console.print(
        f"and confirm with a photo of Model A ({photo}); afterwards the page gives "
        "the link to the person's own page (/me): grants, usage, withdraw, erase "
        "(docs/consent-pages.md)"
    )


def run_demo(out_dir: Path, console: Console | None = None) -> None:
    console = console or Console()
    data_dir = out_dir / "var"
    shutil.rmtree(data_dir, ignore_errors=True)
    settings = Settings(data_dir=data_dir, database_url="", blocklist_dir=None)
    guard = Guard(settings)
    report = initialise(settings, guard.face_engine)
    console.rule("[bold]Likeness Guard demo")
    console.print(
        f"data directory {data_dir} (SQLite {report.database}, dev keys, "
        f"{guard.face_engine.name} face engine, {guard.editor.name} editor)"
    )

    photos = _prepare_photos(out_dir)
    blocklist, problems = build_from_folder(photos["figures"], guard.face_engine)
    guard.blocklists.replace(blocklist)
    console.print(
        f"blocklist: {', '.join(f.name for f in blocklist.list_figures())} "
        f"({len(blocklist.index)} reference faces)"
        + (f"; {len(problems)} photo problem(s)" if problems else "")
    )

    subject = guard.registry.create_subject(TENANT, display_name="Model A")
    guard.registry.enroll(subject.id, guard.faces_in(photos["enroll"].read_bytes()))
    consent_document = _write(
        out_dir / "consent" / "model-a-consent.txt",
        f"Model A consents to edits by {REQUESTER}.\n".encode(),
    )
    grant = guard.registry.grant(
        subject.id,
        grantee=REQUESTER,
        scopes=["relight", "background_blur", "color_grade"],
        evidence_sha256=hashlib.sha256(consent_document.read_bytes()).hexdigest(),
        expires_at=datetime.now(UTC) + timedelta(days=30),
    )
    console.print(
        f"enrolled {subject.id} (Model A) from {photos['enroll'].name}; "
        f"grant {grant.id} to {REQUESTER} for {', '.join(grant.scopes)}"
    )

    console.rule("1. Model A's portrait, background blur (consented)")
    result = guard.edit(
        EditRequest(
            image=photos["portrait"].read_bytes(), operation="background_blur", requester=REQUESTER
        )
    )
    print_decision(result.input_decision)
    if result.output_decision is not None:
        print_decision(result.output_decision)
    if result.image is not None:
        edited = _write(out_dir / "model-a-background-blur.png", result.image)
        console.print(f"[bold]output:[/bold] {edited}")
        console.rule("1b. Verify the output, then as a social network re-posts it")
        print_verification(guard.verify(result.image))
        reposted = encode_image(half(decode_image(result.image).rgb), "jpeg", quality=75)
        stripped = _write(out_dir / "model-a-reposted.jpg", reposted)
        console.print(f"[bold]{stripped}[/bold] (JPEG 75, half size, metadata gone):")
        print_verification(guard.verify(reposted))

    console.rule("2. Tom Hanks, mirrored and re-compressed (public figure)")
    result = guard.edit(
        EditRequest(image=photos["hanks"].read_bytes(), operation="relight", requester=REQUESTER)
    )
    print_decision(result.decision)

    console.rule("3. The group photo (one consented person, five unknown)")
    decision = guard.check(
        CheckRequest(
            requester=REQUESTER, operation="background_blur", image=photos["group"].read_bytes()
        )
    )
    print_decision(decision)

    _ask_for_consent(guard, subject.id, photos["enroll"], data_dir, console)

    console.rule("outputs")
    console.print(f"photos used: {photos['portrait'].parent}")
    console.print(
        f"edited image (watermarked, C2PA-signed): {out_dir / 'model-a-background-blur.png'}"
    )
    console.print(f"re-posted copy (no metadata): {out_dir / 'model-a-reposted.jpg'}")
    console.print(f"data directory: {data_dir}")
    size = guard.audit.size()
    console.print(
        f"audit log: {size} entries (every decision and consent change), signed checkpoints "
        f"verifiable with the public key {data_dir / 'keys' / 'audit' / 'checkpoint.vkey'} "
        "(`guard audit export --out audit.jsonl`, then `guard audit verify audit.jsonl --key ...`)"
    )
    console.print(
        f"the same guard over HTTP: `GUARD_DATA_DIR={data_dir} guard keys create --tenant "
        f"{TENANT} --role integrator`, then `GUARD_DATA_DIR={data_dir} guard serve` "
        "(docs/service.md)"
    )
    console.print(
        f"the compliance console: `GUARD_DATA_DIR={data_dir} guard keys create --tenant {TENANT} "
        f"--role auditor`, then sign in with that key at {DEMO_BASE_URL}/console/sign-in: these "
        "decisions, Model A's report and proofs you can verify in the browser (docs/console.md)"
    )
    guard.close()


def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Where the demo writes its files.")] = Path(
        "demo-out"
    ),
) -> None:
    """Run the end-to-end demo on the photos shipped with insightface and scikit-image."""
    with errors():
        run_demo(out_dir, out)
