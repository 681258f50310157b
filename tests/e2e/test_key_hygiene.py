"""Key hygiene over HTTP and the CLI, each test the attack it stops:

- an empty ``hmac.key`` used to start a ready service whose audit pseudonyms anyone could
  compute: an empty, short or garbage HMAC, template or audit key now stops ``guard serve`` and
  the app's start-up with a message naming the file, and a service whose key goes bad while it
  runs answers 503 and is not ready (the file named in ``/readyz``);
- a wrong template key used to make every request 503 while ``/readyz`` said ready, and putting
  the right key back needed a restart: now ``/readyz`` is 503 naming the file, and the right key
  written back is picked up without a restart;
- a rotated HMAC or audit key used to be ignored until a restart (pseudonyms and checkpoints
  made with the key the operator replaced): now the next request uses the new one.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from cryptography.fernet import Fernet
from typer.testing import CliRunner

from guard import Guard
from guard.api import ApiKeyStore, Role, create_app
from guard.audit import PRIVATE_KEY_FILE, CheckpointVerifier, create_checkpoint_key
from guard.bootstrap import initialise
from guard.cli import app as cli
from guard.cli.common import EXIT_UNAVAILABLE
from guard.config import Settings
from guard.errors import KeyMaterialError
from guard.faces import FaceEngine
from guard.requests import CheckRequest
from guard.secrets import HMAC_KEY_FILE, TEMPLATE_KEY_FILE
from tests.support.guards import GuardFactory
from tests.support.live import LiveFactory, LiveService, params
from tests.support.photos import PORTRAIT, crop
from tests.support.registry import REQUESTER, enroll_model

AUDIT_KEY = f"audit/{PRIVATE_KEY_FILE}"
READY_CHECK = {HMAC_KEY_FILE: "hmac_key", TEMPLATE_KEY_FILE: "template_key", AUDIT_KEY: "audit_key"}

# (file under <data_dir>/keys/, what an operator or attacker left there, what the error says)
BAD_KEYS = {
    "empty hmac key": (HMAC_KEY_FILE, b"", "is 0 bytes; it needs at least 32 random bytes"),
    "blank hmac key": (HMAC_KEY_FILE, b"\n \n", "is 0 bytes; it needs at least 32 random bytes"),
    "short hmac key": (HMAC_KEY_FILE, b"0123456789abcdef\n", "is 16 bytes"),
    "garbage template key": (TEMPLATE_KEY_FILE, b"hunter2", "is not a valid Fernet key"),
    "empty template key": (TEMPLATE_KEY_FILE, b"", "is 0 bytes"),
    "garbage audit key": (AUDIT_KEY, b"-----BEGIN PRIVATE KEY-----\nAAAA\n", "is not a PEM"),
    "empty audit key": (AUDIT_KEY, b"", "is 0 bytes"),
}
bad_keys = pytest.mark.parametrize(
    ("name", "content", "problem"), list(BAD_KEYS.values()), ids=list(BAD_KEYS)
)


def replace(path: Path, data: bytes) -> None:
    """Write a key as an operator should: a new file renamed over the old one."""
    temporary = path.with_name(path.name + ".new")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def ready(service: LiveService) -> httpx.Response:
    return httpx.get(f"{service.base_url}/readyz")


def portrait_check(api: httpx.Client) -> httpx.Response:
    """A check of the enrolled model's portrait: needs the registry, both keys and the log."""
    image = {"image": ("portrait.jpg", crop("t1", PORTRAIT), "image/jpeg")}
    return api.post("/v1/checks", data=params(operation="relight"), files=image)


def requester_client(service: LiveService) -> httpx.Client:
    """An integrator key acting as REQUESTER, the grantee of enroll_model's consent."""
    issued = ApiKeyStore(service.guard.db).create(
        tenant="acme", role=Role.INTEGRATOR, requester=REQUESTER
    )
    service.tokens[("acme", Role.INTEGRATOR)] = issued.token
    return service.client("acme", Role.INTEGRATOR)


def assert_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.json()["type"] == "https://likeness-guard.dev/problems/unavailable"


# refusing to start ---------------------------------------------------------------------------


