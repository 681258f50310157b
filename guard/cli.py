"""The ``guard`` command: parses arguments, calls the library, prints. No logic of its own.

Exit codes: 0 success / allowed, 1 denied, 2 bad input or usage, 3 unavailable or misconfigured.
``guard verify`` has its own: 0 valid or recovered, 1 tampered or not from this guard, 2 error.
Every command takes ``--json`` for machine-readable output.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from guard.config import Settings
from guard.errors import ConfigurationError, EditTimedOut, GuardError, InvalidInput, Unavailable
from guard.identity import PublicFigure
from guard.policy import Decision, Verdict

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Likeness Guard")
subjects_app = typer.Typer(no_args_is_help=True, help="People in the consent registry.")
consent_app = typer.Typer(no_args_is_help=True, help="Consent grants.")
blocklist_app = typer.Typer(no_args_is_help=True, help="The public-figure blocklist.")
keys_app = typer.Typer(
    no_args_is_help=True, help="Development keys, signing credentials and API keys."
)
app.add_typer(keys_app, name="keys")
audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log.")
app.add_typer(audit_app, name="audit")
app.add_typer(subjects_app, name="subjects")
app.add_typer(consent_app, name="consent")
app.add_typer(blocklist_app, name="blocklist")
policy_app = typer.Typer(no_args_is_help=True, help="Policy files.")
app.add_typer(policy_app, name="policy")

# Pipes and CI logs get a wide fixed width so tables of ids are not truncated.
out = Console(width=None if sys.stdout.isatty() else 130)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 130)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
EXIT_DENIED, EXIT_INVALID, EXIT_UNAVAILABLE = 1, 2, 3


def _guard(**overrides: Any) -> Any:
    from guard.pipeline import Guard

    return Guard(Settings(**overrides))


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decision):
        return value.to_dict()
    if is_dataclass(value) and not isinstance(value, type):
        return _jsonable(asdict(value))
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    return value


def _emit_json(value: Any) -> None:
    sys.stdout.write(json.dumps(_jsonable(value), indent=2, sort_keys=True) + "\n")


@contextmanager
def _errors() -> Iterator[None]:
    """Turn guard errors into one clear line and an exit code."""
    try:
        yield
    except InvalidInput as exc:
        err.print(f"[red]error ({exc.code}):[/red] {exc.message}")
        raise typer.Exit(EXIT_INVALID) from exc
    except (Unavailable, ConfigurationError, EditTimedOut) as exc:
        err.print(f"[red]error ({exc.code}):[/red] {exc.message}")
        raise typer.Exit(EXIT_UNAVAILABLE) from exc
    except GuardError as exc:
        err.print(f"[red]error ({exc.code}):[/red] {exc.message}")
        raise typer.Exit(EXIT_INVALID) from exc


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc


def print_decision(decision: Decision) -> None:
    colour = "red" if decision.verdict is Verdict.DENY else "green"
    out.print(
        f"[bold {colour}]{decision.verdict.value.upper()}[/bold {colour}] "
        f"({decision.stage} stage, policy {decision.policy_id} v{decision.policy_version}, "
        f"{decision.decision_id})"
    )
    if decision.faces:
        table = Table("face", "box x0,y0,x1,y1", "who", "similarity", "verdict", "reason")
        for face in decision.faces:
            reason = face.reasons[0]
            who = reason.evidence.get("figure_id") or reason.evidence.get("subject_id") or "unknown"
            similarity = reason.evidence.get("similarity")
            colour = "red" if face.verdict is Verdict.DENY else "green"
            table.add_row(
                str(face.face_index),
                ",".join(map(str, face.bbox)),
                str(who),
                f"{similarity:.3f}" if isinstance(similarity, float) else "",
                f"[{colour}]{face.verdict.value}[/{colour}]",
                reason.code.value,
            )
        out.print(table)
    for reason in decision.reasons:
        if "face_index" not in reason.evidence or "output_face_index" in reason.evidence:
            out.print(f"  {reason.code.value}: {reason.message}")
    if decision.conditions:
        out.print(f"  conditions: {', '.join(decision.conditions)}")


# init ---------------------------------------------------------------------------------------


@app.command()
def init(json_output: JsonFlag = False) -> None:
    """Create or upgrade the data directory: schema, dev keys, empty blocklist."""
    from guard.bootstrap import initialise
    from guard.faces import create_face_engine

    with _errors():
        settings = Settings()
        report = initialise(settings, create_face_engine(settings))
    if json_output:
        _emit_json(report)
        return
    out.print(f"database {report.database} at schema {report.schema_revision}")
    for path in report.keys_created:
        out.print(f"created development key {path} (keep it secret; back it up)")
    if report.blocklist_created:
        out.print(f"created an empty blocklist in {report.blocklist_dir}")
    _print_signing(report.signing)


def _print_signing(signing: Any) -> None:
    from guard.provenance import DEV_CA_NOTICE

    if signing is None or not signing.created:
        return
    out.print(f"created a development C2PA CA {signing.ca} and signing certificate {signing.chain}")
    out.print(f"[yellow]{DEV_CA_NOTICE}[/yellow]")


@keys_app.command("init")
def keys_init(json_output: JsonFlag = False) -> None:
    """Create missing development keys: template, HMAC and a local C2PA signing identity."""
    from guard.bootstrap import create_keys

    with _errors():
        created, signing = create_keys(Settings())
    if json_output:
        _emit_json({"keys_created": created, "signing": signing})
        return
    for path in created:
        out.print(f"created development key {path} (keep it secret; back it up)")
    if signing is not None and not signing.created:
        out.print(f"C2PA signing credentials already exist in {signing.directory}")
    _print_signing(signing)


def _api_keys() -> Any:
    from guard.api import ApiKeyStore
    from guard.db import Database

    settings = Settings()
    database = Database(settings.database_url)
    database.require_schema()
    return ApiKeyStore(database)


@keys_app.command("create")
def keys_create(
    tenant: Annotated[str, typer.Option(help="Tenant the key acts for.")],
    role: Annotated[str, typer.Option(help="admin, integrator or auditor.")],
    requester: Annotated[
        str | None,
        typer.Option(help="Requester id inside the tenant (default: the tenant): the grantee."),
    ] = None,
    label: Annotated[str | None, typer.Option(help="A note: who holds the key.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Create an API key for the HTTP service. The key is shown once; only its hash is kept."""
    with _errors():
        issued = _api_keys().create(tenant=tenant, role=role, requester=requester, label=label)
    if json_output:
        _emit_json({"token": issued.token, "key": issued.key})
        return
    out.print(issued.token)
    err.print(
        f"key {issued.key.id}: tenant {issued.key.tenant}, role {issued.key.role.value}, "
        f"requester {issued.key.requester}. Store it now: it cannot be shown again."
    )


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """List API keys (ids, tenants, roles; never secrets)."""
    with _errors():
        keys = _api_keys().list_keys(tenant)
    if json_output:
        _emit_json(keys)
        return
    table = Table("id", "tenant", "role", "requester", "label", "created", "revoked")
    for key in keys:
        table.add_row(
            key.id,
            key.tenant,
            key.role.value,
            key.requester,
            key.label or "",
            key.created_at.isoformat(timespec="seconds"),
            key.revoked_at.isoformat(timespec="seconds") if key.revoked_at else "",
        )
    out.print(table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, json_output: JsonFlag = False) -> None:
    """Revoke an API key: every later request with it gets 401."""
    with _errors():
        key = _api_keys().revoke(key_id)
    _emit_json(key) if json_output else out.print(f"revoked API key {key.id}")


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the HTTP service (settings from GUARD_* variables / guard.toml; run `guard init`
    first). With several workers, set GUARD_REDIS_URL so rate limits are shared."""
    from guard.api.server import serve as run_service

    settings = Settings()
    if workers > 1 and not settings.redis_url:
        err.print(
            "[yellow]warning:[/yellow] GUARD_REDIS_URL is not set: each of the "
            f"{workers} workers keeps its own rate limits and usage counters"
        )
    with _errors():
        run_service(host=host, port=port, workers=workers, log_level=log_level)


# subjects -----------------------------------------------------------------------------------


@subjects_app.command("add")
def subjects_add(
    tenant: Annotated[str, typer.Option(help="Tenant the subject belongs to.")] = "default",
    name: Annotated[str | None, typer.Option(help="Optional display name.")] = None,
    public_figure: Annotated[
        str | None, typer.Option(help="Blocklist figure id this person is (verified by you).")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Register a person; prints the pseudonymous subject id."""
    with _errors():
        subject = _guard().registry.create_subject(
            tenant, display_name=name, public_figure_id=public_figure
        )
    _emit_json(subject) if json_output else out.print(subject.id)


