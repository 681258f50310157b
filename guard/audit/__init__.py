"""The tamper-evident audit log: an RFC 6962 Merkle tree over canonical entries, a signed
C2SP checkpoint per append, receipts anyone can verify offline. See docs/audit.md.

    >>> from guard.audit import CheckpointVerifier, verify_receipt
    >>> verifier = CheckpointVerifier.from_key_string(vkey)           # doctest: +SKIP
    >>> verify_receipt(result.receipts[-1], verifier)                 # doctest: +SKIP
    True

The Merkle tree itself (:mod:`guard.audit.merkle`) is this package's own business.
"""

from __future__ import annotations

from guard.audit.checkpoint import (
    AUDIT_KEY_NAME,
    PRIVATE_KEY_FILE,
    PUBLIC_KEY_FILE,
    Checkpoint,
    CheckpointSigner,
    CheckpointVerifier,
    checkpoint_key_file,
    create_checkpoint_key,
    load_checkpoint_signer,
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
from guard.audit.log import (
    AuditLog,
    Receipt,
    audit_verifier,
    canonical_json,
    open_audit_log,
    verify_receipt,
)

__all__ = [
    "AUDIT_KEY_NAME",
    "PRIVATE_KEY_FILE",
    "PUBLIC_KEY_FILE",
    "AuditLog",
    "Checkpoint",
    "CheckpointSigner",
    "CheckpointVerifier",
    "ExportVerification",
    "InForceRecorder",
    "Receipt",
    "audit_verifier",
    "blocklist_entry",
    "canonical_json",
    "checkpoint_key_file",
    "create_checkpoint_key",
    "decision_entry",
    "export_log",
    "load_checkpoint_signer",
    "open_audit_log",
    "registry_entry",
    "release_entry",
    "usage_flag_entry",
    "verify_export",
    "verify_receipt",
]
