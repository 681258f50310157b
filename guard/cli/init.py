"""``guard init``, ``guard secrets init`` and ``guard serve``: a data directory and its service."""

from __future__ import annotations

from typing import Annotated

import typer

from guard.cli.common import JsonFlag, err, errors, out
from guard.cli.render import emit_json, print_signing
from guard.config import Settings

secrets_app = typer.Typer(
    no_args_is_help=True,
    help="Local secrets: template and HMAC keys, the audit checkpoint key, C2PA signing.",
)


def init(json_output: JsonFlag = False) -> None:
    """Create or upgrade the data directory and database: schema, dev keys, an empty
    blocklist (in the database) when there is none."""
    from guard.bootstrap import initialise
    from guard.faces import create_face_engine

    with errors():
        settings = Settings()
        report = initialise(settings, create_face_engine(settings))
    if json_output:
        emit_json(report)
        return
    out.print(f"database {report.database} at schema {report.schema_revision}")
    for path in report.keys_created:
        out.print(f"created development key {path} (keep it secret; back it up)")
    if report.blocklist_created:
        out.print("created an empty public-figure blocklist in the database")
    if report.blocklist_import_pending:
        out.print(
            f"the blocklist files in {report.legacy_blocklist_dir} are imported into the "
            "database when the guard first reads the blocklist"
        )
    print_signing(report.signing)


@secrets_app.command("init")
def secrets_init(json_output: JsonFlag = False) -> None:
    """Create missing development secrets: template, HMAC and audit keys and a local C2PA
    signing identity."""
    from guard.bootstrap import create_keys

    with errors():
        created, signing = create_keys(Settings())
    if json_output:
        emit_json({"keys_created": created, "signing": signing})
        return
    for path in created:
        out.print(f"created development key {path} (keep it secret; back it up)")
    if signing is not None and not signing.created:
        out.print(f"C2PA signing credentials already exist in {signing.directory}")
    print_signing(signing)


def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8080,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Run the HTTP service (settings from GUARD_* variables / guard.toml; run `guard init`
    first). With several workers, set GUARD_REDIS_URL so rate limits are shared. Refuses to
    start (exit 3) on an HMAC, template or audit key that is empty, too short or unparsable."""
    from guard.api.server import serve as run_service
    from guard.bootstrap import refuse_bad_keys

    with errors():
        settings = Settings()
        refuse_bad_keys(settings)  # exit 3 naming the file: a weak key never serves
    if workers > 1 and not settings.redis_url:
        err.print(
            "[yellow]warning:[/yellow] GUARD_REDIS_URL is not set: each of the "
            f"{workers} workers keeps its own rate limits and usage counters"
        )
    with errors():
        run_service(
            host=host,
            port=port,
            workers=workers,
            log_level=log_level,
            trusted_proxies=settings.trusted_proxies,
        )
