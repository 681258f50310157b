"""Keys from the environment and from ``GUARD_KEY_PROVIDER``, the rules: a key's own setting wins
over the provider, the provider over the file; a bad value is refused naming its setting (or the
provider and the key name), never its bytes; a provider's answer is kept for the TTL and asked
again after it (a rotated key is used from then on); a provider that fails makes the key
unusable, never the previous value; a provider path that does not import is a start-up error
naming GUARD_KEY_PROVIDER."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from typer.testing import CliRunner

from guard.audit import (
    PRIVATE_KEY_FILE,
    audit_key_file,
    audit_verifier_key,
    create_checkpoint_key,
)
from guard.audit.checkpoint import parse_checkpoint_key
from guard.bootstrap import create_keys, refuse_bad_keys
from guard.cli import app as guard_app
from guard.config import Settings
from guard.errors import ConfigurationError, KeyMaterialError
from guard.key_provider import (
    AUDIT_SIGNING,
    C2PA_CERT_CHAIN,
    C2PA_PRIVATE_KEY,
    HMAC,
    PROVIDER_ERRORS,
    TEMPLATE,
    load_provider,
)
from guard.provenance import SigningKeys, create_dev_signing_identity
from guard.secrets import Keyring, create_dev_keys
from tests.support.kms import FakeKms, ed25519_pem, install_fake_kms


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data folder with a complete set of development key files (what the settings and the
    provider must win over)."""
    settings = Settings(data_dir=tmp_path / "var")
    create_dev_keys(settings.keys_dir)
    create_checkpoint_key(settings.audit_keys_dir, "guard.test")
    create_dev_signing_identity(settings.c2pa_keys_dir)
    return settings.data_dir


@pytest.fixture
def kms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKms]:
    kms = install_fake_kms(tmp_path / "kms")
    monkeypatch.syspath_prepend(str(kms.directory))
    yield kms
    sys.modules.pop(kms.module_name, None)


def provided(data_dir: Path, kms: FakeKms, ttl_s: float = 300.0) -> Settings:
    return Settings(data_dir=data_dir, key_provider=kms.spec, key_provider_ttl_s=ttl_s)


def p256_pem() -> str:
    key = generate_private_key(SECP256R1())
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


# keys from the environment -------------------------------------------------------------------


