"""The tamper-evident audit log: an RFC 6962 Merkle tree over canonical entries, a signed
C2SP checkpoint per committed batch of appends (group commit), receipts anyone can verify
offline. See docs/audit.md.

    >>> from guard.audit import CheckpointVerifier, verify_receipt
    >>> verifier = CheckpointVerifier.from_key_string(vkey)           # doctest: +SKIP
    >>> verify_receipt(result.receipts[-1], verifier)                 # doctest: +SKIP
    True

A checkpoint seen earlier pins the history: :func:`verify_export` with ``pinned`` and
:func:`check_consistency_answer` tell an extension from a rollback or a fork, and
:class:`Witness` keeps the last checkpoint it saw and accepts only extensions of it.

The Merkle tree itself (:mod:`guard.audit.merkle`) is this package's own business.
"""

from __future__ import annotations

from guard.audit.checkpoint import (
    AUDIT_KEY_NAME,
    LEGACY_ORIGIN,
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    Checkpoint,
    CheckpointSigner,
    CheckpointVerifier,
    audit_key_file,
    checkpoint_key_file,
    create_checkpoint_key,
    load_checkpoint_signer,
    log_origin,
)
from guard.audit.entries import (
    InForceRecorder,
    blocklist_entry,
    decision_entry,
    registry_entry,
    release_entry,
    usage_flag_entry,
)
from guard.audit.export import ExportVerification, export_log, verify_export
from guard.audit.history import (
    HistoryCheck,
    Verdict,
    check_consistency_answer,
    check_extension,
    checkpoint_note,
)
from guard.audit.log import (
    AuditLog,
    BatchLimits,
    ConsistencyProof,
    Receipt,
    audit_verifier,
    audit_verifier_key,
    canonical_json,
    open_audit_log,
    verify_receipt,
)
from guard.audit.witness import GivenCheckpoint, HttpLog, Observation, Witness

__all__ = [
    "AUDIT_KEY_NAME",
    "LEGACY_ORIGIN",
    "PRIVATE_KEY_FILE",
    "PUBLIC_KEY_FILE",
    "AuditLog",
    "BatchLimits",
    "Checkpoint",
    "CheckpointSigner",
    "CheckpointVerifier",
    "ConsistencyProof",
    "ExportVerification",
    "GivenCheckpoint",
    "HistoryCheck",
    "HttpLog",
    "InForceRecorder",
    "Observation",
    "Receipt",
    "Verdict",
    "Witness",
    "audit_key_file",
    "audit_verifier",
    "audit_verifier_key",
    "blocklist_entry",
    "canonical_json",
    "check_consistency_answer",
    "check_extension",
    "checkpoint_key_file",
    "checkpoint_note",
    "create_checkpoint_key",
    "decision_entry",
    "export_log",
    "load_checkpoint_signer",
    "log_origin",
    "open_audit_log",
    "registry_entry",
    "release_entry",
    "usage_flag_entry",
    "verify_export",
    "verify_receipt",
]
