"""Signed checkpoints in the C2SP signed-note format."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from guard.audit.checkpoint import (
    ORIGIN,
    PUBLIC_KEY_FILE,
    Checkpoint,
    CheckpointSigner,
    CheckpointVerifier,
    create_checkpoint_key,
    load_checkpoint_signer,
)
from guard.errors import InvalidInput, Unavailable

WHEN = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)
ROOT = bytes(range(32))


@pytest.fixture
def signer() -> CheckpointSigner:
    return CheckpointSigner("example.log", Ed25519PrivateKey.generate())


def test_a_signed_note_round_trips(signer: CheckpointSigner) -> None:
    note = signer.sign(Checkpoint(ORIGIN, 42, ROOT, WHEN))
    lines = note.split("\n")
    assert lines[:4] == [
        ORIGIN,
        "42",
        base64.b64encode(ROOT).decode(),
        "time 2026-11-23T12:00:00.123456Z",
    ]
    assert lines[4] == "" and lines[5].startswith("\u2014 example.log ")
    verifier = CheckpointVerifier.from_key_string(signer.verifier_key)
    assert verifier.verify(note) == Checkpoint(ORIGIN, 42, ROOT, WHEN)


def test_the_verifier_key_string_follows_c2sp(signer: CheckpointSigner) -> None:
    name, key_id, key = signer.verifier_key.split("+", 2)
    assert name == "example.log" and len(bytes.fromhex(key_id)) == 4
    assert base64.b64decode(key)[:1] == b"\x01"


@pytest.mark.parametrize(
    ("old", "new"), [("\n42\n", "\n43\n"), ("time 2026", "time 2027"), (ORIGIN, "other/log")]
)
def test_any_change_to_the_body_breaks_the_signature(
    signer: CheckpointSigner, old: str, new: str
) -> None:
    note = signer.sign(Checkpoint(ORIGIN, 42, ROOT, WHEN)).replace(old, new, 1)
    with pytest.raises(InvalidInput, match="invalid"):
        CheckpointVerifier.from_key_string(signer.verifier_key).verify(note)


def test_another_key_is_not_accepted(signer: CheckpointSigner) -> None:
    other = CheckpointSigner("example.log", Ed25519PrivateKey.generate())
    note = other.sign(Checkpoint(ORIGIN, 1, ROOT, WHEN))
    with pytest.raises(InvalidInput, match="no signature"):
        CheckpointVerifier.from_key_string(signer.verifier_key).verify(note)


@pytest.mark.parametrize("vkey", ["nonsense", "a+00000000+AAAA", "a+zz+!!"])
def test_bad_verifier_keys_are_rejected(vkey: str) -> None:
    with pytest.raises(InvalidInput):
        CheckpointVerifier.from_key_string(vkey)


def test_keys_are_created_once_and_loaded(tmp_path: Path) -> None:
    assert create_checkpoint_key(tmp_path, "guard.test")
    assert not create_checkpoint_key(tmp_path, "guard.test")
    assert (tmp_path / "checkpoint-key.pem").stat().st_mode & 0o077 == 0
    signer = load_checkpoint_signer(tmp_path / "checkpoint-key.pem", "guard.test")
    assert signer.verifier_key == (tmp_path / PUBLIC_KEY_FILE).read_text().strip()
    with pytest.raises(Unavailable, match="guard secrets init"):
        load_checkpoint_signer(tmp_path / "missing.pem", "guard.test")
