"""``guard audit``: the tamper-evident audit log."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from guard.cli.common import (
    EXIT_DENIED,
    JsonFlag,
    err,
    errors,
    open_guard,
    out,
    progress_bar,
    read_file,
    read_text,
)
from guard.cli.render import emit_json
from guard.config import Settings

if TYPE_CHECKING:
    from guard.audit import AuditLog, Checkpoint, CheckpointVerifier

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
    size: Annotated[
        int | None,
        typer.Option(help="Tree size to prove against: a checkpointed size (a batch end)."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """The inclusion proof (receipt) for entry INDEX against the checkpoint at SIZE (default:
    the latest); --json prints the receipt as the API's proof endpoint returns it. A SIZE where
    no batch of appends ended has no checkpoint: the error names the nearest that do."""
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
    size: Annotated[
        int | None, typer.Option(help="Tree size (default: latest); a batch end.")
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """The signed checkpoint (C2SP signed note) at SIZE; the public key to check it goes to
    stderr (it is also <data_dir>/keys/audit/checkpoint.vkey). --json prints both, with the
    size, as the API's checkpoint endpoint does. One is signed per committed batch of appends:
    a SIZE where no batch ended is not found, naming the nearest checkpointed sizes."""
    from guard.audit import audit_verifier, audit_verifier_key

    with errors():
        settings = Settings()
        note = _audit_log().checkpoint(size)
        # The file, or derived from the key itself when it comes from a setting or provider.
        vkey = audit_verifier_key(settings)
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
        entries = guard.audit.entries_referring(
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
    """Every entry (with the checkpoint signed at its size where a batch of appends ended
    there), then the latest checkpoint."""
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


def _pinned_checkpoint(path: Path, verifier: CheckpointVerifier) -> Checkpoint:
    """The checkpoint in ``path`` (a signed note, or JSON carrying one), verified: a pin that is
    not this log's is refused before anything is compared with it."""
    from guard.audit import checkpoint_note
    from guard.errors import InvalidInput

    try:
        return verifier.verify(checkpoint_note(read_file(path).decode("utf-8", "replace")))
    except InvalidInput as exc:
        raise InvalidInput(f"the pinned checkpoint {path}: {exc.message}") from exc


