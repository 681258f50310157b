"""``guard blocklist``: the public-figure blocklist."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from guard.cli.common import (
    JsonFlag,
    err,
    errors,
    open_guard,
    operator_name,
    out,
    progress_bar,
    read_file,
)
from guard.cli.render import emit_json
from guard.errors import InvalidInput
from guard.identity import PublicFigure

blocklist_app = typer.Typer(
    no_args_is_help=True, help="The public-figure blocklist (kept in the database)."
)
ExpectGeneration = Annotated[
    int | None,
    typer.Option(
        "--expect-generation",
        min=0,
        help="Save only if the blocklist is still at this generation (`guard blocklist list` "
        "shows it); otherwise nothing is saved and the command exits with a conflict.",
    ),
]


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
    from guard.identity import BuildProblem, build_from_embeddings, build_from_folder
    from guard.media import PHOTO_SUFFIXES

    with errors():
        if (folder is None) == (embeddings is None):
            raise InvalidInput("give a FOLDER or --embeddings FILE, not both")
        guard = open_guard()
        problems: list[BuildProblem] = []
        if folder is not None:
            total = sum(1 for p in folder.glob("*/*") if p.suffix.lower() in PHOTO_SUFFIXES)
            with progress_bar() as progress:
                task = progress.add_task("embedding photos", total=total)

                def advance(_figure: str, _photo: Path) -> None:
                    progress.advance(task)

                blocklist, problems = build_from_folder(folder, guard.face_engine, on_photo=advance)
        else:
            assert embeddings is not None
            blocklist = build_from_embeddings(embeddings, engine_name=guard.face_engine.name)
        guard.blocklists.replace(blocklist, actor=operator_name())
    if json_output:
        emit_json(
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
    expect_generation: ExpectGeneration = None,
    json_output: JsonFlag = False,
) -> None:
    """Add a public figure (or more photos of one) to the blocklist."""
    from guard.identity import reference_face

    with errors():
        guard = open_guard()
        embeddings = [
            reference_face(guard.faces_in(read_file(photo)), str(photo)).embedding
            for photo in photos
        ]
        figure = guard.blocklists.update(
            lambda blocklist: blocklist.add_figure(
                figure_id, name, embeddings, aliases=alias or []
            ),
            actor=operator_name(),
            expected=expect_generation,
        )
    if json_output:
        emit_json(_figure_json(figure))
    else:
        out.print(f"{figure.id}: {len(figure.vector_ids)} reference face(s)")


@blocklist_app.command("remove")
def blocklist_remove(
    figure_id: str, expect_generation: ExpectGeneration = None, json_output: JsonFlag = False
) -> None:
    """Remove a public figure from the blocklist."""
    with errors():
        figure = open_guard().blocklists.update(
            lambda blocklist: blocklist.remove_figure(figure_id),
            actor=operator_name(),
            expected=expect_generation,
        )
    emit_json({"removed": figure.id}) if json_output else out.print(f"removed {figure.id}")


@blocklist_app.command("list")
def blocklist_list(json_output: JsonFlag = False) -> None:
    """List the blocked figures."""
    with errors():
        blocklist = open_guard().blocklists.load()
        figures = blocklist.list_figures()
    if json_output:
        emit_json([_figure_json(f) for f in figures])
        return
    table = Table(
        "id", "name", "aliases", "reference faces", title=f"generation {blocklist.generation}"
    )
    for f in figures:
        table.add_row(f.id, f.name, ", ".join(f.aliases), str(len(f.vector_ids)))
    out.print(table)
