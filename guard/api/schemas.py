"""What crosses the HTTP boundary: request bodies and response shapes (they make the OpenAPI
schema, and FastAPI checks every response against them)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Evidence = dict[str, str | int | float | bool | None]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(BaseModel):
    """RFC 9457 problem details (``application/problem+json``)."""

    type: str = Field(examples=["https://likeness-guard.dev/problems/no_consent"])
    title: str
    status: int
    detail: str
    code: str = Field(description="The error or deny reason code the type URI ends with.")
    model_config = ConfigDict(extra="allow")


class ReasonOut(_Out):
    code: str
    message: str
    evidence: Evidence = {}


class FaceOut(_Out):
    face_index: int
    bbox: tuple[int, int, int, int] = Field(description="x0, y0, x1, y1 in pixels.")
    kind: Literal["consented_subject", "public_figure", "unknown"]
    verdict: Literal["allow", "deny", "allow_with_conditions"]
    reasons: list[ReasonOut]


class PolicyRef(_Out):
    id: str
    version: str


class DecisionOut(_Out):
    decision_id: str
    verdict: Literal["allow", "deny", "allow_with_conditions"]
    stage: str
    reason_codes: list[str]
    reasons: list[ReasonOut]
    faces: list[FaceOut]
    policy: PolicyRef
    conditions: list[str]
    decided_at: datetime


class ReceiptOut(_Out):
    """Verify offline: the checkpoint's signature with the guard's public key, then the
    inclusion proof of ``leaf_hash`` at ``leaf_index`` against the checkpoint's root."""

    leaf_index: int
    leaf_hash: str
    checkpoint: str
    inclusion_proof: list[str]


class ImageOut(_Out):
    media_type: str
    sha256: str
    data_base64: str = Field(description="The stamped image file (watermark + C2PA manifest).")


class ProvenanceOut(_Out):
    watermark_record_id: str = Field(description="48-bit record id, 12 hex digits.")
    manifest_label: str
    fingerprint: str


class CheckOut(_Out):
    decision: DecisionOut
    receipt: ReceiptOut


class EditorOut(_Out):
    name: str = Field(description="The editor or generator that made the pixels.")
    record: dict[str, str | int | float | bool] = Field(
        default={},
        description="What reproduces the edit (diffusers: pipeline class, model_index and "
        "weights SHA-256, seed, steps, guidance, prompt SHA-256); also in the C2PA manifest.",
    )


class ReleaseOut(_Out):
    """An allowed edit or stamp: the image travels inline (base64) in this one response."""

    decision: DecisionOut
    input_decision: DecisionOut
    receipts: list[ReceiptOut] = Field(
        description="Input decision, output decision and release entries, in order."
    )
    image: ImageOut
    provenance: ProvenanceOut
    editor: EditorOut
    undetected_subject_ids: list[str] = Field(
        default=[], description="Declared subjects whose face was not found in the input."
    )


class VerifyOut(_Out):
    outcome: Literal["valid", "recovered", "tampered", "not_from_this_guard", "error"]
    summary: str
    exit_code: int
    manifest: dict[str, Any]
    watermark: dict[str, Any] | None
    recovered: dict[str, Any] | None
    decision: dict[str, Any] | None


# A subject id as the registry makes them (sub_ and 24 hex digits), with room to spare; a
# list of them is looked up one by one before the edit, so both are bounded.
SubjectId = Annotated[str, Field(min_length=1, max_length=64)]


class EditParams(BaseModel):
    """The JSON ``params`` part of ``POST /v1/edits``."""

    model_config = ConfigDict(extra="forbid")
    operation: str = Field(min_length=1, examples=["background_blur"])
    prompt: str = Field(default="", max_length=10_000)
    subject_ids: list[SubjectId] = Field(
        default=[],
        max_length=32,
        description="Subjects the caller expects in the image (checked, not trusted).",
    )
    params: dict[str, str | float | int | bool] = Field(
        default={},
        description="The editor's parameters for the operation (the README lists them), "
        "checked before anything is decided: an unknown name or a value the editor cannot "
        "take (text where it wants a number, NaN, Infinity, out of range) is 422 "
        "`invalid_params` and nothing is audited.",
    )
    output_format: Literal["png", "jpeg", "webp"] = "png"


class CheckParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    operation: str = Field(min_length=1, examples=["generate"])
    prompt: str = Field(default="", max_length=10_000)


class StampParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    generator: str = Field(min_length=1, max_length=200, examples=["acme-diffusion"])
    generator_version: str = Field(default="unknown", min_length=1, max_length=100)
    operation: str = Field(default="generate", min_length=1)
    prompt: str = Field(default="", max_length=10_000)
    output_format: Literal["png", "jpeg", "webp"] | None = None


class SubjectIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"display_name": "Model A"}]}
    )
    display_name: str | None = Field(default=None, max_length=200)
    public_figure_id: str | None = Field(
        default=None,
        max_length=128,
        description="Refused (403) from every tenant key: only the operator links a subject to "
        "a public figure, with evidence (PUT /v1/subjects/{id}/public-figure).",
    )


class PublicFigureLinkIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    figure_id: str = Field(min_length=1, max_length=128, examples=["tom-hanks"])
    evidence_sha256: str = Field(
        pattern=r"^[0-9a-fA-F]{64}$",
        description="SHA-256 of the document that verifies this person is the figure.",
    )


class PublicFigureLinkOut(_Out):
    figure_id: str
    linked_by: str
    linked_at: datetime
    evidence_sha256: str


class SubjectOut(_Out):
    id: str
    tenant: str
    display_name: str | None
    public_figure_id: str | None
    public_figure_link: PublicFigureLinkOut | None
    created_at: datetime
    template_count: int


class EnrollmentOut(_Out):
    subject_id: str
    template_ids: list[str]
    """The enrolled templates' names for this tenant (``tpl_`` + 24 hex), not row numbers."""


class ErasureOut(_Out):
    subject_ref: str
    templates_removed: int
    grants_removed: int


class GrantIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "subject_id": "sub_3f2a9c0d1e7b4a5f6c8d9e0a",
                    "scopes": ["relight", "background_blur"],
                    "evidence_sha256": "9f86d081884c7d659a2feaa0c55ad015"
                    "a3bf4f1b2b0b822cd15d6c15b0f00a08",
                    "expires_at": "2027-11-24T00:00:00Z",
                }
            ]
        },
    )
    subject_id: str
    scopes: list[str] = Field(min_length=1, examples=[["relight", "background_blur"]])
    evidence_sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    grantee: str | None = Field(
        default=None, description="Defaults to the calling key's requester; must be in its tenant."
    )
    not_before: datetime | None = None
    expires_at: datetime | None = None


class GrantOut(_Out):
    id: str
    subject_id: str
    grantee: str
    scopes: list[str]
    not_before: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    evidence_sha256: str
    created_at: datetime
    status: Literal["active", "not_yet_valid", "expired", "revoked"]
    consent_level: Literal["attested", "person_confirmed"] = Field(
        description="attested: the integrator asserts it (with its evidence hash); "
        "person_confirmed: the person confirmed it themselves with a confirmation token."
    )
    confirmed_at: datetime | None


class ConfirmationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    valid_for_hours: int = Field(default=168, ge=1, le=720)


class ConfirmationOut(_Out):
    grant_id: str
    token: str = Field(description="Shown once: give it to the person to confirm the grant.")
    expires_at: datetime


class FigureOut(_Out):
    id: str
    name: str
    aliases: list[str]
    references: int


class BlocklistOut(_Out):
    generation: int
    engine: str
    figures: list[FigureOut]


class RebuildOut(_Out):
    generation: int
    figures: int
    problems: list[str]


class CheckpointOut(_Out):
    size: int
    checkpoint: str
    verifier_key: str = Field(description="C2SP verifier key string for the checkpoint signature.")


class EntryOut(_Out):
    index: int
    entry: dict[str, Any]


class EntriesOut(_Out):
    entries: list[EntryOut]
    next_start: int | None


class ConsistencyOut(_Out):
    old_size: int
    new_size: int
    proof: list[str]


class FlagOut(_Out):
    id: str
    key_id: str
    rule: str
    detail: str
    created_at: datetime
    cleared_at: datetime | None


class GatewayAllowOut(_Out):
    """The body of an allowing ext_authz answer (Envoy uses its ``x-guard-*`` headers)."""

    verdict: Literal["allow", "allow_with_conditions"]
    decision_id: str
    decision_ids: list[str] = Field(
        description="One decision per image the request carries (or one for its prompt)."
    )
    audit_index: int


class ReadinessOut(_Out):
    ready: bool
    checks: dict[str, str]


class ConsistencyProofOut(ConsistencyOut):
    """Check offline that the log only grew since a checkpoint held earlier: ``checkpoint``'s
    signature with the guard's public key, then ``proof`` (RFC 6962 §2.1.2, hex) from the held
    checkpoint's root at ``old_size`` to ``checkpoint``'s root at ``new_size``."""

    checkpoint: str = Field(description="The signed checkpoint (C2SP signed note) at new_size.")