@audit_app.command("verify")
def audit_verify(
    export: Path,
    key: Annotated[Path, typer.Option("--key", help="The log's verifier key file (.vkey).")],
    since: Annotated[
        Path | None,
        typer.Option(
            "--since",
            help="A checkpoint seen earlier (signed note, its --json, or a witness state): the "
            "export must extend it.",
        ),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """Recompute the whole tree of an export offline; exit 1 and say what is wrong (the first
    bad entry where one can be named). With --since, also prove the export extends a checkpoint
    seen earlier, so a truncated, rolled-back or forked export fails."""
    from guard.audit import CheckpointVerifier, verify_export

    with errors():
        verifier = CheckpointVerifier.from_key_string(read_text(key))
        pinned = _pinned_checkpoint(since, verifier) if since is not None else None
        entries = read_file(export).count(b"\n") - 1  # the last line is the latest checkpoint
        with progress_bar() as progress:
            task = progress.add_task("verifying", total=max(entries, 0))
            report = verify_export(
                export, verifier, progress=lambda n: progress.advance(task, n), pinned=pinned
            )
    if json_output:
        emit_json({**asdict(report), "ok": report.ok})
    elif report.ok:
        extends = f"; extends the pinned checkpoint at size {pinned.size}" if pinned else ""
        out.print(
            f"[green]OK[/green]: {report.entries} entries, {report.checkpoints} signed "
            f"checkpoints{extends}"
        )
    else:
        where = (
            f" (first bad entry: {report.first_bad_index})"
            if report.first_bad_index is not None
            else ""
        )
        out.print(f"[red]FAILED[/red]{where}", soft_wrap=True)
        for problem in report.problems:
            out.print(f"  {problem}", soft_wrap=True, markup=False, highlight=False)
        if report.unlisted:
            out.print(f"  … and {report.unlisted} more problems with entries, not listed")
    if not report.ok:
        raise typer.Exit(EXIT_DENIED)


@audit_app.command("verify-receipts")
def audit_verify_receipts(
    receipts: Path,
    key: Annotated[Path, typer.Option("--key", help="The log's verifier key file (.vkey).")],
    json_output: JsonFlag = False,
) -> None:
    """Check a receipts file from the console (a decision's receipt.json, a subject report's or
    erasure certificate's receipts.json) offline with a key you hold, not the one the file or
    the console serves; list what each proven entry says. Exit 1 if any entry is not proven."""
    from guard.audit import CheckpointVerifier
    from guard.audit.receipt_files import check_receipt_file

    with errors():
        verifier = CheckpointVerifier.from_key_string(read_text(key))
        report = check_receipt_file(_json_object(receipts), verifier)
    if json_output:
        emit_json(
            {
                "ok": report.ok,
                "checkpoint_size": report.checkpoint.size if report.checkpoint else None,
                "problems": list(report.problems),
                "served_key_differs": report.served_key_differs,
                "entries": [
                    {"index": e.index, "ok": e.ok, "problem": e.problem, "entry": e.entry}
                    for e in report.entries
                ],
            }
        )
    else:
        # Everything after the label comes from the file: printed as plain text (no markup, no
        # line breaks), so a crafted entry cannot print a line of its own, such as a false OK.
        for proven in report.entries:
            if proven.ok and proven.entry is not None:
                said = _plain(_entry_summary(proven.entry))
                out.print(f"[green]proven[/green] entry {proven.index}: {said}", soft_wrap=True)
            else:
                where = f"entry {proven.index}" if proven.index is not None else "an entry"
                problem = _plain(proven.problem or "")
                out.print(f"[red]NOT PROVEN[/red] {where}: {problem}", soft_wrap=True)
        for problem in report.problems:
            out.print(f"[red]FAILED[/red]: {_plain(problem)}", soft_wrap=True)
        if report.served_key_differs:
            err.print("note: the file names another verifier key than yours; yours was used")
        if report.ok and report.checkpoint is not None:
            out.print(
                f"[green]OK[/green]: {len(report.entries)} entries in the log of size "
                f"{report.checkpoint.size}, signed by {verifier.name} at "
                f"{report.checkpoint.time.isoformat()}"
            )
    if not report.ok:
        raise typer.Exit(EXIT_DENIED)


def _plain(text: str) -> str:
    """``text`` as one line of literal text: control characters shown escaped, markup off."""
    printable = "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)
    return escape(printable)


def _entry_summary(entry: dict[str, Any]) -> str:
    """One line of what an entry says (its own members, from its proven bytes)."""
    parts = [str(entry.get("kind")), str(entry.get("time"))]
    for member in ("tenant", "decision_id", "verdict", "operation"):
        if entry.get(member) not in (None, ""):
            parts.append(f"{member}={entry[member]}")
    return ", ".join(parts)


@audit_app.command("consistency")
def audit_consistency(
    old_size: Annotated[
        int, typer.Option("--from", min=0, help="The size of the checkpoint held earlier.")
    ],
    new_size: Annotated[
        int | None,
        typer.Option("--to", min=1, help="The newer size (default: latest); a batch end."),
    ] = None,
    json_output: JsonFlag = False,
) -> None:
    """The consistency proof from the checkpoint at size FROM to the one at TO, with TO's
    signed checkpoint; --json prints it as GET /v1/audit/consistency does (what `guard audit
    witness --proof` reads)."""
    with errors():
        answer = _audit_log().prove_consistency(old_size, new_size).to_dict()
    if json_output:
        emit_json(answer)
        return
    out.print(f"consistency proof from size {answer['old_size']} to {answer['new_size']}:")
    for step in answer["proof"]:
        out.print(f"  {step}")
    out.print("against the checkpoint:")
    out.print(answer["checkpoint"], end="", highlight=False, markup=False)


@audit_app.command("witness")
def audit_witness(
    state: Annotated[
        Path, typer.Option("--state", help="The witness's state: the last checkpoint it kept.")
    ],
    key: Annotated[Path, typer.Option("--key", help="The log's verifier key file (.vkey).")],
    url: Annotated[
        str | None, typer.Option("--url", help="The guard service to ask (http(s)://host).")
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", envvar="GUARD_API_KEY", help="An auditor's or admin's API key for --url."
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option("--checkpoint", help="The new checkpoint from a file, instead of --url."),
    ] = None,
    proof: Annotated[
        Path | None,
        typer.Option(
            "--proof", help="With --checkpoint: the consistency proof JSON from the stored size."
        ),
    ] = None,
    init: Annotated[
        bool, typer.Option("--init", help="Start a missing state with this checkpoint.")
    ] = False,
    json_output: JsonFlag = False,
) -> None:
    """Accept the log's new checkpoint only if it extends the one kept in STATE: check its
    signature and a consistency proof, then replace STATE atomically. A rollback, a fork or
    another log's checkpoint exits 1 and leaves STATE as it was (the rejected checkpoint is kept
    in STATE.rejected). It does not cosign: see docs/audit.md."""
    from guard.audit import (
        CheckpointVerifier,
        GivenCheckpoint,
        HttpLog,
        Verdict,
        Witness,
        checkpoint_note,
    )
    from guard.audit.witness import LogSource
    from guard.errors import InvalidInput

    with errors():
        verifier = CheckpointVerifier.from_key_string(read_text(key))
        source: LogSource
        if (url is None) == (checkpoint is None):
            raise InvalidInput("give the new checkpoint with --url or with --checkpoint (one)")
        if url is not None:
            if not api_key:
                raise InvalidInput("--url needs --api-key (or GUARD_API_KEY): an auditor's key")
            source = HttpLog(url, api_key)
        else:
            assert checkpoint is not None
            note = checkpoint_note(read_file(checkpoint).decode("utf-8", "replace"))
            answer = _json_object(proof) if proof is not None else None
            source = GivenCheckpoint(note, answer)
        seen = Witness(state, verifier).observe(source, init=init)
    check = seen.check
    if json_output:
        emit_json(
            {
                "ok": seen.ok,
                "verdict": check.verdict.value if check else "initialised",
                "message": check.message if check else None,
                "origin": seen.current.origin,
                "size": seen.current.size,
                "previous_size": seen.previous.size if seen.previous else None,
                "state": state,
                "evidence": seen.evidence,
            }
        )
    elif check is None:
        out.print(
            f"initialised {state}: trusting the checkpoint at size {seen.current.size} of "
            f"{seen.current.origin} as the first one",
            soft_wrap=True,
        )
    elif check.ok:
        kept = "state updated" if check.verdict is Verdict.EXTENDS else "state unchanged"
        out.print(f"[green]OK[/green]: {check.message}; {kept}", soft_wrap=True)
    else:
        out.print(f"[red]REJECTED[/red]: {check.message}", soft_wrap=True)
        out.print(
            f"  {state} still holds size {check.old_size}; the rejected checkpoint is kept in "
            f"{seen.evidence}",
            soft_wrap=True,
        )
    if not seen.ok:
        raise typer.Exit(EXIT_DENIED)


def _json_object(path: Path) -> dict[str, Any]:
    from guard.errors import InvalidInput

    try:
        data = json.loads(read_file(path))
    except (ValueError, RecursionError) as exc:  # RecursionError: nested past any real file
        raise InvalidInput(f"{path} is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InvalidInput(f"{path} is not a JSON object")
    return data
