"""Settings come from GUARD_* variables, then a TOML file, then defaults."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from guard.config import Settings


def test_defaults_derive_paths(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.data_dir == Path("var")
    assert settings.database_url == f"sqlite:///{tmp_path / 'var' / 'guard.db'}"
    assert settings.blocklist_path == Path("var") / "blocklist"
    assert settings.registry_threshold("dlib") == settings.dlib_registry_threshold
    assert settings.blocklist_threshold("arcface") == settings.arcface_blocklist_threshold
    # A false consent match allows, a false blocklist match denies: consent is stricter.
    assert settings.dlib_registry_threshold > settings.dlib_blocklist_threshold


def test_environment_and_toml(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "guard.toml"
    config.write_text('data_dir = "/srv/guard"\ndlib_registry_threshold = 0.97\ndevice = "cpu"\n')
    monkeypatch.setenv("GUARD_CONFIG_FILE", str(config))
    monkeypatch.setenv("GUARD_DLIB_REGISTRY_THRESHOLD", "0.96")
    settings = Settings()
    assert settings.data_dir == Path("/srv/guard")
    assert settings.dlib_registry_threshold == 0.96  # the environment wins over the file
    assert settings.device == "cpu"


def test_guard_toml_in_working_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("GUARD_CONFIG_FILE", raising=False)
    Path("guard.toml").write_text('face_engine = "arcface"\n')
    assert Settings().face_engine == "arcface"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GUARD_DLIB_BLOCKLIST_THRESHOLD", "1.5"),
        ("GUARD_FACE_ENGINE", "magic"),
        ("GUARD_DEVICE", "tpu"),
        # uvicorn would take a name as a literal that never matches: a proxy silently untrusted.
        ("GUARD_TRUSTED_PROXIES", "127.0.0.1, edge.internal"),
        ("GUARD_TRUSTED_PROXIES", "10.0.0.0/33"),
    ],
)
def test_bad_values_are_rejected(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        Settings()


def test_unknown_toml_keys_are_rejected(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "guard.toml"
    config.write_text("dlib_treshold = 0.9\n")  # a typo must not be silently ignored
    monkeypatch.setenv("GUARD_CONFIG_FILE", str(config))
    with pytest.raises(ValidationError):
        Settings()


def test_trusted_proxies_are_addresses_and_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings().trusted_proxies == ["127.0.0.1", "::1"]
    monkeypatch.setenv("GUARD_TRUSTED_PROXIES", "172.30.42.10, 10.1.0.0/16,fd00::/8")
    assert Settings().trusted_proxies == ["172.30.42.10", "10.1.0.0/16", "fd00::/8"]
