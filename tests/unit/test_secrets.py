"""Key hygiene, the rules: an HMAC key under 32 bytes, a template key that is not a Fernet key
and an audit key that is not an Ed25519 PEM key are refused with a message naming the file (or
the setting) and what is wrong, never the key; a key file that changes on disk is read again on
its next use, and a changed file never falls back to the key it replaced."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import SecretStr

from guard.audit import PRIVATE_KEY_FILE, create_checkpoint_key, load_checkpoint_signer
from guard.bootstrap import refuse_bad_keys
from guard.config import Settings
from guard.errors import KeyMaterialError, Unavailable
from guard.keyfile import KeyFile, KeyProblem, KeySource
from guard.secrets import (
    HMAC_KEY_FILE,
    MIN_HMAC_KEY_BYTES,
    TEMPLATE_KEY_FILE,
    Keyring,
    create_dev_keys,
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    settings = Settings(data_dir=tmp_path / "var")
    create_dev_keys(settings.keys_dir)
    create_checkpoint_key(settings.audit_keys_dir, "guard.test")
    return settings


def replace(path: Path, data: bytes) -> None:
    """Write ``data`` as an operator should: a new file renamed over the old one."""
    temporary = path.with_name(path.name + ".new")
    temporary.write_bytes(data)
    os.replace(temporary, path)


# the HMAC key --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "length"),
    [(b"", 0), (b"  \n\t\n", 0), (b"s3cret-but-short\n", 16), (b"k" * 31, 31)],
)
def test_a_short_hmac_key_file_is_refused_naming_the_file(
    settings: Settings, content: bytes, length: int
) -> None:
    path = settings.keys_dir / HMAC_KEY_FILE
    replace(path, content)
    with pytest.raises(KeyMaterialError) as refused:
        Keyring(settings).hasher()
    message = refused.value.message
    assert message.startswith(f"the hmac key {path} is {length} bytes; ")
    assert "at least 32 random bytes" in message and "guard secrets init" in message
    if content.strip():
        assert content.strip().decode() not in message  # never the key itself
    assert isinstance(refused.value, Unavailable)  # fails closed: 503, reason unavailable


def test_the_hmac_key_rule_is_32_bytes_after_stripping(settings: Settings) -> None:
    path = settings.keys_dir / HMAC_KEY_FILE
    replace(path, b"\n" + b"k" * MIN_HMAC_KEY_BYTES + b"\n")
    Keyring(settings).hasher()
    fresh = Settings(data_dir=settings.data_dir / "fresh")
    create_dev_keys(fresh.keys_dir)  # what `guard init` writes: 32 random bytes, base64
    assert len((fresh.keys_dir / HMAC_KEY_FILE).read_bytes().strip()) == 44
    Keyring(fresh).hasher()


def test_a_short_hmac_key_setting_is_refused_naming_the_setting(settings: Settings) -> None:
    configured = Settings(data_dir=settings.data_dir, hmac_key=SecretStr("tiny-secret"))
    with pytest.raises(KeyMaterialError) as refused:
        Keyring(configured).hasher()
    message = refused.value.message
    assert message.startswith("GUARD_HMAC_KEY is 11 bytes; it needs at least 32 random bytes")
    assert "tiny-secret" not in message and str(settings.keys_dir) not in message


def test_a_missing_hmac_key_names_the_file_and_the_setting(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "var")
    with pytest.raises(KeyMaterialError, match="cannot be read") as refused:
        Keyring(settings).hasher()
    assert str(settings.keys_dir / HMAC_KEY_FILE) in refused.value.message
    assert "GUARD_HMAC_KEY is not set" in refused.value.message


# the template key ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"", b"not-a-fernet-key", Fernet.generate_key()[:-4], b"A" * 44 + b"!"],
    ids=["empty", "not-base64", "truncated", "bad-padding"],  # stable: one per xdist worker
)
def test_a_garbage_template_key_file_is_refused_naming_the_file(
    settings: Settings, content: bytes
) -> None:
    path = settings.keys_dir / TEMPLATE_KEY_FILE
    replace(path, content)
    with pytest.raises(KeyMaterialError) as refused:
        Keyring(settings).cipher()
    message = refused.value.message
    assert message.startswith(f"the template key {path} is ")
    assert "Fernet key" in message
    if content:
        assert content.decode() not in message


def test_a_garbage_template_key_setting_is_refused_naming_the_setting(
    settings: Settings,
) -> None:
    configured = Settings(data_dir=settings.data_dir, template_key=SecretStr("x" * 44))
    with pytest.raises(KeyMaterialError, match=r"^GUARD_TEMPLATE_KEY is not a valid Fernet key"):
        Keyring(configured).cipher()


def test_a_template_the_key_cannot_decrypt_names_the_key_file(settings: Settings) -> None:
    stored = Fernet(Fernet.generate_key()).encrypt(b"template")
    path = settings.keys_dir / TEMPLATE_KEY_FILE
    with pytest.raises(Unavailable, match="cannot be decrypted") as refused:
        Keyring(settings).cipher().decrypt(stored)
    assert f"the template key {path} is not the key it was stored with" in refused.value.message


# the audit checkpoint key --------------------------------------------------------------------


def _pem(key: object, encryption: serialization.KeySerializationEncryption) -> bytes:
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is 0 bytes"),
        (b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n", "is not a PEM"),
        (b"garbage", "is not a PEM private key"),
        (
            _pem(generate_private_key(SECP256R1()), serialization.NoEncryption()),
            "is not an Ed25519 key",
        ),
        (
            _pem(
                Ed25519PrivateKey.generate(),
                serialization.BestAvailableEncryption(b"passphrase"),
            ),
            "is encrypted",
        ),
    ],
)
def test_an_unusable_audit_key_is_refused_naming_the_file(
    settings: Settings, content: bytes, problem: str
) -> None:
    path = settings.audit_keys_dir / PRIVATE_KEY_FILE
    replace(path, content)
    with pytest.raises(KeyMaterialError) as refused:
        load_checkpoint_signer(path, "guard.test")
    assert refused.value.message.startswith(f"the audit checkpoint key {path} {problem}")


# refusing to start ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content"),
    [
        (HMAC_KEY_FILE, b""),
        (HMAC_KEY_FILE, b"short"),
        (TEMPLATE_KEY_FILE, b"garbage"),
        (f"audit/{PRIVATE_KEY_FILE}", b"garbage"),
    ],
)
def test_start_up_refuses_a_bad_key_naming_its_file(
    settings: Settings, name: str, content: bytes
) -> None:
    refuse_bad_keys(settings)  # the keys `guard init` makes pass
    path = settings.keys_dir / name
    replace(path, content)
    with pytest.raises(KeyMaterialError, match=f"^the [a-z ]+ key {path} is"):
        refuse_bad_keys(settings)


def test_start_up_lets_missing_keys_be_reported_by_readiness(tmp_path: Path) -> None:
    refuse_bad_keys(Settings(data_dir=tmp_path / "nothing-yet"))


# reloading -----------------------------------------------------------------------------------


class CountingParser:
    def __init__(self) -> None:
        self.parsed = 0

    def __call__(self, data: bytes, where: str) -> bytes:
        self.parsed += 1
        if data.strip() == b"bad":
            raise KeyProblem("is bad")
        return data.strip()


def test_a_key_file_is_read_again_only_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(b"one")
    parse = CountingParser()
    key = KeyFile(KeySource("test key", path, fix="fix it"), parse)
    first = key.current()
    assert first == b"one" and key.current() is first and parse.parsed == 1
    os.utime(path, ns=(1, 1))  # touched, same content: the parsed key stays
    assert key.current() is first and parse.parsed == 1
    replace(path, b"two")
    assert key.current() == b"two" and parse.parsed == 2


def test_a_changed_key_file_never_falls_back_to_the_key_it_replaced(tmp_path: Path) -> None:
    path = tmp_path / "k.key"
    path.write_bytes(b"one")
    key = KeyFile(KeySource("test key", path, fix="fix it"), CountingParser())
    assert key.current() == b"one"
    replace(path, b"bad")
    for _ in range(2):  # on every use until fixed
        with pytest.raises(KeyMaterialError, match=f"^the test key {path} is bad \\(fix it\\)$"):
            key.current()
    path.unlink()
    with pytest.raises(KeyMaterialError, match="cannot be read"):
        key.current()
    path.write_bytes(b"one")
    assert key.current() == b"one"


def test_the_keyring_picks_up_a_rotated_hmac_key(settings: Settings) -> None:
    keys = Keyring(settings)
    before = keys.hasher()
    assert keys.hasher() is before
    (settings.keys_dir / HMAC_KEY_FILE).write_bytes(os.urandom(48).hex().encode())
    after = keys.hasher()
    assert after is not before
    assert after.ref("requester", "acme/app") != before.ref("requester", "acme/app")
    assert after.ref("requester", "acme/app") == Keyring(settings).hasher().ref(
        "requester", "acme/app"
    )


def test_a_key_from_a_setting_is_not_read_from_disk(settings: Settings) -> None:
    configured = Settings(data_dir=settings.data_dir, hmac_key=SecretStr("h" * 32))
    keys = Keyring(configured)
    hasher = keys.hasher()
    (settings.keys_dir / HMAC_KEY_FILE).unlink()
    assert keys.hasher() is hasher
