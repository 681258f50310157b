"""pyproject.toml lists the packages explicitly (``policies/`` and ``migrations/`` are mapped into
``guard``, which ``packages.find`` cannot do): every ``guard`` subpackage must be in the list, and
the mapped folders must resolve, through importlib.resources, to the source tree's ones. The
Dockerfile and compose.yaml are held to the code: pinned images, real settings and commands,
keys mounted where the guard reads them, nothing secret inline."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import typer
import yaml
from setuptools import find_packages
from typer.testing import CliRunner

from guard.audit import PRIVATE_KEY_FILE, PUBLIC_KEY_FILE
from guard.cli import app as guard_app
from guard.config import POLICIES_DIR, Settings, shipped_folder
from guard.db import MIGRATIONS_DIR
from guard.provenance.certificates import CHAIN_FILE, KEY_FILE
from guard.secrets import HMAC_KEY_FILE, TEMPLATE_KEY_FILE

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
    assert data["guard.migrations"] == ["script.py.mako", "versions/*.py", "sql/*.sql"]
    assert _files(MIGRATIONS_DIR) == {"__init__.py", "env.py", "script.py.mako", "versions", "sql"}
    assert {Path(name).suffix for name in _files(MIGRATIONS_DIR / "versions")} == {".py"}
    # The queue's schema, applied by revision 0013 (guard/jobs/queue.py).
    assert {Path(name).suffix for name in _files(MIGRATIONS_DIR / "sql")} == {".sql"}


# The container image and compose.yaml (docs/deploy.md) ---------------------------------------
# Docker cannot build or run here, so these read the files and hold them to what the code says:
# pinned images, settings that exist, commands that exist, keys where the guard reads them.

COMPOSE = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
GUARD_SERVICES = ("migrate", "api", "worker")
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
IMAGE_DATA_DIR = "/var/lib/guard"


def _dockerfile() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction: comments dropped, continuations joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [
        (line.split(None, 1)[0].upper(), line.split(None, 1)[1] if " " in line else "")
        for line in lines
        if line and not line.startswith("#")
    ]


DOCKERFILE = _dockerfile()


def _final_stage() -> list[tuple[str, str]]:
    starts = [i for i, (op, _) in enumerate(DOCKERFILE) if op == "FROM"]
    return DOCKERFILE[starts[-1] :]


def _arg_default(name: str) -> str:
    [value] = [args.split("=", 1)[1] for op, args in DOCKERFILE if args.startswith(f"{name}=")]
    return value.strip('"')


def _guard_command_names() -> dict[str, Any]:
    """The ``guard`` sub-commands by name, as ``guard --help`` lists them."""
    group = typer.main.get_command(guard_app)
    assert isinstance(group, typer.core.TyperGroup)
    return dict(group.commands)


def _secret_like(name: str) -> bool:
    return re.search(r"KEY|SECRET|PASSWORD|TOKEN|PEM|PASS", name.upper()) is not None


def test_every_service_image_is_pinned_to_a_version() -> None:
    for name, service in SERVICES.items():
        image = service["image"]
        repository, _, tag = image.rpartition(":")
        assert repository and "/" not in tag, f"{name}: {image} has no tag"
        assert tag != "latest" and re.match(r"\d+\.\d+(\.\d+)?", tag), f"{name}: {image}"


def test_the_guard_services_share_one_build_tagged_with_the_version() -> None:
    builds = {json.dumps(SERVICES[name]["build"], sort_keys=True) for name in GUARD_SERVICES}
    images = {SERVICES[name]["image"] for name in GUARD_SERVICES}
    assert len(builds) == 1 and images == {f"likeness-guard:{PROJECT['version']}"}
    build = SERVICES["api"]["build"]
    assert (ROOT / build["context"] / build["dockerfile"]).is_file()
    assert [name for name, service in SERVICES.items() if "build" in service] == list(
        GUARD_SERVICES
    )


def test_the_commands_the_services_run_exist() -> None:
    commands = _guard_command_names()
    runner = CliRunner()
    run = [SERVICES[name]["command"] for name in GUARD_SERVICES]
    run.append(next(args for op, args in _final_stage() if op == "CMD"))
    for command in run:
        argv = json.loads(command) if isinstance(command, str) else command
        assert argv[0] == "guard", argv
        assert argv[1] in commands, f"`guard {argv[1]}` does not exist"
        options = {opt for param in commands[argv[1]].params for opt in param.opts}
        assert {arg for arg in argv[2:] if arg.startswith("--")} <= options, argv
        assert runner.invoke(guard_app, [argv[1], "--help"]).exit_code == 0


def test_every_guard_setting_named_is_a_real_setting() -> None:
    fields = {f"GUARD_{name.upper()}" for name in Settings.model_fields}
    named = {key for service in SERVICES.values() for key in service.get("environment", {})}
    named |= {
        assignment.split("=", 1)[0]
        for op, args in DOCKERFILE
        if op == "ENV"
        for assignment in args.split()
        if "=" in assignment
    }
    guard_names = {name for name in named if name.startswith("GUARD_")}
    assert guard_names and guard_names <= fields, guard_names - fields


def test_no_secret_is_written_into_the_compose_file() -> None:
    text = (ROOT / "compose.yaml").read_text()
    assert "BEGIN" not in text and "whsec_" not in text
    for name, service in SERVICES.items():
        for key, value in service.get("environment", {}).items():
            url = urlsplit(str(value))
            assert url.password is None, f"{name}: {key} carries a password"
            if _secret_like(key):
                # Only a pointer to a file (a mounted secret), never the value itself.
                assert key.endswith("FILE") and str(value).startswith("/run/secrets/"), key
    for name, secret in COMPOSE["secrets"].items():
        assert set(secret) == {"file"} and secret["file"].startswith("./deploy/dev-keys/"), name
    assert "/deploy/dev-keys/" in (ROOT / ".gitignore").read_text().splitlines()
    # The build context is an allow-list: keys on the build machine never enter the image.
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert next(line for line in ignored if line and not line.startswith("#")) == "*"


def test_the_keys_are_mounted_where_the_guard_reads_them() -> None:
    settings = Settings(data_dir=Path(IMAGE_DATA_DIR))
    expected = {
        "hmac_key": settings.keys_dir / HMAC_KEY_FILE,
        "template_key": settings.keys_dir / TEMPLATE_KEY_FILE,
        "audit_signing_key": settings.audit_keys_dir / PRIVATE_KEY_FILE,
        "audit_verifier_key": settings.audit_keys_dir / PUBLIC_KEY_FILE,
        "c2pa_private_key": settings.c2pa_keys_dir / KEY_FILE,
        "c2pa_cert_chain": settings.c2pa_keys_dir / CHAIN_FILE,
    }
    for name in GUARD_SERVICES:
        service = SERVICES[name]
        assert service["environment"]["GUARD_DATA_DIR"] == IMAGE_DATA_DIR
        mounted = {s["source"]: Path(s["target"]) for s in service["secrets"] if "target" in s}
        assert mounted == expected, name
        pgpass = service["environment"]["PGPASSFILE"]
        assert pgpass == "/run/secrets/pgpass" and {"source": "pgpass"} in service["secrets"]
    assert f"GUARD_DATA_DIR={IMAGE_DATA_DIR}" in " ".join(a for _, a in DOCKERFILE)


def test_the_services_start_in_order_and_fail_safe() -> None:
    assert SERVICES["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker"):
        service = SERVICES[name]
        assert service["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
        assert service["restart"] == "unless-stopped"
        assert int(re.sub(r"\$\{\w+:-(\d+)\}", r"\1", str(service["deploy"]["replicas"]))) >= 1
    for name in GUARD_SERVICES:
        service = SERVICES[name]
        assert service["read_only"] is True and "/tmp" in service["tmpfs"], name
    for name in ("postgres", "redis", "api", "edge"):
        assert SERVICES[name]["healthcheck"]["test"], name
    # The image's HEALTHCHECK probes the API's port: the processes without one turn it off.
    for name in ("migrate", "worker"):
        assert SERVICES[name]["healthcheck"] == {"disable": True}, name
    assert SERVICES["migrate"]["restart"] == "no"


def test_the_edge_lets_through_every_body_the_guard_accepts() -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    [size] = re.findall(r"client_max_body_size (\d+)m;", conf)
    assert int(size) * 1024 * 1024 >= Settings().api_max_body_bytes
    assert "$request" not in conf.replace("$request_method", "").replace("$request_time", "")


def test_the_base_image_is_pinned_to_a_patch_release() -> None:
    bases = [args.split()[0] for op, args in DOCKERFILE if op == "FROM"]
    assert len(bases) >= 2, "a build stage and a runtime stage"
    for base in bases:
        image = _arg_default("PYTHON_IMAGE") if base == "${PYTHON_IMAGE}" else base
        assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm(@sha256:[0-9a-f]{64})?", image)


def test_the_image_runs_as_a_fixed_non_root_user() -> None:
    final = _final_stage()
    ops = [op for op, _ in final]
    [user] = [args for op, args in final if op == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit() and int(uid) >= 1000
    assert ops.index("USER") < ops.index("CMD")
    assert f"--uid {uid}" in " ".join(args for op, args in final if op == "RUN")
    assert f"chown -R {uid}:{uid}" in (ROOT / "deploy" / "make-dev-keys.sh").read_text()


def test_every_pip_install_is_constrained() -> None:
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    installs = [
        command
        for op, args in DOCKERFILE
        if op == "RUN"
        for command in re.split(r"&&|;", args)
        if "pip install" in command
    ]
    assert installs
    for command in installs:
        assert "-c constraints.txt" in command, command
        for name, version in re.findall(r"([A-Za-z0-9_.-]+)==([^\s\"']+)", command):
            assert pins.get(name, version) == version, f"{name}=={version} against constraints"
    assert "diffusers" not in _arg_default("EXTRAS")  # no torch in the default image


def test_nothing_is_fetched_at_run_time() -> None:
    for op, args in DOCKERFILE:
        if op in ("CMD", "ENTRYPOINT"):
            assert not re.search(r"\b(curl|wget|pip)\b", args), args
        assert not (op == "ADD" and "://" in args), args
    assert [op for op, _ in DOCKERFILE].count("HEALTHCHECK") == 1
    [health] = [args for op, args in DOCKERFILE if op == "HEALTHCHECK"]
    [expose] = [args for op, args in DOCKERFILE if op == "EXPOSE"]
    assert f"127.0.0.1:{expose}/healthz" in health
    [cmd] = [json.loads(args) for op, args in _final_stage() if op == "CMD"]
    assert cmd[cmd.index("--port") + 1] == expose and cmd[cmd.index("--host") + 1] == "0.0.0.0"