def test_the_audit_key_setting_is_used_instead_of_the_file(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pem = ed25519_pem()
    monkeypatch.setenv("GUARD_AUDIT_SIGNING_KEY", pem)
    settings = Settings(data_dir=data_dir)
    expected = parse_checkpoint_key(pem.encode(), "test").verifier_key
    file_key = (settings.audit_keys_dir / PRIVATE_KEY_FILE).read_bytes()
    assert parse_checkpoint_key(file_key, "test").verifier_key != expected
    assert audit_key_file(settings).current().verifier_key == expected
    # The verifier key handed out is the setting's, not the file's beside it.
    assert audit_verifier_key(settings) == expected
    refuse_bad_keys(settings)


def test_a_bad_audit_key_setting_is_refused_naming_the_setting(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARD_AUDIT_SIGNING_KEY", p256_pem())  # a PEM key, not Ed25519
    settings = Settings(data_dir=data_dir)
    with pytest.raises(KeyMaterialError) as refused:
        refuse_bad_keys(settings)
    assert refused.value.message.startswith("GUARD_AUDIT_SIGNING_KEY is not an Ed25519 key")
    assert "BEGIN" not in refused.value.message


def test_the_c2pa_settings_are_used_instead_of_the_files(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = create_dev_signing_identity(tmp_path / "other")
    monkeypatch.setenv("GUARD_C2PA_PRIVATE_KEY_PEM", other.key.read_text())
    monkeypatch.setenv("GUARD_C2PA_CERT_CHAIN_PEM", other.chain.read_text())
    settings = Settings(data_dir=data_dir)
    credentials = SigningKeys(settings).credentials()
    assert credentials.private_key_pem == other.key.read_bytes()
    assert credentials.chain_pem == other.chain.read_bytes()
    # `guard init` makes no development identity when the settings carry one.
    assert create_keys(settings)[1] is None
    refuse_bad_keys(settings)


@pytest.mark.parametrize(
    ("setting", "value", "problem"),
    [
        ("GUARD_C2PA_PRIVATE_KEY_PEM", "", "is 0 bytes"),
        (
            "GUARD_C2PA_PRIVATE_KEY_PEM",
            "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWJ5dGVz\n",
            "is not a PEM",
        ),
        ("GUARD_C2PA_PRIVATE_KEY_PEM", ed25519_pem(), "is not an EC P-256 key"),
        ("GUARD_C2PA_CERT_CHAIN_PEM", "not a certificate", "is not a PEM certificate chain"),
    ],
)
def test_a_bad_c2pa_setting_is_refused_naming_the_setting(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, setting: str, value: str, problem: str
) -> None:
    monkeypatch.setenv(setting, value)
    settings = Settings(data_dir=data_dir)
    with pytest.raises(KeyMaterialError) as refused:
        SigningKeys(settings).credentials()
    assert refused.value.message.startswith(f"{setting} {problem}")
    secret = [line for line in value.splitlines() if line and not line.startswith("-----")]
    assert "BEGIN" not in refused.value.message
    assert not [line for line in secret if line in refused.value.message]
    with pytest.raises(KeyMaterialError):
        refuse_bad_keys(settings)


def test_a_missing_c2pa_file_names_both_settings(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "empty")
    with pytest.raises(KeyMaterialError) as refused:
        SigningKeys(settings).credentials()
    message = refused.value.message
    assert "guard secrets init" in message and "GUARD_C2PA_CERT_CHAIN_PEM" in message
    refuse_bad_keys(settings)  # missing is not ready, not a refused start


# keys from a provider ------------------------------------------------------------------------


def test_the_provider_serves_every_key_whose_setting_is_unset(data_dir: Path, kms: FakeKms) -> None:
    settings = provided(data_dir, kms)
    keys = Keyring(settings)
    assert keys.hasher().ref("x", "y") != Keyring(Settings(data_dir=data_dir)).hasher().ref(
        "x", "y"
    )
    assert keys.cipher().decrypt(keys.cipher().encrypt(b"template")) == b"template"
    signer = audit_key_file(settings).current()
    expected = parse_checkpoint_key(kms.keys[AUDIT_SIGNING].encode(), "kms").verifier_key
    assert signer.verifier_key == expected == audit_verifier_key(settings)
    credentials = SigningKeys(settings).credentials()
    assert credentials.private_key_pem == kms.keys[C2PA_PRIVATE_KEY].encode()
    assert credentials.chain_pem == kms.keys[C2PA_CERT_CHAIN].encode()
    refuse_bad_keys(settings)
    assert create_keys(provided(data_dir.parent / "fresh", kms)) == ([], None)


def test_a_setting_wins_over_the_provider(data_dir: Path, kms: FakeKms) -> None:
    pem = ed25519_pem()
    settings = Settings(data_dir=data_dir, key_provider=kms.spec, audit_signing_key=pem)
    expected = parse_checkpoint_key(pem.encode(), "test").verifier_key
    assert audit_key_file(settings).current().verifier_key == expected
    assert kms.calls.get(AUDIT_SIGNING) is None


def test_an_answer_is_kept_for_the_ttl(data_dir: Path, kms: FakeKms) -> None:
    keys = Keyring(provided(data_dir, kms, ttl_s=300))
    first = keys.hasher()
    kms.rotate(HMAC, "r" * 44)
    assert keys.hasher() is first
    assert kms.calls[HMAC] == 1


def test_a_rotated_key_is_used_once_the_ttl_passed(data_dir: Path, kms: FakeKms) -> None:
    keys = Keyring(provided(data_dir, kms, ttl_s=0))
    first = keys.hasher()
    assert keys.hasher() is first  # asked again, same bytes: the parsed key is kept
    assert kms.calls[HMAC] == 2
    kms.rotate(HMAC, "r" * 44)
    rotated = keys.hasher()
    assert rotated is not first and rotated.ref("a", "b") != first.ref("a", "b")


@pytest.mark.parametrize("how", ["OSError", "TimeoutError"])
def test_a_failing_provider_makes_the_key_unusable(data_dir: Path, kms: FakeKms, how: str) -> None:
    keys = Keyring(provided(data_dir, kms, ttl_s=0))
    keys.cipher()
    kms.failing(TEMPLATE, how)
    with pytest.raises(KeyMaterialError) as refused:
        keys.cipher()  # never the previous key
    message = refused.value.message
    assert f"GUARD_KEY_PROVIDER={kms.spec}" in message and "'template'" in message
    assert how in message
    refuse_bad_keys(provided(data_dir, kms))  # unreachable at start-up: not ready, not fatal
    kms.recovered()
    keys.cipher()


def test_a_failure_is_not_asked_again_on_every_use(data_dir: Path, kms: FakeKms) -> None:
    kms.failing(HMAC)
    keys = Keyring(provided(data_dir, kms, ttl_s=300))
    for _ in range(3):
        with pytest.raises(KeyMaterialError):
            keys.hasher()
    assert kms.calls[HMAC] == 1  # retried after a second, not per request


def test_a_bad_key_from_the_provider_names_the_provider_and_refuses_the_start(
    data_dir: Path, kms: FakeKms
) -> None:
    kms.rotate(HMAC, "short")
    settings = provided(data_dir, kms)
    with pytest.raises(KeyMaterialError) as refused:
        refuse_bad_keys(settings)
    message = refused.value.message
    assert message.startswith(f"the key 'hmac' from GUARD_KEY_PROVIDER={kms.spec} is 5 bytes")
    assert "short" not in message


def test_a_provider_answer_that_is_not_bytes_is_unusable(data_dir: Path, kms: FakeKms) -> None:
    kms.failing(HMAC, "str")
    with pytest.raises(KeyMaterialError, match="returned str, not bytes"):
        Keyring(provided(data_dir, kms)).hasher()


def test_a_bug_in_the_provider_is_not_taken_for_an_outage(data_dir: Path, kms: FakeKms) -> None:
    assert ZeroDivisionError not in PROVIDER_ERRORS
    kms.failing(HMAC, "ZeroDivisionError")
    with pytest.raises(ZeroDivisionError):
        Keyring(provided(data_dir, kms)).hasher()


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("no_such_module_anywhere:provide", "cannot be imported"),
        ("json:no_such_function", "has no function 'no_such_function'"),
        ("json.loads", "is not of the form package.module:function"),
    ],
)
def test_a_provider_that_does_not_import_is_a_start_up_error(
    data_dir: Path, spec: str, problem: str
) -> None:
    settings = Settings(data_dir=data_dir, key_provider=spec)
    with pytest.raises(ConfigurationError) as refused:
        refuse_bad_keys(settings)
    assert refused.value.message.startswith(f"GUARD_KEY_PROVIDER={spec!r}")
    assert problem in refused.value.message
    with pytest.raises(ConfigurationError):
        load_provider(spec)


def test_guard_serve_refuses_to_start_on_a_provider_that_does_not_import(data_dir: Path) -> None:
    env = {"GUARD_DATA_DIR": str(data_dir), "GUARD_KEY_PROVIDER": "no_such_module_here:provide"}
    result = CliRunner().invoke(guard_app, ["serve"], env=env)
    assert result.exit_code == 3
    assert "GUARD_KEY_PROVIDER='no_such_module_here:provide'" in " ".join(result.output.split())