@subjects_app.command("enroll")
def subjects_enroll(
    subject_id: str,
    photos: Annotated[list[Path], typer.Argument(help="Photos showing only this person.")],
    json_output: JsonFlag = False,
) -> None:
    """Enroll face templates from photos (each must show exactly one face)."""
    with _errors():
        guard = _guard()
        template_ids = []
        for photo in photos:
            faces = guard.faces_in(_read(photo))
            if len(faces) != 1:
                raise InvalidInput(
                    f"{photo} shows {len(faces)} faces; an enrollment photo must show exactly one"
                )
            template_ids += guard.registry.enroll(subject_id, faces)
    if json_output:
        _emit_json({"subject_id": subject_id, "templates": len(template_ids)})
    else:
        out.print(f"enrolled {len(template_ids)} template(s) for {subject_id}")


@subjects_app.command("list")
def subjects_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """List subjects (ids, names, template counts; never the templates)."""
    with _errors():
        subjects = _guard().registry.list_subjects(tenant)
    if json_output:
        _emit_json(subjects)
        return
    table = Table("id", "tenant", "name", "public figure", "templates", "created")
    for s in subjects:
        table.add_row(
            s.id,
            s.tenant,
            s.display_name or "",
            s.public_figure_id or "",
            str(s.template_count),
            s.created_at.isoformat(timespec="seconds"),
        )
    out.print(table)


