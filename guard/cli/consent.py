"""``guard consent``: grants from a subject to a requester."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from guard.cli.common import JsonFlag, errors, open_guard, out, read_file
from guard.cli.render import emit_json
from guard.errors import InvalidInput

consent_app = typer.Typer(no_args_is_help=True, help="Consent grants.")


def _when(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise InvalidInput(f"{option} must be an ISO 8601 date-time, got {value!r}") from exc
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _evidence_digest(evidence: Path | None, evidence_sha256: str | None) -> str:
    if evidence is not None and evidence_sha256 is None:
        return hashlib.sha256(read_file(evidence)).hexdigest()
    if evidence is None and evidence_sha256 is not None:
        return evidence_sha256
    raise InvalidInput("give exactly one of --evidence FILE or --evidence-sha256 HEX")


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
    with errors():
        digest = _evidence_digest(evidence, evidence_sha256)
        expires_at = _when(expires, "--expires")
        if days is not None:
            expires_at = datetime.now(UTC) + timedelta(days=days)
        grant = open_guard().registry.grant(
            subject_id,
            grantee=grantee,
            scopes=scope,
            evidence_sha256=digest,
            not_before=_when(not_before, "--not-before"),
            expires_at=expires_at,
        )
    emit_json(grant) if json_output else out.print(grant.id)


@consent_app.command("revoke")
def consent_revoke(grant_id: str, json_output: JsonFlag = False) -> None:
    """Revoke a grant now; every later check denies with consent_revoked."""
    with errors():
        grant = open_guard().registry.revoke(grant_id)
    emit_json(grant) if json_output else out.print(f"revoked {grant.id}")


@consent_app.command("list")
def consent_list(
    subject: Annotated[str | None, typer.Option(help="Only this subject's grants.")] = None,
    grantee: Annotated[str | None, typer.Option(help="Only grants to this grantee.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """List grants with their status now."""
    with errors():
        grants = open_guard().registry.list_grants(subject_id=subject, grantee=grantee)
    if json_output:
        emit_json(grants)
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
