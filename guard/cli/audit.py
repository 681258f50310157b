"""``guard audit``: the tamper-evident audit log."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from guard.cli.common import (
    EXIT_DENIED,
    JsonFlag,
    err,
    errors,
    open_guard,
    out,
    progress_bar,
    read_file,
)
from guard.cli.render import emit_json
from guard.config import Settings

if TYPE_CHECKING:
    from guard.audit import AuditLog

audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log.")


def _audit_log() -> AuditLog:
    from guard.audit import open_audit_log

    return open_audit_log(Settings())


@audit_app.command("tail")
def audit_tail(
    count: Annotated[int, typer.Option("-n", help="How many of the latest entries.")] = 10,
    json_output: JsonFlag = False,
) -> None:
    """The latest entries, newest last."""
    with errors():
        log = _audit_log()
        size = log.size()
        entries = [{"index": i, "entry": log.entry(i)} for i in range(max(0, size - count), size)]
    if json_output:
        emit_json(entries)
        return
    for item in entries:
        out.print(f"{item['index']:>8}  {json.dumps(item['entry'], sort_keys=True)}")


@audit_app.command("show")
def audit_show(index: int, json_output: JsonFlag = False) -> None:
    """One entry and its receipt against the latest checkpoint."""
    with errors():
        log = _audit_log()
        shown = {"index": index, "entry": log.entry(index), "receipt": log.receipt(index).to_dict()}
    if json_output:
        emit_json(shown)
        return
    out.print(json.dumps(shown, indent=2, sort_keys=True, ensure_ascii=False))


@audit_app.command("prove")
def audit_prove(
    index: int,
    size: Annotated[int | None, typer.Option(help="Tree size to prove against.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """The inclusion proof (receipt) for entry INDEX against the checkpoint at SIZE (default:
    the latest); --json prints the receipt as the API's proof endpoint returns it."""
    with errors():
        receipt = _audit_log().receipt(index, size)
    if json_output:
        emit_json(receipt.to_dict())
        return
    out.print(f"entry {receipt.leaf_index}, leaf hash {receipt.leaf_hash}")
    out.print(f"inclusion proof ({len(receipt.inclusion_proof)} hashes, leaf to root):")
    for step in receipt.inclusion_proof:
        out.print(f"  {step}")
    out.print("against the checkpoint:")
    out.print(receipt.checkpoint, end="", highlight=False, markup=False)


@audit_app.command("checkpoint")
def audit_checkpoint(
    size: Annotated[int | None, typer.Option(help="Tree size (default: latest).")] = None,
    json_output: JsonFlag = False,
) -> None:
    """The signed checkpoint (C2SP signed note) at SIZE; the public key to check it goes to
    stderr (it is also <data_dir>/keys/audit/checkpoint.vkey). --json prints both, with the
    size, as the API's checkpoint endpoint does."""
    from guard.audit import PUBLIC_KEY_FILE, audit_verifier

    with errors():
        settings = Settings()
        note = _audit_log().checkpoint(size)
        vkey = read_file(settings.audit_keys_dir / PUBLIC_KEY_FILE).decode().strip()
        checked = audit_verifier(settings).verify(note)
    if json_output:
        emit_json({"size": checked.size, "checkpoint": note, "verifier_key": vkey})
        return
    sys.stdout.write(note)
    err.print(f"verifier key: {vkey}", soft_wrap=True)


@audit_app.command("subject")
def audit_subject(subject_id: str, json_output: JsonFlag = False) -> None:
    """Every audit entry of its tenant that touched SUBJECT_ID (for a data-subject access
    request), erased or not."""
    with errors():
        guard = open_guard()
        tenant = guard.registry.subject_tenant(subject_id)
        entries = guard.audit.entries_mentioning(
            guard.registry.subject_ref(subject_id, tenant), tenant=tenant
        )
    if json_output:
        emit_json([{"index": index, "entry": entry} for index, entry in entries])
        return
    out.print(f"{len(entries)} audit entries touch {subject_id}")
    for index, entry in entries:
        out.print(f"{index:>8}  {json.dumps(entry, sort_keys=True)}")


@audit_app.command("export")
def audit_export(
    output: Annotated[Path, typer.Option("--out", help="The JSON Lines file to write.")],
    json_output: JsonFlag = False,
) -> None:
    """Every entry with the checkpoint signed after it, then the latest checkpoint."""
    from guard.audit import export_log

    with errors():
        log = _audit_log()
        with progress_bar() as progress:
            task = progress.add_task("exporting", total=log.size())
            count = export_log(log, output, progress=lambda n: progress.advance(task, n))
    if json_output:
        emit_json({"output": output, "entries": count})
        return
    out.print(f"wrote {count} entries to {output}")


@audit_app.command("verify")
def audit_verify(
    export: Path,
    key: Annotated[Path, typer.Option("--key", help="The log's verifier key file (.vkey).")],
    json_output: JsonFlag = False,
) -> None:
    """Recompute the whole tree of an export offline; exit 1 and name the first bad entry."""
    from guard.audit import CheckpointVerifier, verify_export

    with errors():
        verifier = CheckpointVerifier.from_key_string(read_file(key).decode())
        entries = read_file(export).count(b"\n") - 1  # the last line is the latest checkpoint
        with progress_bar() as progress:
            task = progress.add_task("verifying", total=max(entries, 0))
            report = verify_export(export, verifier, progress=lambda n: progress.advance(task, n))
    if json_output:
        emit_json({**asdict(report), "ok": report.ok})
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
