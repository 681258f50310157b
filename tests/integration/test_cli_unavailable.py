"""A guard that cannot decide exits 3 (unavailable or misconfigured), not 1 (denied), with one
line naming the setting to fix; the decision (a fail-closed deny) is still printed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from guard.cli import app
from guard.cli.common import EXIT_DENIED, EXIT_UNAVAILABLE
from guard.samples import sample_bytes

runner = CliRunner()


@pytest.fixture
def initialised(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GUARD_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("GUARD_DATABASE_URL", raising=False)
    monkeypatch.delenv("GUARD_POLICY", raising=False)
    monkeypatch.chdir(tmp_path)
    assert runner.invoke(app, ["init"]).exit_code == 0
    (tmp_path / "photo.png").write_bytes(sample_bytes("coffee"))
    return tmp_path


@pytest.mark.slow
@pytest.mark.parametrize(
    ("policy", "problem"),
    [
        ("missing.yaml", "cannot be read"),
        ("invalid.yaml", "is invalid"),
    ],
)
def test_an_unusable_policy_exits_3_naming_the_setting(
    initialised: Path, monkeypatch: pytest.MonkeyPatch, policy: str, problem: str
) -> None:
    (initialised / "invalid.yaml").write_text("id: half-written\nrules: [\n")
    monkeypatch.setenv("GUARD_POLICY_FILE", str(initialised / policy))
    commands = [
        ["check", "photo.png", "--as", "acme/app"],
        ["edit", "photo.png", "--as", "acme/app", "--op", "relight", "--out", "edited.png"],
        ["stamp", "photo.png", "--generator", "gen", "--out", "stamped.png"],
    ]
    for command in commands:
        result = runner.invoke(app, [*command, "--json"])
        assert result.exit_code == EXIT_UNAVAILABLE, (command, result.output)
        assert "error (unavailable)" in result.stderr and problem in result.stderr
        assert "GUARD_POLICY_FILE" in result.stderr
        decision = json.loads(result.stdout)
        decision = decision.get("decision", decision)
        assert decision["verdict"] == "deny" and decision["reason_codes"] == ["unavailable"]
    assert not (initialised / "edited.png").exists() and not (initialised / "stamped.png").exists()


def test_a_policy_deny_still_exits_1(initialised: Path) -> None:
    (initialised / "group.jpg").write_bytes(sample_bytes("t1"))
    result = runner.invoke(app, ["check", "group.jpg", "--as", "acme/app"])
    assert result.exit_code == EXIT_DENIED, result.output
    assert "no_consent" in result.stdout and "error" not in result.stderr
