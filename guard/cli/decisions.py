"""``guard check``, ``guard edit``, ``guard stamp`` and ``guard verify``: the guard's flows."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from guard.cli.common import (
    EXIT_DENIED,
    AsOption,
    JsonFlag,
    OpOption,
    err,
    errors,
    exit_unless_allowed,
    open_guard,
    out,
    progress_bar,
    read_file,
)
from guard.cli.render import emit_json, print_decision, print_verification
from guard.errors import GuardError, InvalidInput
from guard.media import output_format_for
from guard.requests import CheckRequest, EditPhase, EditRequest, Result, StampRequest

# What the progress bar of `guard edit` says in each phase of the edit.
PHASES: dict[EditPhase, str] = {
    "input_gate": "checking the input",
    "edit": "editing",
    "output_scan": "checking the output",
    "stamp": "stamping",
}


def check(
    image: Path,
    prompt: Annotated[str, typer.Option(help="The edit prompt, screened for named figures.")] = "",
    requester: AsOption = "cli",
    operation: OpOption = "relight",
    json_output: JsonFlag = False,
) -> None:
    """Decide whether REQUESTER may apply OP to IMAGE; exit 1 when denied."""
    with errors():
        decision = open_guard().check(
            CheckRequest(
                requester=requester, operation=operation, image=read_file(image), prompt=prompt
            )
        )
    emit_json(decision) if json_output else print_decision(decision)
    exit_unless_allowed(decision)


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
    with errors():
        if editor not in (None, "classic", "diffusers"):
            raise InvalidInput(f"--editor must be classic or diffusers, not {editor!r}")
        guard = open_guard(**({"editor": editor} if editor else {}))
        if operation is None:
            if guard.editor.operations != {"prompt_edit"}:
                raise InvalidInput(
                    f"choose an operation with --op: {', '.join(sorted(guard.editor.operations))}"
                )
            operation = "prompt_edit"
        request = EditRequest(
            image=read_file(image),
            operation=operation,
            requester=requester,
            prompt=prompt,
            params=_parse_params(param or []),
            output_format=output_format_for(output.suffix),
        )
        described = {**PHASES, "edit": f"editing ({guard.editor.name})"}
        with progress_bar() as bar:
            task = bar.add_task(PHASES["input_gate"], total=None)
            result = guard.edit(
                request,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
                phase=lambda now: bar.update(task, description=described[now]),
            )
    _write_and_print(result, output, json_output)


def _write_and_print(result: Result, output: Path, json_output: bool) -> None:
    """Write an edit's or a stamp's released image to OUTPUT; print its decisions."""
    stamped = result.provenance
    if result.image is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_bytes(result.image)
    if json_output:
        emit_json(
            {
                "decision": result.decision,
                "input_decision": result.input_decision,
                "output": str(output) if result.image else None,
                "output_sha256": result.output_sha256,
                "watermark_record_id": stamped.record_id if stamped else None,
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
                f"wrote {output} (watermark record {stamped.record_id}, "
                f"C2PA manifest {stamped.manifest_label})"
            )
    exit_unless_allowed(result.decision)
    if result.image is None:  # never allowed without an image; fail closed all the same
        raise typer.Exit(EXIT_DENIED)


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
    with errors():
        request = StampRequest(
            image=read_file(image),
            requester=requester,
            generator=generator,
            generator_version=generator_version,
            operation=operation,
            prompt=prompt,
            source_image=read_file(source) if source is not None else None,
            output_format=output_format_for(output.suffix),
        )
        result = open_guard().stamp(request)
    _write_and_print(result, output, json_output)


def verify(
    image: Path,
    json_output: JsonFlag = False,
    tenant: Annotated[
        str | None,
        typer.Option(
            help="Answer as TENANT's API keys would: a fingerprint leads only to its stamps "
            "(default: every tenant's, the operator's view)."
        ),
    ] = None,
) -> None:
    """Is IMAGE an untouched output of this guard, and under which decision?

    Exit 0 valid (or recovered from the watermark or fingerprint), 1 tampered or not from this
    guard, 2 error.
    """
    try:
        guard = open_guard()
        report = guard.provenance.verify(read_file(image), guard.decode, tenant=tenant)
    except GuardError as exc:
        err.print(f"[red]error ({exc.code}):[/red] {exc.message}")
        raise typer.Exit(2) from exc
    if json_output:
        emit_json(report.to_dict())
    else:
        print_verification(report)
    raise typer.Exit(report.exit_code)