@pytest.fixture
def data_dir(tmp_path: Path, face_engine: FaceEngine, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """An initialised data folder that `guard serve` reads from the environment."""
    monkeypatch.setenv("GUARD_DATA_DIR", str(tmp_path / "var"))
    for variable in ("GUARD_DATABASE_URL", "GUARD_HMAC_KEY", "GUARD_TEMPLATE_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    initialise(settings, face_engine)
    return settings


@bad_keys
def test_guard_serve_refuses_to_start_on_a_bad_key_naming_the_file(
    data_dir: Settings, monkeypatch: pytest.MonkeyPatch, name: str, content: bytes, problem: str
) -> None:
    started: list[object] = []
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: started.append(args))
    path = data_dir.keys_dir / name
    replace(path, content)
    result = CliRunner().invoke(cli, ["serve", "--port", "9"])
    assert result.exit_code == EXIT_UNAVAILABLE, result.output
    assert started == []
    message = " ".join(result.stderr.split())  # the console wraps long lines
    assert f"{path} {problem}" in message
    if content.strip():
        assert content.strip().decode() not in message


def test_guard_serve_refuses_a_short_hmac_key_setting(
    data_dir: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARD_HMAC_KEY", "changeme")
    monkeypatch.setattr("uvicorn.run", lambda *args, **kwargs: pytest.fail("it started"))
    result = CliRunner().invoke(cli, ["serve"])
    assert result.exit_code == EXIT_UNAVAILABLE
    assert "GUARD_HMAC_KEY is 8 bytes; it needs at least 32 random bytes" in result.stderr
    assert "changeme" not in result.output


@bad_keys
def test_the_app_refuses_to_start_on_a_bad_key_naming_the_file(
    make_guard: GuardFactory, name: str, content: bytes, problem: str
) -> None:
    guard = make_guard()
    path = guard.settings.keys_dir / name
    replace(path, content)
    app = create_app(guard=guard)

    async def start() -> None:
        async with app.router.lifespan_context(app):
            pytest.fail("the app started with a bad key")

    with pytest.raises(KeyMaterialError) as refused:
        asyncio.run(start())
    assert f"{path} {problem}" in refused.value.message


@pytest.mark.slow
def test_uvicorn_exits_on_an_empty_hmac_key_naming_the_file(data_dir: Settings) -> None:
    """The app as operators run it without `guard serve`: uvicorn's factory, its own process."""
    path = data_dir.keys_dir / HMAC_KEY_FILE
    path.write_bytes(b"")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "-m", "uvicorn", "--factory", "--port", str(port)]
    done = subprocess.run(
        [*command, "guard.api.app:app_from_environment"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 3, done.stderr  # uvicorn's "startup failed"
    assert f"the hmac key {path} is 0 bytes" in done.stderr
    assert "Application startup failed" in done.stderr


# a key that goes bad while the service runs -----------------------------------------------------


@bad_keys
def test_a_key_gone_bad_is_503_and_not_ready_until_fixed_without_a_restart(
    live: LiveFactory, name: str, content: bytes, problem: str
) -> None:
    service = live()
    path = service.guard.settings.keys_dir / name
    good = path.read_bytes()
    with service.client() as api:
        assert portrait_check(api).status_code != 503
        assert ready(service).status_code == 200
        replace(path, content)
        assert_unavailable(portrait_check(api))
        readiness = ready(service)
        assert readiness.status_code == 503
        check = readiness.json()["checks"][READY_CHECK[name]]
        assert check.startswith("unavailable: ") and f"{path} {problem}" in check
        replace(path, good)  # fixed on disk: no restart
        assert ready(service).status_code == 200, ready(service).text
        assert portrait_check(api).status_code != 503


# the wrong template key -------------------------------------------------------------------------


def test_a_wrong_template_key_is_not_ready_and_the_right_one_is_picked_up(
    live: LiveFactory,
) -> None:
    service = live()
    enroll_model(service.guard)
    path = service.guard.settings.keys_dir / TEMPLATE_KEY_FILE
    right = path.read_bytes()
    with requester_client(service) as api:
        assert portrait_check(api).json()["decision"]["verdict"] == "allow_with_conditions"
        replace(path, Fernet.generate_key())  # a valid key, but not the one they were stored with
        readiness = ready(service)
        assert readiness.status_code == 503
        check = readiness.json()["checks"]["template_key"]
        assert "cannot be decrypted" in check and f"the template key {path}" in check
        assert readiness.json()["checks"]["hmac_key"] == "ok"
        assert_unavailable(portrait_check(api))
        # Nothing is written under the wrong key either: enrollment fails closed too.
        assert_unavailable(api.post("/v1/subjects", json={"display_name": "Someone"}))
        replace(path, right)
        assert ready(service).status_code == 200, ready(service).text
        allowed = portrait_check(api)
        assert allowed.status_code == 200, allowed.text
        assert allowed.json()["decision"]["verdict"] == "allow_with_conditions"


# rotation ---------------------------------------------------------------------------------------


def _latest_requester_ref(guard: Guard) -> str:
    size = guard.audit.size()
    ((_, entry),) = guard.audit.entries(start=size - 1, limit=1)
    assert entry["kind"] == "decision"
    return str(entry["requester"])


def test_a_rotated_hmac_key_is_used_from_the_next_request(
    live: LiveFactory, face_engine: FaceEngine
) -> None:
    service = live()
    path = service.guard.settings.keys_dir / HMAC_KEY_FILE
    with service.client() as api:
        assert api.post("/v1/checks", data=params(operation="generate")).status_code == 200
        before = _latest_requester_ref(service.guard)
        path.write_bytes(os.urandom(48).hex().encode())  # rewritten in place, as `echo >` does
        assert api.post("/v1/checks", data=params(operation="generate")).status_code == 200
        after = _latest_requester_ref(service.guard)
    assert after != before
    assert ready(service).status_code == 200
    # The pseudonym is the one a restarted service would write with the new key.
    restarted = Guard(service.guard.settings, face_engine=face_engine)
    try:
        restarted.check(CheckRequest(requester="acme/app", operation="generate"))
        assert _latest_requester_ref(restarted) == after
    finally:
        restarted.close()


def test_a_rotated_audit_key_signs_the_next_checkpoint(live: LiveFactory, tmp_path: Path) -> None:
    service = live()
    settings = service.guard.settings
    create_checkpoint_key(tmp_path / "new", "likeness-guard-audit")
    new_vkey = (tmp_path / "new" / "checkpoint.vkey").read_text()
    with service.client() as api:
        assert api.post("/v1/checks", data=params(operation="generate")).status_code == 200
        replace(
            settings.audit_keys_dir / PRIVATE_KEY_FILE,
            (tmp_path / "new" / PRIVATE_KEY_FILE).read_bytes(),
        )
        assert api.post("/v1/checks", data=params(operation="generate")).status_code == 200
    note = service.guard.audit.checkpoint()
    assert (
        CheckpointVerifier.from_key_string(new_vkey).verify(note).size == service.guard.audit.size()
    )
