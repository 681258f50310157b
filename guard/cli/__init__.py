"""The ``guard`` command: parses arguments, calls the library, prints. No logic of its own.

One module per sub-app (``subjects``, ``consent``, ``blocklist``, ``keys``, ``audit``,
``policy``) and per group of top-level commands (``init``: init, secrets, serve; ``ext_proc``:
serve-ext-proc; ``decisions``: check, edit, stamp, verify; ``demo``); ``common`` holds what
they share, ``render`` the printing.

Exit codes: 0 success / allowed, 1 denied, 2 bad input or usage, 3 unavailable or misconfigured.
``guard verify`` has its own: 0 valid or recovered, 1 tampered or not from this guard, 2 error.
Every command takes ``--json`` for machine-readable output.
"""

from __future__ import annotations

import typer

from guard.cli.audit import audit_app
from guard.cli.blocklist import blocklist_app
from guard.cli.consent import consent_app
from guard.cli.decisions import check, edit, stamp, verify
from guard.cli.demo import demo
from guard.cli.ext_proc import serve_ext_proc
from guard.cli.init import init, secrets_app, serve
from guard.cli.keys import keys_app
from guard.cli.policy import policy_app
from guard.cli.subjects import subjects_app
from guard.cli.worker import worker

app = typer.Typer(no_args_is_help=True, add_completion=False, help="Likeness Guard")
for command in (init, serve, serve_ext_proc, worker, check, edit, stamp, verify, demo):
    app.command()(command)
for name, sub_app in (
    ("secrets", secrets_app),
    ("keys", keys_app),
    ("subjects", subjects_app),
    ("consent", consent_app),
    ("blocklist", blocklist_app),
    ("audit", audit_app),
    ("policy", policy_app),
):
    app.add_typer(sub_app, name=name)


def main() -> None:
    app()


__all__ = ["app", "main"]
