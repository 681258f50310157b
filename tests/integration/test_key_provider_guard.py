"""A guard whose keys all come from ``GUARD_KEY_PROVIDER`` (a fake KMS module on ``sys.path``):
it decides, edits, signs and audits with them, picks up a rotated key, and fails closed
(``unavailable``, no image released) while the provider cannot give a key."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from guard import CheckRequest, EditRequest, Guard
from guard.audit import audit_verifier
from guard.audit.checkpoint import parse_checkpoint_key
from guard.key_provider import AUDIT_SIGNING, C2PA_PRIVATE_KEY, HMAC, TEMPLATE
from guard.policy import Verdict
from guard.provenance import VerificationOutcome
from tests.support.guards import GuardFactory
from tests.support.kms import FakeKms, ed25519_pem, install_fake_kms
from tests.support.photos import PORTRAIT, crop
from tests.support.registry import REQUESTER, enroll_model


@pytest.fixture
def kms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKms]:
    kms = install_fake_kms(tmp_path / "kms")
    monkeypatch.syspath_prepend(str(kms.directory))
    yield kms
    sys.modules.pop(kms.module_name, None)


@pytest.fixture
def guard(make_guard: GuardFactory, kms: FakeKms) -> Guard:
    # TTL 0: every use asks the provider again, so a test sees a rotation or an outage at once.
    return make_guard(key_provider=kms.spec, key_provider_ttl_s=0)


def check(guard: Guard) -> object:
    request = CheckRequest(requester=REQUESTER, operation="relight", image=crop("t1", PORTRAIT))
    return guard.check(request)


def test_a_guard_runs_on_provided_keys_alone(guard: Guard, kms: FakeKms) -> None:
    assert not guard.settings.keys_dir.exists()  # no key file was made or read
    enroll_model(guard)
    result = guard.edit(
        EditRequest(image=crop("t1", PORTRAIT), operation="background_blur", requester=REQUESTER)
    )
    assert result.decision.verdict is not Verdict.DENY and result.image is not None
    assert guard.verify(result.image).outcome is VerificationOutcome.VALID
    expected = parse_checkpoint_key(kms.keys[AUDIT_SIGNING].encode(), "kms").verifier_key
    assert audit_verifier(guard.settings).verify(guard.audit.checkpoint()).size >= 1
    assert guard.audit.current_signer().verifier_key == expected
    assert {HMAC, TEMPLATE, AUDIT_SIGNING, C2PA_PRIVATE_KEY} <= set(kms.calls)


def test_a_rotated_audit_key_signs_the_next_checkpoint(guard: Guard, kms: FakeKms) -> None:
    before = guard.audit.current_signer().verifier_key
    kms.rotate(AUDIT_SIGNING, ed25519_pem())
    check(guard)
    assert guard.audit.current_signer().verifier_key != before
    assert audit_verifier(guard.settings).verify(guard.audit.checkpoint()).size >= 1


@pytest.mark.parametrize("name", [TEMPLATE, C2PA_PRIVATE_KEY])
def test_a_provider_outage_denies_unavailable(guard: Guard, kms: FakeKms, name: str) -> None:
    enroll_model(guard)
    kms.failing(name)
    request = EditRequest(
        image=crop("t1", PORTRAIT), operation="background_blur", requester=REQUESTER
    )
    result = guard.edit(request)
    assert result.decision.verdict is Verdict.DENY
    assert result.decision.reason_codes == ("unavailable",)
    assert f"'{name}'" in result.decision.reasons[0].message
    assert result.image is None and result.provenance is None
    kms.recovered()
    assert guard.edit(request).image is not None  # back as soon as the provider answers
