"""``GUARD_POLICY=<name>`` picks a shipped policy wherever the guard runs from; a name that does
not ship, or naming both a shipped policy and a file, is a configuration error (exit 3)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from guard.cli import app
from guard.config import DEFAULT_POLICY_FILE, POLICIES_DIR, SHIPPED_POLICIES, Settings
from guard.errors import ConfigurationError
from guard.policy import load_policy


@pytest.fixture(autouse=True)
def _no_policy_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # not the repository root: the shipped folder is found anyway
    for name in ("GUARD_POLICY", "GUARD_POLICY_FILE", "GUARD_CONFIG_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_the_shipped_policies() -> None:
    assert SHIPPED_POLICIES == ("default", "newsroom", "strict")
    assert DEFAULT_POLICY_FILE == POLICIES_DIR / "default.yaml"
    assert Settings().policy_file == DEFAULT_POLICY_FILE
    assert Settings().policy is None


@pytest.mark.parametrize("name", ["default", "newsroom", "strict"])
def test_a_shipped_policy_by_name(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("GUARD_POLICY", name)
    settings = Settings()
    assert settings.policy == name
    assert settings.policy_file == POLICIES_DIR / f"{name}.yaml"
    assert settings.policy_file.is_absolute()
    assert load_policy(settings.policy_file).id == name


def test_a_shipped_policy_from_the_toml_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    Path("guard.toml").write_text('policy = "strict"\n')
    assert Settings().policy_file == POLICIES_DIR / "strict.yaml"


@pytest.mark.parametrize("name", ["nope", "newsroom.yaml", "Default", "../policies/default", ""])
def test_an_unknown_name_lists_the_shipped_ones(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("GUARD_POLICY", name)
    with pytest.raises(ConfigurationError) as raised:
        Settings()
    message = raised.value.message
    assert "GUARD_POLICY" in message and "is not a shipped policy" in message
    assert "default, newsroom, strict" in message


def test_both_settings_are_an_error_naming_both(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("GUARD_POLICY", "newsroom")
    monkeypatch.setenv("GUARD_POLICY_FILE", str(tmp_path / "mine.yaml"))
    with pytest.raises(ConfigurationError, match=r"GUARD_POLICY=newsroom and GUARD_POLICY_FILE="):
        Settings()
    monkeypatch.delenv("GUARD_POLICY_FILE")
    with pytest.raises(ConfigurationError, match="both"):
        Settings(policy_file=POLICIES_DIR / "newsroom.yaml")  # even when they agree


def test_the_command_exits_3_with_the_message(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_POLICY", "nope")
    result = CliRunner().invoke(app, ["init"])
    assert result.exit_code == 3
    assert "is not a shipped policy; choose one of default, newsroom, strict" in result.output
    assert not Path("var").exists()  # nothing was created
