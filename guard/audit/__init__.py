"""The tamper-evident audit log: an RFC 6962 Merkle tree over canonical entries, a signed
C2SP checkpoint per append, receipts anyone can verify offline. See docs/audit.md.

    >>> from guard.audit import CheckpointVerifier, verify_receipt
    >>> verifier = CheckpointVerifier.from_key_string(vkey)           # doctest: +SKIP
    >>> verify_receipt(result.receipts[-1], verifier)                 # doctest: +SKIP
    True
"""

from __future__ import annotations

from guard.audit.checkpoint import Checkpoint, CheckpointSigner, CheckpointVerifier
from guard.audit.export import ExportVerification, export_log, verify_export
from guard.audit.log import (
    AuditLog,
    Receipt,
    audit_verifier,
    canonical_json,
    open_audit_log,
    verify_receipt,
)
from guard.audit.merkle import (
    EMPTY_ROOT,
    CompactRange,
    MemoryTree,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

__all__ = [
    "EMPTY_ROOT",
    "AuditLog",
    "Checkpoint",
    "CheckpointSigner",
    "CheckpointVerifier",
    "CompactRange",
    "ExportVerification",
    "MemoryTree",
    "Receipt",
    "audit_verifier",
    "canonical_json",
    "consistency_proof",
    "export_log",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "open_audit_log",
    "root_from_inclusion",
    "root_hash",
    "verify_consistency",
    "verify_export",
    "verify_inclusion",
    "verify_receipt",
]
