"""What every ``guard`` command shares: the consoles, exit codes, ``--json``, turning guard
errors into one line and an exit code, and opening the guard and files."""

from __future__ import annotations

import getpass
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from guard.config import Settings
from guard.errors import ConfigurationError, EditTimedOut, GuardError, InvalidInput, Unavailable

if TYPE_CHECKING:
    from guard.pipeline import Guard
    from guard.policy import Decision

# Pipes and CI logs get a wide fixed width so tables of ids are not truncated.
out = Console(width=None if sys.stdout.isatty() else 130)
err = Console(stderr=True, width=None if sys.stderr.isatty() else 130)

JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
AsOption = Annotated[str, typer.Option("--as", help="The requester (grantee) asking.")]
OpOption = Annotated[str, typer.Option("--op", help="The operation asked for.")]

EXIT_DENIED, EXIT_INVALID, EXIT_UNAVAILABLE = 1, 2, 3


def operator_name() -> str:
    """Who acts when an operator command runs: whoever holds this deployment's data folder and
    keys is its operator. Recorded in the audit log (e.g. who linked a public figure)."""
    return f"cli:{getpass.getuser()}"


def open_guard(**overrides: Any) -> Guard:
    """The guard the settings describe (``GUARD_*`` variables, ``guard.toml``), with overrides.
    Imported here, not at the top: commands that never decide (``policy check``, ``audit``)
    start without loading the face engine, FAISS and C2PA."""
    from guard.pipeline import Guard

    return Guard(Settings(**overrides))


@contextmanager
def errors() -> Iterator[None]:
    """Turn guard errors into one clear line and an exit code."""
    # A message may quote a file's or a request's own text: printed as text, never as markup.
    try:
        yield
    except InvalidInput as exc:
        err.print(f"[red]error ({exc.code}):[/red] {escape(exc.message)}")
        raise typer.Exit(EXIT_INVALID) from exc
    except (Unavailable, ConfigurationError, EditTimedOut) as exc:
        err.print(f"[red]error ({exc.code}):[/red] {escape(exc.message)}")
        raise typer.Exit(EXIT_UNAVAILABLE) from exc
    except GuardError as exc:
        err.print(f"[red]error ({exc.code}):[/red] {escape(exc.message)}")
        raise typer.Exit(EXIT_INVALID) from exc


def exit_unless_allowed(decision: Decision) -> None:
    """Exit 1 when the policy denied; exit 3, with the reason on stderr, when the guard could
    not decide (an unreadable or invalid policy, a missing key: the message names the setting),
    so a script tells "not allowed" from "misconfigured" as the service does (403 vs 503)."""
    if decision.allowed:
        return
    if decision.unavailable:
        for reason in decision.reasons:
            if reason.denies:
                err.print(f"[red]error (unavailable):[/red] {reason.message}", soft_wrap=True)
        raise typer.Exit(EXIT_UNAVAILABLE)
    raise typer.Exit(EXIT_DENIED)


def read_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror}") from exc


def read_text(path: Path) -> str:
    """A UTF-8 text file (a key, a note): anything else is a clear error, not a traceback."""
    try:
        return read_file(path).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{path} is not UTF-8 text: {exc.reason}") from exc


def progress_bar() -> Progress:
    """A progress bar on stderr (stdout stays clean for ``--json``)."""
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=False,
    )
