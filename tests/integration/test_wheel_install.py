"""The wheel carries the shipped policies and the migrations, and an installed copy finds them:
build it, install it into a fresh venv, run ``guard init`` and ``guard check`` from another
directory, and pick a shipped policy with ``GUARD_POLICY``.

The fresh venv sees the project's dependencies through a ``.pth`` line naming this venv's
site-packages (nothing is downloaded). A plain path line does not run the ``.pth`` files found
there, so the editable install's finder stays off and ``guard`` can only come from the wheel.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from guard.samples import sample_bytes

ROOT = Path(__file__).resolve().parents[2]
# What the wheel is built from (pyproject.toml names README.md as the long description).
SOURCES = ("pyproject.toml", "README.md", "guard", "policies", "migrations")
PIP = (sys.executable, "-m", "pip")

pytestmark = pytest.mark.slow


def _run(
    *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args],
        check=False,
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Built offline from a copy of the sources: a build in the working tree would leave build/
    behind, and setuptools reuses a stale build/lib."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name, source / name, ignore=shutil.ignore_patterns("__pycache__")
            )
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    built = _run(
        *PIP,
        "wheel",
        "--no-deps",
        "--no-build-isolation",
        "--no-index",
        "--wheel-dir",
        base / "dist",
        source,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    (found,) = (base / "dist").glob("likeness_guard-*.whl")
    return found


def test_the_wheel_carries_policies_and_migrations(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    for policy in sorted((ROOT / "policies").glob("*.yaml")):
        assert f"guard/policies/{policy.name}" in names
    for name in ("__init__.py", "env.py", "script.py.mako"):
        assert f"guard/migrations/{name}" in names
    versions = sorted((ROOT / "migrations" / "versions").glob("*.py"))
    assert len(versions) >= 4
    for version in versions:
        assert f"guard/migrations/versions/{version.name}" in names
    for script in sorted((ROOT / "migrations" / "sql").glob("*.sql")):  # the queue's schema
        assert f"guard/migrations/sql/{script.name}" in names
    assert "guard/py.typed" in names
    # Only guard/ and its metadata: policies/ and migrations/ are not top-level packages.
    tops = {name.split("/")[0] for name in names}
    assert {top for top in tops if not top.endswith(".dist-info")} == {"guard"}


@pytest.fixture(scope="module")
def venv(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed and this venv's packages visible."""
    target = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(target)], check=True)
    python = target / "bin" / "python"
    site = _run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])")
    assert site.returncode == 0, site.stderr
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(site.stdout.strip()) / "project-dependencies.pth").write_text(
        "".join(f"{p}\n" for p in ours)
    )
    # --ignore-installed: the editable install seen through the .pth is not this venv's to remove.
    installed = _run(
        *PIP,
        "--python",
        python,
        "install",
        "--no-deps",
        "--no-index",
        "--ignore-installed",
        "--quiet",
        wheel,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return target


@pytest.fixture
def elsewhere(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """A working directory outside the repository, and an environment with no GUARD_* setting
    and no path back into the source tree."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARD_") and k != "PYTHONPATH"}
    env["PYTHONNOUSERSITE"] = "1"
    work = tmp_path / "elsewhere"
    work.mkdir()
    return work, env


def test_the_installed_package_finds_its_files(
    venv: Path, elsewhere: tuple[Path, dict[str, str]]
) -> None:
    work, env = elsewhere
    probe = _run(
        venv / "bin" / "python",
        "-c",
        "import json, guard, guard.config as c, guard.db as d; print(json.dumps([guard.__file__,"
        " str(c.POLICIES_DIR), list(c.SHIPPED_POLICIES), str(d.MIGRATIONS_DIR)]))",
        cwd=work,
        env=env,
    )
    assert probe.returncode == 0, probe.stderr
    module, policies, shipped, migrations = json.loads(probe.stdout)
    installed = venv.resolve()
    assert Path(module).resolve().is_relative_to(installed), module  # not the repository's
    assert Path(policies).resolve().is_relative_to(installed)
    assert Path(migrations).resolve().is_relative_to(installed)
    assert shipped == ["default", "newsroom", "strict"]


def test_init_and_check_from_another_directory(
    venv: Path, elsewhere: tuple[Path, dict[str, str]]
) -> None:
    work, env = elsewhere
    guard = venv / "bin" / "guard"
    photo = work / "group.jpg"
    photo.write_bytes(sample_bytes("t1"))  # six people, none with consent on record

    init = _run(guard, "init", "--json", cwd=work, env=env)
    assert init.returncode == 0, init.stdout + init.stderr
    newest = max(p.name.split("_")[0] for p in (ROOT / "migrations" / "versions").glob("*.py"))
    assert json.loads(init.stdout)["schema_revision"] == newest  # every migration ran
    assert (work / "var" / "guard.db").is_file()  # the default data dir, relative to here

    # The default policy: unknown faces are denied, even for a background blur.
    default = _run(guard, "check", photo, "--op", "background_blur", "--json", cwd=work, env=env)
    assert default.returncode == 1, default.stdout + default.stderr
    decision = json.loads(default.stdout)
    assert decision["policy"]["id"] == "default"
    assert decision["verdict"] == "deny"
    assert "no_consent" in {reason["code"] for reason in decision["reasons"]}

    # GUARD_POLICY=newsroom: bystanders may stay in a background blur.
    newsroom = _run(
        guard,
        "check",
        photo,
        "--op",
        "background_blur",
        "--json",
        cwd=work,
        env={**env, "GUARD_POLICY": "newsroom"},
    )
    assert newsroom.returncode == 0, newsroom.stdout + newsroom.stderr
    decision = json.loads(newsroom.stdout)
    assert decision["policy"]["id"] == "newsroom"
    assert decision["verdict"] in ("allow", "allow_with_conditions")

    unknown = _run(guard, "check", photo, cwd=work, env={**env, "GUARD_POLICY": "nope"})
    assert unknown.returncode == 3
    assert "choose one of default, newsroom, strict" in unknown.stderr