@subjects_app.command("erase")
def subjects_erase(
    subject_id: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    json_output: JsonFlag = False,
) -> None:
    """Erase a person: templates (database and index), grants and the subject row."""
    if not yes:
        typer.confirm(f"Erase {subject_id} and all their templates and grants?", abort=True)
    with _errors():
        erasure = _guard().registry.erase(subject_id)
    if json_output:
        _emit_json(erasure)
    else:
        out.print(
            f"erased {subject_id}: {erasure.templates_removed} template(s), "
            f"{erasure.grants_removed} grant(s); audit reference {erasure.subject_ref[:16]}…"
        )


# consent ------------------------------------------------------------------------------------


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"{option} must be an ISO 8601 date-time, got {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@consent_app.command("grant")
def consent_grant(
    subject_id: str,
    grantee: Annotated[str, typer.Option("--to", help="Tenant/app/user id receiving consent.")],
    scope: Annotated[list[str], typer.Option(help="Operation granted (repeat for several).")],
    evidence: Annotated[
        Path | None, typer.Option(help="The signed consent document (only its SHA-256 is kept).")
    ] = None,
    evidence_sha256: Annotated[str | None, typer.Option(help="SHA-256 of that document.")] = None,
    not_before: Annotated[str | None, typer.Option(help="ISO 8601 start (default now).")] = None,
    expires: Annotated[str | None, typer.Option(help="ISO 8601 expiry.")] = None,
    days: Annotated[int | None, typer.Option(help="Expire this many days from now.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Record consent: SUBJECT allows GRANTEE the given operations."""
    with _errors():
        if (evidence is None) == (evidence_sha256 is None):
            raise InvalidInput("give exactly one of --evidence FILE or --evidence-sha256 HEX")
        digest = evidence_sha256 or hashlib.sha256(_read(evidence)).hexdigest()  # type: ignore[arg-type]
        expires_at = _when(expires, "--expires")
        if days is not None:
            expires_at = datetime.now(UTC) + timedelta(days=days)
        grant = _guard().registry.grant(
            subject_id,
            grantee=grantee,
            scopes=scope,
            evidence_sha256=digest,
            not_before=_when(not_before, "--not-before"),
            expires_at=expires_at,
        )
    _emit_json(grant) if json_output else out.print(grant.id)


@consent_app.command("revoke")
def consent_revoke(grant_id: str, json_output: JsonFlag = False) -> None:
    """Revoke a grant now; every later check denies with consent_revoked."""
    with _errors():
        grant = _guard().registry.revoke(grant_id)
    _emit_json(grant) if json_output else out.print(f"revoked {grant.id}")


@consent_app.command("list")
def consent_list(
    subject: Annotated[str | None, typer.Option(help="Only this subject's grants.")] = None,
    grantee: Annotated[str | None, typer.Option(help="Only grants to this grantee.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """List grants with their status now."""
    with _errors():
        grants = _guard().registry.list_grants(subject_id=subject, grantee=grantee)
    if json_output:
        _emit_json(grants)
        return
    now = datetime.now(UTC)
    table = Table("id", "subject", "grantee", "scopes", "status", "expires")
    for g in grants:
        table.add_row(
            g.id,
            g.subject_id,
            g.grantee,
            ",".join(g.scopes),
            g.status_at(now).value,
            g.expires_at.isoformat(timespec="seconds") if g.expires_at else "never",
        )
    out.print(table)


# blocklist ----------------------------------------------------------------------------------


def _progress() -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )


def _figure_json(figure: PublicFigure) -> dict[str, Any]:
    """A figure for --json output: its vector ids are internal, only their count is shown."""
    return {
        "id": figure.id,
        "name": figure.name,
        "aliases": figure.aliases,
        "vectors": len(figure.vector_ids),
    }


@blocklist_app.command("build")
def blocklist_build(
    folder: Annotated[
        Path | None, typer.Argument(help="<folder>/<figure-id>/*.jpg (+ optional figure.json).")
    ] = None,
    embeddings: Annotated[
        Path | None, typer.Option(help=".npz with figure_ids, embeddings[, names, engine].")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Replace the blocklist with one built from a photo folder or an embeddings file."""
    from guard.identity import (
        PHOTO_SUFFIXES,
        BuildProblem,
        build_from_embeddings,
        build_from_folder,
    )

    with _errors():
        if (folder is None) == (embeddings is None):
            raise InvalidInput("give a FOLDER or --embeddings FILE, not both")
        guard = _guard()
        problems: list[BuildProblem] = []
        if folder is not None:
            total = sum(1 for p in folder.glob("*/*") if p.suffix.lower() in PHOTO_SUFFIXES)
            with _progress() as progress:
                task = progress.add_task("embedding photos", total=total)

                def advance(_figure: str, _photo: Path) -> None:
                    progress.advance(task)

                blocklist, problems = build_from_folder(folder, guard.face_engine, on_photo=advance)
        else:
            assert embeddings is not None
            blocklist = build_from_embeddings(embeddings, engine_name=guard.face_engine.name)
        guard.blocklists.save(blocklist)
    if json_output:
        _emit_json(
            {"figures": len(blocklist), "vectors": len(blocklist.index), "problems": problems}
        )
        return
    for problem in problems:
        err.print(f"[yellow]{problem.figure_id}/{problem.photo}[/yellow]: {problem.message}")
    out.print(
        f"blocklist: {len(blocklist)} figures, {len(blocklist.index)} vectors "
        f"(generation {blocklist.generation})"
    )


@blocklist_app.command("add")
def blocklist_add(
    figure_id: str,
    photos: Annotated[list[Path], typer.Argument(help="Reference photos of the figure.")],
    name: Annotated[str, typer.Option(help="The figure's name (used in prompt screening).")],
    alias: Annotated[list[str] | None, typer.Option(help="Other names (repeatable).")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Add a public figure (or more photos of one) to the blocklist."""
    from guard.identity import reference_face

    with _errors():
        guard = _guard()
        blocklist = guard.blocklists.current()
        embeddings = []
        for photo in photos:
            faces = guard.faces_in(_read(photo))
            if not faces:
                raise InvalidInput(f"{photo} shows no face")
            embeddings.append(reference_face(faces).embedding)
        figure = blocklist.add_figure(figure_id, name, embeddings, aliases=alias or [])
        guard.blocklists.save(blocklist)
    if json_output:
        _emit_json(_figure_json(figure))
    else:
        out.print(f"{figure.id}: {len(figure.vector_ids)} reference face(s)")


@blocklist_app.command("remove")
def blocklist_remove(figure_id: str, json_output: JsonFlag = False) -> None:
    """Remove a public figure from the blocklist."""
    with _errors():
        guard = _guard()
        blocklist = guard.blocklists.current()
        figure = blocklist.remove_figure(figure_id)
        guard.blocklists.save(blocklist)
    _emit_json({"removed": figure.id}) if json_output else out.print(f"removed {figure.id}")


@blocklist_app.command("list")
def blocklist_list(json_output: JsonFlag = False) -> None:
    """List the blocked figures."""
    with _errors():
        figures = _guard().blocklists.current().list_figures()
    if json_output:
        _emit_json([_figure_json(f) for f in figures])
        return
    table = Table("id", "name", "aliases", "reference faces")
    for f in figures:
        table.add_row(f.id, f.name, ", ".join(f.aliases), str(len(f.vector_ids)))
    out.print(table)


# check / edit -------------------------------------------------------------------------------

AsOption = Annotated[str, typer.Option("--as", help="The requester (grantee) asking.")]
OpOption = Annotated[str, typer.Option("--op", help="The operation asked for.")]


@app.command()
def check(
    image: Path,
    prompt: Annotated[str, typer.Option(help="The edit prompt, screened for named figures.")] = "",
    requester: AsOption = "cli",
    operation: OpOption = "relight",
    json_output: JsonFlag = False,
) -> None:
    """Decide whether REQUESTER may apply OP to IMAGE; exit 1 when denied."""
    from guard.pipeline import CheckRequest

    with _errors():
        decision = _guard().check(
            CheckRequest(
                requester=requester, operation=operation, image=_read(image), prompt=prompt
            )
        )
    _emit_json(decision) if json_output else print_decision(decision)
    if not decision.allowed:
        raise typer.Exit(EXIT_DENIED)


def _parse_params(pairs: list[str]) -> dict[str, str | float]:
    params: dict[str, str | float] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvalidInput(f"--param takes KEY=VALUE, got {pair!r}")
        try:
            params[key] = float(value)
        except ValueError:
            params[key] = value
    return params


@app.command()
def edit(
    image: Path,
    output: Annotated[Path, typer.Option("--out", help="Where to write the edited image.")],
    operation: Annotated[
        str | None,
        typer.Option("--op", help="The operation asked for (diffusers: prompt_edit, the default)."),
    ] = None,
    prompt: Annotated[str, typer.Option(help="The edit prompt, screened for named figures.")] = "",
    requester: AsOption = "cli",
    param: Annotated[list[str] | None, typer.Option(help="Editor parameter KEY=VALUE.")] = None,
    editor: Annotated[
        str | None, typer.Option(help="classic or diffusers (default: GUARD_EDITOR).")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Gate, edit, re-scan and write OUT when allowed; exit 1 when denied."""
    from guard.media import output_format_for
    from guard.pipeline import EditRequest

    with _errors():
        if editor not in (None, "classic", "diffusers"):
            raise InvalidInput(f"--editor must be classic or diffusers, not {editor!r}")
        guard = _guard(**({"editor": editor} if editor else {}))
        if operation is None:
            if guard.editor.operations != {"prompt_edit"}:
                raise InvalidInput(
                    f"choose an operation with --op: {', '.join(sorted(guard.editor.operations))}"
                )
            operation = "prompt_edit"
        request = EditRequest(
            image=_read(image),
            operation=operation,
            requester=requester,
            prompt=prompt,
            params=_parse_params(param or []),
            output_format=output_format_for(output.suffix),
        )
        with _progress() as bar:
            task = bar.add_task(f"editing ({guard.editor.name})", total=None)
            result = guard.edit(
                request, progress=lambda done, total: bar.update(task, completed=done, total=total)
            )
    _write_and_print(result, output, json_output)


def _write_and_print(result: Any, output: Path, json_output: bool) -> None:
    """Write an edit's or a stamp's released image to OUTPUT; print its decisions."""
    stamped = result.provenance
    if result.image is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(result.image)
    if json_output:
        _emit_json(
            {
                "decision": result.decision,
                "input_decision": result.input_decision,
                "output": str(output) if result.image else None,
                "output_sha256": result.output_sha256,
                "watermark_record_id": f"{stamped.record_id:012x}" if stamped else None,
                "manifest_label": stamped.manifest_label if stamped else None,
                "editor": result.editor,
                "editor_record": dict(result.editor_record),
            }
        )
    else:
        if result.output_decision is not None and result.input_decision is not result.decision:
            out.print("[bold]input gate[/bold]")
            print_decision(result.input_decision)
            out.print("[bold]output scan[/bold]")
        print_decision(result.decision)
        if stamped is not None:
            out.print(
                f"wrote {output} (watermark record {stamped.record_id:012x}, "
                f"C2PA manifest {stamped.manifest_label})"
            )
    if result.image is None:
        raise typer.Exit(EXIT_DENIED)


@app.command()
def stamp(
    image: Path,
    generator: Annotated[str, typer.Option(help="The generator that made IMAGE (name).")],
    output: Annotated[Path, typer.Option("--out", help="Where to write the stamped image.")],
    generator_version: Annotated[str, typer.Option(help="The generator's version.")] = "unknown",
    source: Annotated[
        Path | None, typer.Option(help="The input the generator edited, if any (parent).")
    ] = None,
    prompt: Annotated[str, typer.Option(help="The generation prompt, screened.")] = "",
    requester: AsOption = "cli",
    operation: Annotated[str, typer.Option("--op", help="Operation name in the policy.")] = (
        "generate"
    ),
    json_output: JsonFlag = False,
) -> None:
    """Scan an image another generator made; watermark, sign and write OUT when allowed."""
    from guard.media import output_format_for
    from guard.pipeline import StampRequest

    with _errors():
        request = StampRequest(
            image=_read(image),
            requester=requester,
            generator=generator,
            generator_version=generator_version,
            operation=operation,
            prompt=prompt,
            source_image=_read(source) if source is not None else None,
            output_format=output_format_for(output.suffix),
        )
        result = _guard().stamp(request)
    _write_and_print(result, output, json_output)


@app.command()
def verify(image: Path, json_output: JsonFlag = False) -> None:
    """Is IMAGE an untouched output of this guard, and under which decision?

    Exit 0 valid (or recovered from the watermark or fingerprint), 1 tampered or not from this
    guard, 2 error.
    """
    try:
        report = _guard().verify(_read(image))
    except GuardError as exc:
        err.print(f"[red]error ({exc.code}):[/red] {exc.message}")
        raise typer.Exit(2) from exc
    if json_output:
        _emit_json(report.to_dict())
    else:
        print_verification(report)
    raise typer.Exit(report.exit_code)


def print_verification(report: Any) -> None:
    colour = {0: "green", 1: "red"}.get(report.exit_code, "yellow")
    out.print(f"[bold {colour}]{report.outcome.value.upper()}[/bold {colour}]: {report.summary}")
    manifest = report.manifest
    if manifest.found:
        trust = "trusted" if manifest.trusted else "not on your trust list"
        out.print(f"  C2PA manifest {manifest.label}: {manifest.state} ({trust})")
        for problem in manifest.problems:
            out.print(f"    failed: {problem}")
    else:
        out.print(
            f"  C2PA manifest: none{f' ({manifest.reader_error})' if manifest.reader_error else ''}"
        )
    mark = report.watermark
    if mark is not None:
        found = f"record {mark.record_id}, confidence {mark.confidence}" if mark.found else "none"
        out.print(f"  watermark ({mark.algorithm}): {found}")
    if report.recovered is not None:
        recovered = report.recovered
        distance = (
            f", fingerprint distance {recovered.fingerprint_distance}"
            if recovered.fingerprint_distance is not None
            else ""
        )
        out.print(f"  recovered via {recovered.via}: manifest {recovered.manifest_label}{distance}")
    if report.decision is not None:
        decision = report.decision
        out.print(
            f"  decision {decision.get('decision_id')}: {decision.get('verdict')} "
            f"({', '.join(decision.get('reason_codes', []))}; policy "
            f"{decision.get('policy', {}).get('id')} v{decision.get('policy', {}).get('version')})"
        )


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Where the demo writes its files.")] = Path(
        "demo-out"
    ),
) -> None:
    """Run the end-to-end demo on the photos shipped with insightface and scikit-image."""
    from guard.demo import run_demo

    with _errors():
        run_demo(out_dir, out)


# audit --------------------------------------------------------------------------------------


def _audit_log() -> Any:
    from guard.audit.log import open_audit_log

    return open_audit_log(Settings())


@audit_app.command("tail")
def audit_tail(
    count: Annotated[int, typer.Option("-n", help="How many of the latest entries.")] = 10,
    json_output: JsonFlag = False,
) -> None:
    """The latest entries, newest last."""
    with _errors():
        log = _audit_log()
        size = log.size()
        entries = [{"index": i, "entry": log.entry(i)} for i in range(max(0, size - count), size)]
    if json_output:
        _emit_json(entries)
        return
    for item in entries:
        out.print(f"{item['index']:>8}  {json.dumps(item['entry'], sort_keys=True)}")


@audit_app.command("show")
def audit_show(index: int, json_output: JsonFlag = False) -> None:
    """One entry and its receipt against the latest checkpoint."""
    with _errors():
        log = _audit_log()
        shown = {"index": index, "entry": log.entry(index), "receipt": log.receipt(index).to_dict()}
    if json_output:
        _emit_json(shown)
        return
    out.print(json.dumps(shown, indent=2, sort_keys=True, ensure_ascii=False))


@audit_app.command("prove")
def audit_prove(
    index: int,
    size: Annotated[int | None, typer.Option(help="Tree size to prove against.")] = None,
) -> None:
    """The inclusion proof (receipt) for entry INDEX, as JSON."""
    with _errors():
        receipt = _audit_log().receipt(index, size)
    _emit_json(receipt.to_dict())


@audit_app.command("checkpoint")
def audit_checkpoint(
    size: Annotated[int | None, typer.Option(help="Tree size (default: latest).")] = None,
) -> None:
    """The signed checkpoint (C2SP signed note) at SIZE; the public key to check it goes to
    stderr (it is also <data_dir>/keys/audit/checkpoint.vkey)."""
    from guard.audit.checkpoint import PUBLIC_KEY_FILE

    with _errors():
        settings = Settings()
        note = _audit_log().checkpoint(size)
        vkey = _read(settings.audit_keys_dir / PUBLIC_KEY_FILE).decode().strip()
    sys.stdout.write(note)
    err.print(f"verifier key: {vkey}", soft_wrap=True)


@audit_app.command("subject")
def audit_subject(subject_id: str, json_output: JsonFlag = False) -> None:
    """Every audit entry that touched SUBJECT_ID (for a data-subject access request)."""
    with _errors():
        entries = _guard().subject_report(subject_id)
    if json_output:
        _emit_json([{"index": index, "entry": entry} for index, entry in entries])
        return
    out.print(f"{len(entries)} audit entries touch {subject_id}")
    for index, entry in entries:
        out.print(f"{index:>8}  {json.dumps(entry, sort_keys=True)}")


@audit_app.command("export")
def audit_export(
    output: Annotated[Path, typer.Option("--out", help="The JSON Lines file to write.")],
) -> None:
    """Every entry with the checkpoint signed after it, then the latest checkpoint."""
    from guard.audit.export import export_log

    with _errors():
        log = _audit_log()
        with _progress() as progress:
            task = progress.add_task("exporting", total=log.size())
            count = export_log(log, output, progress=lambda n: progress.advance(task, n))
    out.print(f"wrote {count} entries to {output}")


@audit_app.command("verify")
def audit_verify(
    export: Path,
    key: Annotated[Path, typer.Option("--key", help="The log's verifier key file (.vkey).")],
    json_output: JsonFlag = False,
) -> None:
    """Recompute the whole tree of an export offline; exit 1 and name the first bad entry."""
    from guard.audit.checkpoint import CheckpointVerifier
    from guard.audit.export import verify_export

    with _errors():
        verifier = CheckpointVerifier.from_key_string(_read(key).decode())
        entries = _read(export).count(b"\n") - 1  # the last line is the latest checkpoint
        with _progress() as progress:
            task = progress.add_task("verifying", total=max(entries, 0))
            report = verify_export(export, verifier, progress=lambda n: progress.advance(task, n))
    if json_output:
        _emit_json({**asdict(report), "ok": report.ok})
    elif report.ok:
        out.print(
            f"[green]OK[/green]: {report.entries} entries, {report.checkpoints} signed checkpoints"
        )
    else:
        out.print(f"[red]FAILED[/red] (first bad entry: {report.first_bad_index})")
        for problem in report.problems:
            out.print(f"  {problem}")
    if not report.ok:
        raise typer.Exit(EXIT_DENIED)


@policy_app.command("check")
def policy_check(policy_file: Path, json_output: JsonFlag = False) -> None:
    """Validate a policy file; every problem is reported with its line (exit 2 if any)."""
    from guard.policy import policy_problems

    with _errors():
        text = _read(policy_file).decode("utf-8", errors="replace")
    policy, problems = policy_problems(text)
    if json_output:
        _emit_json(
            {
                "file": policy_file,
                "valid": policy is not None,
                "policy": {"id": policy.id, "version": policy.version} if policy else None,
                "problems": problems,
            }
        )
    elif policy is not None:
        out.print(
            f"{policy_file}: valid: policy {policy.id} version {policy.version}, "
            f"{len(policy.rules)} rules ({', '.join(rule.id for rule in policy.rules)})"
        )
    else:
        for problem in problems:
            err.print(f"[red]{policy_file}:{problem}[/red]")
    if policy is None:
        raise typer.Exit(EXIT_INVALID)


@policy_app.command("explain")
def policy_explain(decision_id: str, json_output: JsonFlag = False) -> None:
    """Why decision DECISION_ID came out as it did: every rule of its policy, whether it
    applied, passed or failed (and with which reason codes), from the decision's audit entry,
    next to the rule's text in the policy file in force."""
    from guard.policy import explain_entry

    with _errors():
        guard = _guard()
        index = guard.audit.index_of_decision(decision_id)
        policy = guard.policy()
        text = _read(guard.settings.policy_file).decode("utf-8", errors="replace")
        explanation = explain_entry(index, guard.audit.entry(index), policy, text)
    if json_output:
        _emit_json(
            {
                **asdict(explanation),
                "rules": [{**asdict(r), "outcome": r.outcome} for r in explanation.rules],
                "policy_file": guard.settings.policy_file,
            }
        )
        return
    e = explanation
    colour = "red" if e.verdict == "deny" else "green"
    out.print(
        f"decision {e.decision_id}: [{colour}]{e.verdict}[/{colour}] ({e.stage} stage, "
        f"operation {e.operation}, {e.time}, audit entry {e.entry_index})"
    )
    out.print(f"  reasons: {', '.join(e.reason_codes) or '-'}")
    out.print(f"  policy {e.policy_id} version {e.policy_version}")
    if not e.same_policy:
        err.print(
            f"[yellow]the policy in force now is {policy.id} version {policy.version}, not the "
            "one this decision was made under: showing the recorded rule results only[/yellow]"
        )
    marks = {"passed": "[green]passed[/green]", "failed": "[red]FAILED[/red]"}
    for rule in e.rules:
        where = f"  ({guard.settings.policy_file.name} line {rule.line})" if rule.line else ""
        out.print(f"\n  {rule.rule_id}: {marks.get(rule.outcome, rule.outcome)}{where}")
        for result in rule.results:
            target = "request" if result.face_index is None else f"face {result.face_index}"
            verdict = "passed" if result.passed else "failed"
            codes = f" -> {', '.join(result.reason_codes)}" if result.reason_codes else ""
            out.print(f"    {target}: {verdict}{codes}")
        if rule.description:
            out.print(f"    [dim]{rule.description}[/dim]")
        for line in rule.text.splitlines():
            out.print(f"    {line}", style="dim", highlight=False, markup=False)


def main() -> None:
    app()
