"""``guard keys``: API keys for the HTTP service (the secrets are ``guard secrets``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from guard.cli.common import JsonFlag, err, errors, out
from guard.cli.render import emit_json
from guard.config import Settings

if TYPE_CHECKING:
    from guard.api import ApiKeyStore

keys_app = typer.Typer(no_args_is_help=True, help="API keys for the HTTP service.")


def _api_keys() -> ApiKeyStore:
    from guard.api import ApiKeyStore
    from guard.db import Database

    database = Database(Settings().database_url)
    database.require_schema()
    return ApiKeyStore(database)


@keys_app.command("create")
def keys_create(
    role: Annotated[str, typer.Option(help="operator, admin, integrator or auditor.")],
    tenant: Annotated[
        str | None, typer.Option(help="Tenant the key acts for (none for an operator key).")
    ] = None,
    requester: Annotated[
        str | None,
        typer.Option(help="Requester id inside the tenant (default: the tenant): the grantee."),
    ] = None,
    label: Annotated[str | None, typer.Option(help="A note: who holds the key.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """Create an API key for the HTTP service. The key is shown once; only its hash is kept."""
    with errors():
        issued = _api_keys().create(tenant=tenant, role=role, requester=requester, label=label)
    if json_output:
        emit_json({"token": issued.token, "key": issued.key})
        return
    out.print(issued.token)
    key = issued.key
    holder = (
        "the deployment's operator (no tenant)"
        if key.role.value == "operator"
        else f"tenant {key.tenant}, role {key.role.value}, requester {key.requester}"
    )
    err.print(f"key {key.id}: {holder}. Store it now: it cannot be shown again.")


@keys_app.command("list")
def keys_list(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    json_output: JsonFlag = False,
) -> None:
    """List API keys (ids, tenants, roles; never secrets)."""
    with errors():
        keys = _api_keys().list_keys(tenant)
    if json_output:
        emit_json(keys)
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
    with errors():
        key = _api_keys().revoke(key_id)
    emit_json(key) if json_output else out.print(f"revoked API key {key.id}")
