"""``guard serve-ext-proc``: the Envoy ext_proc gRPC service (check requests, stamp answers).

It needs the ``gateway`` extra (grpcio and Envoy's protos): ``pip install
'likeness-guard[gateway]'``. See ``examples/gateway/README.md``.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer
from rich.markup import escape

from guard.cli.common import EXIT_UNAVAILABLE, err, errors
from guard.config import Settings

GATEWAY_PACKAGES = ("grpc", "envoy", "udpa", "validate", "xds")


def serve_ext_proc(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (gRPC, plaintext HTTP/2).")] = 50051,
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            help="Exchanges served at once (threads; each holds one for its request and its "
            "answer, the upstream's time included).",
        ),
    ] = 32,
    generator: Annotated[
        str, typer.Option(help="The upstream generator's name, as the C2PA manifest states it.")
    ] = "upstream",
    generator_version: Annotated[
        str, typer.Option(help="The upstream generator's version, for the manifest.")
    ] = "unknown",
    log_level: Annotated[str, typer.Option(help="Log level.")] = "info",
) -> None:
    """Run the Envoy ext_proc gRPC service: checks each request, then scans, watermarks and
    signs the upstream's answer (settings from GUARD_* variables / guard.toml; run `guard
    init` first). Refuses to start (exit 3) on an HMAC, template or audit key that is empty,
    too short or unparsable, and without the gateway extra."""
    from guard.bootstrap import refuse_bad_keys

    try:
        from guard.api.gateway import ext_proc
    except ImportError as exc:
        if (exc.name or "").split(".")[0] not in GATEWAY_PACKAGES:
            raise
        err.print(
            f"[red]error (missing_extra):[/red] the ext_proc service needs grpcio and Envoy's "
            f"protos ({exc.name} is missing); install them with "
            + escape("pip install 'likeness-guard[gateway]'")
        )
        raise typer.Exit(EXIT_UNAVAILABLE) from exc

    with errors():
        settings = Settings()
        refuse_bad_keys(settings)  # exit 3 naming the file: a weak key never serves
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s: %(name)s: %(message)s")
    with errors():
        ext_proc.serve(
            settings,
            host=host,
            port=port,
            workers=workers,
            generator=generator,
            generator_version=generator_version,
        )
