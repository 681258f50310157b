"""A fake KMS for ``GUARD_KEY_PROVIDER``: a real provider module written to disk and imported by
its ``package.module:function`` path, as a deployment's would be.

The module reads ``kms.json`` beside it on every call, so a test rotates a key or makes the KMS
fail by rewriting that file, and it counts the asks per key name in ``calls``.
"""

from __future__ import annotations

import base64
import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from guard.key_provider import (
    AUDIT_SIGNING,
    C2PA_CERT_CHAIN,
    C2PA_PRIVATE_KEY,
    HMAC,
    KEY_NAMES,
    TEMPLATE,
)
from guard.provenance import create_dev_signing_identity

PROVIDER_SOURCE = """
import json
import pathlib

STORE = pathlib.Path(__file__).with_name("kms.json")
calls = {}


def provide(name: str) -> bytes:
    calls[name] = calls.get(name, 0) + 1
    state = json.loads(STORE.read_text())
    failure = state["fail"].get(name)
    if failure == "OSError":
        raise OSError(f"the KMS refused to give {name}")
    if failure == "TimeoutError":
        raise TimeoutError("the KMS did not answer in 2 s")
    if failure == "ZeroDivisionError":
        raise ZeroDivisionError("a bug in the provider")
    if failure == "str":
        return state["keys"][name]
    return state["keys"][name].encode()
"""


def ed25519_pem() -> str:
    key = Ed25519PrivateKey.generate()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def dev_key_material(directory: Path) -> dict[str, str]:
    """A complete, valid set of keys by provider name (the texts their files would hold)."""
    signing = create_dev_signing_identity(directory)
    return {
        HMAC: base64.urlsafe_b64encode(os.urandom(32)).decode(),
        TEMPLATE: Fernet.generate_key().decode(),
        AUDIT_SIGNING: ed25519_pem(),
        C2PA_PRIVATE_KEY: signing.key.read_text(),
        C2PA_CERT_CHAIN: signing.chain.read_text(),
    }


@dataclass
class FakeKms:
    """The provider module on ``sys.path`` and the state it serves."""

    directory: Path
    module_name: str
    keys: dict[str, str]
    fail: dict[str, str] = field(default_factory=dict)

    @property
    def spec(self) -> str:
        return f"{self.module_name}:provide"

    @property
    def module(self) -> ModuleType:
        __import__(self.module_name)
        return sys.modules[self.module_name]

    @property
    def calls(self) -> dict[str, int]:
        calls: dict[str, int] = self.module.calls
        return calls

    def save(self) -> None:
        state = {"keys": self.keys, "fail": self.fail}
        (self.directory / "kms.json").write_text(json.dumps(state))

    def rotate(self, name: str, value: str) -> None:
        self.keys[name] = value
        self.save()

    def failing(self, name: str, how: str = "OSError") -> None:
        self.fail[name] = how
        self.save()

    def recovered(self) -> None:
        self.fail.clear()
        self.save()


def install_fake_kms(directory: Path) -> FakeKms:
    """Write the provider module into ``directory`` under a fresh name (so no test sees
    another's module from ``sys.modules``); the caller puts ``directory`` on ``sys.path``."""
    directory.mkdir(parents=True, exist_ok=True)
    module_name = f"fake_kms_{uuid.uuid4().hex[:12]}"
    (directory / f"{module_name}.py").write_text(PROVIDER_SOURCE)
    kms = FakeKms(directory, module_name, dev_key_material(directory / "material"))
    kms.save()
    assert set(kms.keys) == set(KEY_NAMES)
    return kms
