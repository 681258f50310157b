"""Consent registry rules: validation, encryption at rest, key handling (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr
from sqlalchemy import select

from guard.errors import Conflict, InvalidInput, NotFound, Unavailable
from guard.faces import Face, l2_normalise
from guard.identity import ConsentRegistry, EnrollmentRules, EnrollmentScreen, GrantStatus
from guard.identity.models import FaceTemplateRow
from guard.secrets import KeyedHasher, TemplateCipher
from tests.support.guards import GuardFactory

EVIDENCE = "cd" * 32

pytestmark = pytest.mark.storage


def fake_face(seed: int, engine: str = "dlib", dimension: int = 128) -> Face:
    vector = np.random.default_rng(seed).normal(size=dimension)
    return Face((0, 0, 120, 120), (), 1.0, l2_normalise(vector), engine)


@pytest.fixture
def registry(make_guard: GuardFactory) -> ConsentRegistry:
    return make_guard().registry


def test_templates_are_encrypted_at_rest(registry: ConsentRegistry) -> None:
    subject = registry.create_subject("t")
    face = fake_face(1)
    [template_id] = registry.enroll(subject.id, [face])
    with registry._db.transaction() as session:  # reading the raw row is the point here
        row = session.execute(
            select(FaceTemplateRow).where(FaceTemplateRow.id == template_id)
        ).scalar_one()
        stored = row.embedding_ciphertext
    assert face.embedding.tobytes() not in stored
    assert registry.match([face.embedding])[0][0].subject_id == subject.id


def test_registry_with_the_wrong_key_fails_closed(make_guard: GuardFactory) -> None:
    guard = make_guard()
    guard.registry.enroll(guard.registry.create_subject("t").id, [fake_face(2)])
    wrong = ConsentRegistry(
        guard.db,
        TemplateCipher(Fernet.generate_key()),
        KeyedHasher(b"k"),
        engine_name="dlib",
        dimension=128,
        screen=EnrollmentScreen(
            EnrollmentRules(0.93, 0.95, 0.93, 80, 0.5), guard.blocklists.current
        ),
    )
    with pytest.raises(Unavailable, match="GUARD_TEMPLATE_KEY"):
        wrong.match([fake_face(2).embedding])


def test_keys_from_settings_are_used(make_guard: GuardFactory) -> None:
    key = Fernet.generate_key().decode()
    guard = make_guard(template_key=SecretStr(key), hmac_key=SecretStr("h" * 32))
    subject = guard.registry.create_subject("t")
    guard.registry.enroll(subject.id, [fake_face(3)])
    assert not (guard.settings.keys_dir / "template.key").exists()
    with pytest.raises(Unavailable, match="not a valid Fernet key"):
        make_guard(template_key=SecretStr("short")).registry  # noqa: B018


def test_enroll_rejects_faces_of_another_engine(registry: ConsentRegistry) -> None:
    subject = registry.create_subject("t")
    with pytest.raises(InvalidInput, match="arcface"):
        registry.enroll(subject.id, [fake_face(4, engine="arcface", dimension=512)])
    with pytest.raises(InvalidInput):
        registry.enroll(subject.id, [])
    with pytest.raises(NotFound):
        registry.enroll("sub_missing", [fake_face(4)])
    assert registry.get_subject(subject.id).template_count == 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"scopes": []},
        {"scopes": ["  "]},
        {"grantee": " "},
        {"evidence_sha256": "not-a-hash"},
        {"expires_at": datetime.now(UTC) - timedelta(days=1)},
    ],
)
def test_grant_validation_changes_nothing(registry: ConsentRegistry, kwargs: dict) -> None:  # type: ignore[type-arg]
    subject = registry.create_subject("t")
    arguments = {"grantee": "app", "scopes": ["relight"], "evidence_sha256": EVIDENCE, **kwargs}
    with pytest.raises(InvalidInput):
        registry.grant(subject.id, **arguments)
    assert registry.grants_for(subject.id) == []


def test_grant_lifecycle(registry: ConsentRegistry) -> None:
    subject = registry.create_subject("t")
    grant = registry.grant(
        subject.id,
        grantee="t/app",
        scopes=["relight", "relight", "color_grade"],
        evidence_sha256=EVIDENCE.upper(),
        expires_at=datetime.now(UTC) + timedelta(days=1),
    )
    assert grant.scopes == ("color_grade", "relight") and grant.evidence_sha256 == EVIDENCE
    assert grant.status_at(datetime.now(UTC)) is GrantStatus.ACTIVE
    revoked = registry.revoke(grant.id)
    assert revoked.status_at(datetime.now(UTC)) is GrantStatus.REVOKED
    with pytest.raises(Conflict):
        registry.revoke(grant.id)
    with pytest.raises(NotFound):
        registry.revoke("grt_missing")
    assert [g.id for g in registry.list_grants(grantee="t/app")] == [grant.id]
    assert registry.grants_for(subject.id)[0].revoked_at is not None


def test_subjects_are_listed_per_tenant(registry: ConsentRegistry) -> None:
    a = registry.create_subject("tenant-a", display_name="A")
    registry.create_subject("tenant-b")
    registry.enroll(a.id, [fake_face(5), fake_face(5)])
    listed = registry.list_subjects("tenant-a")
    assert [(s.id, s.template_count) for s in listed] == [(a.id, 2)]
    assert len(registry.list_subjects()) == 2
    with pytest.raises(InvalidInput):
        registry.create_subject(" ")


def test_erasure_keeps_only_a_keyed_reference(registry: ConsentRegistry) -> None:
    subject = registry.create_subject("t", display_name="Private Person")
    registry.enroll(subject.id, [fake_face(7)])
    erasure = registry.erase(subject.id)
    assert len(erasure.subject_ref) == 64 and subject.id not in erasure.subject_ref
    with pytest.raises(NotFound):
        registry.get_subject(subject.id)
    with pytest.raises(NotFound):
        registry.erase(subject.id)
    assert registry.match([fake_face(7).embedding]) == [[]]
