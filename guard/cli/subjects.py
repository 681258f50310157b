"""``guard subjects``: people in the consent registry."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from guard.cli.common import JsonFlag, errors, open_guard, operator_name, out, read_file
from guard.cli.render import emit_json
from guard.errors import InvalidInput

subjects_app = typer.Typer(no_args_is_help=True, help="People in the consent registry.")


@subjects_app.command("add")
def subjects_add(
    tenant: Annotated[str, typer.Option(help="Tenant the subject belongs to.")] = "default",
    name: Annotated[str | None, typer.Option(help="Optional display name.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Register a person; prints the pseudonymous subject id."""
    with errors():
        subject = open_guard().registry.create_subject(tenant, display_name=name)
    emit_json(subject) if json_output else out.print(subject.id)


@subjects_app.command("link")
def subjects_link(
    subject_id: str,
    figure_id: Annotated[str, typer.Argument(help="The blocklisted figure this person is.")],
    evidence: Annotated[
        Path, typer.Option(help="The verification document (only its SHA-256 is kept).")
    ],
    json_output: JsonFlag = False,
) -> None:
    """As the operator, link a subject to the public figure they are verified to be (audited).

    The figure's face can then be enrolled for this subject, and the subject's own grants may
    lift the block where the policy allows it."""
    with errors():
        guard = open_guard()
        figure = guard.blocklists.current().figure(figure_id)
        subject = guard.registry.public_figures.link(
            subject_id,
            figure,
            linked_by=operator_name(),
            evidence_sha256=hashlib.sha256(read_file(evidence)).hexdigest(),
        )
    emit_json(subject) if json_output else out.print(f"linked {subject.id} to {figure.id}")


@subjects_app.command("unlink")
def subjects_unlink(subject_id: str, json_output: JsonFlag = False) -> None:
    """As the operator, remove a subject's public-figure link (audited)."""
    with errors():
        subject = open_guard().registry.public_figures.unlink(
            subject_id, unlinked_by=operator_name()
        )
    emit_json(subject) if json_output else out.print(f"unlinked {subject.id}")


@subjects_app.command("enroll")
def subjects_enroll(
    subject_id: str,
    photos: Annotated[list[Path], typer.Argument(help="Photos showing only this person.")],
    json_output: JsonFlag = False,
) -> None:
    """Enroll face templates from photos (each must show exactly one face)."""
    with errors():
        guard = open_guard()
        template_ids = []
        for photo in photos:
            faces = guard.faces_in(read_file(photo))
            if len(faces) != 1:
                raise InvalidInput(
                    f"{photo} shows {len(faces)} faces; an enrollment photo must show exactly one"
                )
            template_ids += guard.registry.enroll(subject_id, faces)
    if json_output:
        emit_json({"subject_id": subject_id, "templates": len(template_ids)})
    else:
        out.print(f"enrolled {len(template_ids)} template(s) for {subject_id}")


@subjects_app.command("list")
def subjects_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """List subjects (ids, names, template counts; never the templates)."""
    with errors():
        subjects = open_guard().registry.list_subjects(tenant)
    if json_output:
        emit_json(subjects)
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
    with errors():
        erasure = open_guard().registry.erase(subject_id)
    if json_output:
        emit_json(erasure)
    else:
        out.print(
            f"erased {subject_id}: {erasure.templates_removed} template(s), "
            f"{erasure.grants_removed} grant(s); audit reference {erasure.subject_ref[:16]}…"
        )
