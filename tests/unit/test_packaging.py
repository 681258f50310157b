"""pyproject.toml lists the packages explicitly (``policies/`` and ``migrations/`` are mapped into
``guard``, which ``packages.find`` cannot do): every ``guard`` subpackage must be in the list, and
the mapped folders must resolve, through importlib.resources, to the source tree's ones."""

from __future__ import annotations

import tomllib
from pathlib import Path

from setuptools import find_packages

from guard.config import POLICIES_DIR, shipped_folder
from guard.db import MIGRATIONS_DIR

ROOT = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_guard_package_is_listed() -> None:
    found = set(find_packages(ROOT, include=["guard", "guard.*"]))
    mapped = set(SETUPTOOLS["package-dir"])
    assert mapped == {"guard.policies", "guard.migrations"}
    assert set(SETUPTOOLS["packages"]) == found | mapped


def test_the_mapped_folders_are_the_top_level_ones() -> None:
    for package, folder in SETUPTOOLS["package-dir"].items():
        assert (ROOT / folder / "__init__.py").is_file()
        assert shipped_folder(package).resolve() == (ROOT / folder).resolve()
    assert POLICIES_DIR.resolve() == (ROOT / "policies").resolve()
    assert MIGRATIONS_DIR.resolve() == (ROOT / "migrations").resolve()
    assert not (ROOT / "guard" / "policies").exists()
    assert not (ROOT / "guard" / "migrations").exists()


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name != "__pycache__"}


def test_the_package_data_covers_every_file() -> None:
    """A file the globs miss would be left out of the wheel (test_wheel_install builds one)."""
    data = SETUPTOOLS["package-data"]
    assert data["guard.policies"] == ["*.yaml"]
    assert _files(POLICIES_DIR) == {
        "__init__.py",
        *(f"{n}.yaml" for n in ("default", "newsroom", "strict")),
    }
    assert data["guard.migrations"] == ["script.py.mako", "versions/*.py"]
    assert _files(MIGRATIONS_DIR) == {"__init__.py", "env.py", "script.py.mako", "versions"}
    assert {Path(name).suffix for name in _files(MIGRATIONS_DIR / "versions")} == {".py"}
