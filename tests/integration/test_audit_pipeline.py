"""The guard's own writes are audited: consent changes land with their entry or not at all."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from guard import EditRequest, Guard
from guard.audit import audit_verifier, canonical_json, verify_receipt
from tests.support.guards import GuardFactory
from tests.support.photos import PORTRAIT, crop
from tests.support.registry import REQUESTER, enroll_model


def test_consent_changes_are_audited_and_the_subject_report_finds_them(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard()
    subject_id, grant_id = enroll_model(guard)
    guard.edit(EditRequest(image=crop("t1", PORTRAIT), operation="relight", requester=REQUESTER))
    guard.registry.revoke(grant_id)
    kinds = [guard.audit.entry(i)["kind"] for i in range(guard.audit.size())]
    assert kinds[:3] == ["subject_created", "templates_enrolled", "consent_granted"]
    assert kinds[-1] == "consent_revoked"
    report = guard.audit.entries_mentioning(guard.registry.subject_ref(subject_id))
    assert [entry["kind"] for _, entry in report] == [
        "subject_created",
        "templates_enrolled",
        "consent_granted",
        "decision",
        "decision",
        "consent_revoked",
    ]
    assert all(subject_id not in str(entry) and grant_id not in str(entry) for _, entry in report)
    verifier = audit_verifier(guard.settings)
    for index, entry in report:
        assert verify_receipt(guard.audit.receipt(index), verifier, canonical_json(entry))
    guard.registry.erase(subject_id)
    assert (
        guard.audit.entries_mentioning(guard.registry.subject_ref(subject_id))[-1][1]["kind"]
        == "subject_erased"
    )


def test_a_consent_change_that_cannot_be_audited_does_not_happen(
    make_guard: GuardFactory,
) -> None:
    from guard.audit import PRIVATE_KEY_FILE
    from guard.errors import Unavailable

    guard = make_guard()
    subject = guard.registry.create_subject("acme")
    (guard.settings.audit_keys_dir / PRIVATE_KEY_FILE).unlink()
    keyless = Guard(guard.settings, face_engine=guard.face_engine)
    before = keyless.registry.grants_for(subject.id)
    with pytest.raises(Unavailable, match="guard secrets init"):
        keyless.registry.grant(
            subject.id,
            grantee=REQUESTER,
            scopes=["relight"],
            evidence_sha256="ab" * 32,
            expires_at=datetime(2099, 1, 1, tzinfo=UTC),
        )
    assert keyless.registry.grants_for(subject.id) == before == []


@pytest.mark.slow
def test_the_policy_and_blocklist_in_force_are_audited_once_per_change(
    make_guard: GuardFactory, tmp_path: object
) -> None:
    from pathlib import Path

    from guard import CheckRequest
    from guard.config import DEFAULT_POLICY_FILE
    from guard.samples import sample_bytes
    from tests.support.registry import blocklist_public_figures

    policy_file = Path(str(tmp_path)) / "policy.yaml"
    policy_file.write_text(DEFAULT_POLICY_FILE.read_text())
    guard = make_guard(policy_file=policy_file)
    ask = CheckRequest(requester=REQUESTER, operation="relight", image=sample_bytes("t1"))

    def in_force() -> list[dict[str, object]]:
        entries = [guard.audit.entry(i) for i in range(guard.audit.size())]
        return [e for e in entries if str(e["kind"]).endswith("_in_force")]

    guard.check(ask)
    guard.check(ask)
    assert [e["kind"] for e in in_force()] == ["policy_in_force", "blocklist_in_force"]
    blocklist_public_figures(guard)
    policy_file.write_text(policy_file.read_text().replace('version: "', 'version: "9-'))
    guard.check(ask)
    latest = in_force()
    assert [e["kind"] for e in latest[2:]] == ["policy_in_force", "blocklist_in_force"]
    assert latest[3]["figure_ids"] == ["eileen-collins", "tom-hanks"]
    again = Guard(guard.settings, face_engine=guard.face_engine)  # another process, same state
    again.check(ask)
    assert len(in_force()) == 4
