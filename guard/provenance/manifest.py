"""C2PA manifests: what the guard writes into every output, and reading them back.

Each manifest has

- ``c2pa.actions.v2``: ``c2pa.opened`` (the input, as the parent ingredient, keeping its own
  manifest if it had one) then ``c2pa.edited`` with the editor as ``softwareAgent`` and IPTC
  ``compositeWithTrainedAlgorithmicMedia``; or, for an image made elsewhere with no input,
  ``c2pa.created`` with ``trainedAlgorithmicMedia``;
- ``c2pa.soft-binding``: the watermark algorithm and the record id it carries;
- ``io.likenessguard.decision``: decision id, verdict, reason codes, policy id and version,
  operation, consent grant references as keyed hashes, the audit leaf hash and, where a public
  figure's own consent allowed the edit, ``public_figure_links`` (the figure and that the link
  was made by the operator). Never embeddings, face crops or the names of private people.

    >>> signed = sign_image(png_bytes, "image/png", facts, credentials)       # doctest: +SKIP
    >>> read_manifest(signed.data).state                                      # doctest: +SKIP
    'Valid'
"""

from __future__ import annotations

import base64
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import c2pa

from guard._version import __version__
from guard.policy import Decision, ReasonCode
from guard.provenance.signing import SigningCredentials
from guard.provenance.watermark import record_id_text

GUARD_ASSERTION = "io.likenessguard.decision"
SOFT_BINDING_ASSERTION = "c2pa.soft-binding"
_IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
EDITED_SOURCE_TYPE = _IPTC + "compositeWithTrainedAlgorithmicMedia"
GENERATED_SOURCE_TYPE = _IPTC + "trainedAlgorithmicMedia"


# Present on every manifest signed by a CA that the reader was not told to trust: not tampering.
UNTRUSTED_CODE = "signingCredential.untrusted"


@dataclass(frozen=True)
class SoftwareAgent:
    """The backend that made the pixels (C2PA ``softwareAgent``)."""

    name: str
    version: str


@dataclass(frozen=True)
class Ingredient:
    """The input an edit started from: its bytes (with any manifest of its own) and MIME type."""

    data: bytes
    mime_type: str
    title: str = "input"


@dataclass(frozen=True)
class ManifestFacts:
    """Everything that goes into one output's manifest."""

    title: str
    software_agent: SoftwareAgent
    operation: str
    decision: Decision
    watermark_algorithm: str
    record_id: int
    consent_grant_refs: tuple[str, ...] = ()
    parent: Ingredient | None = None
    audit_leaf_hash: str | None = None
    editor_record: Mapping[str, str | int | float | bool] = field(default_factory=dict)

    def guard_assertion(self) -> dict[str, Any]:
        decision = self.decision
        data: dict[str, Any] = {
            "decision_id": decision.decision_id,
            "verdict": decision.verdict.value,
            "stage": decision.stage,
            "reason_codes": list(decision.reason_codes),
            "policy": {"id": decision.policy_id, "version": decision.policy_version},
            "conditions": list(decision.conditions),
            "operation": self.operation,
            "consent_grant_refs": list(self.consent_grant_refs),
            "watermark_record_id": record_id_text(self.record_id),
        }
        links = [
            {"figure_id": reason.evidence["figure_id"], "linked_by": reason.evidence["link"]}
            for face in decision.faces
            for reason in face.reasons
            if reason.code is ReasonCode.PUBLIC_FIGURE_OWN_CONSENT
        ]
        if links:  # a public figure's own consent rests on an operator-verified link
            data["public_figure_links"] = links
        levels = sorted(
            {
                str(reason.evidence["consent_level"])
                for face in decision.faces
                for reason in face.reasons
                if reason.evidence.get("consent_level") and not reason.denies
            }
        )
        if levels:  # how the consent this output rests on was obtained
            data["consent_levels"] = levels
        if self.audit_leaf_hash is not None:
            data["audit_leaf_hash"] = self.audit_leaf_hash
        if self.editor_record:
            data["editor"] = dict(self.editor_record)
        return data

    def definition(self) -> dict[str, Any]:
        agent = {"name": self.software_agent.name, "version": self.software_agent.version}
        if self.parent is not None:
            actions = [
                {"action": "c2pa.opened", "parameters": {"ingredientIds": ["parent"]}},
                {
                    "action": "c2pa.edited",
                    "digitalSourceType": EDITED_SOURCE_TYPE,
                    "softwareAgent": agent,
                    "description": self.operation,
                },
            ]
        else:
            actions = [
                {
                    "action": "c2pa.created",
                    "digitalSourceType": GENERATED_SOURCE_TYPE,
                    "softwareAgent": agent,
                    "description": self.operation,
                }
            ]
        record = base64.b64encode(self.record_id.to_bytes(6, "big")).decode()
        return {
            "claim_generator_info": [{"name": "likeness-guard", "version": __version__}],
            "title": self.title,
            "assertions": [
                {"label": "c2pa.actions.v2", "data": {"actions": actions}},
                {
                    "label": SOFT_BINDING_ASSERTION,
                    "data": {
                        "alg": self.watermark_algorithm,
                        "blocks": [{"scope": {}, "value": record}],
                    },
                },
                {"label": GUARD_ASSERTION, "data": self.guard_assertion()},
            ],
        }


@dataclass(frozen=True)
class ValidationIssue:
    code: str
    explanation: str = ""
    url: str = ""


@dataclass(frozen=True)
class ManifestReading:
    """What a C2PA reader found in one file. ``error`` is set when the file could not be parsed."""

    found: bool
    state: str | None = None
    failures: tuple[ValidationIssue, ...] = ()
    label: str | None = None
    guard_assertion: dict[str, Any] | None = None
    soft_binding: dict[str, Any] | None = None
    store_json: str | None = None
    error: str | None = None

    @property
    def valid(self) -> bool:
        return self.state in ("Valid", "Trusted")

    @property
    def trusted(self) -> bool:
        return self.state == "Trusted"

    @property
    def tampered(self) -> bool:
        return self.found and not self.valid

    @property
    def problems(self) -> tuple[ValidationIssue, ...]:
        """Failures that mean something is wrong (an untrusted signer alone is not one)."""
        return tuple(issue for issue in self.failures if issue.code != UNTRUSTED_CODE)


@dataclass(frozen=True)
class SignedImage:
    data: bytes
    label: str
    store_json: str = field(repr=False)


def sign_image(
    image: bytes,
    mime_type: str,
    facts: ManifestFacts,
    credentials: SigningCredentials,
    *,
    thumbnails: bool = False,
) -> SignedImage:
    """Embed a signed manifest for ``facts`` in ``image`` (JPEG, PNG or WebP bytes)."""
    context = c2pa.Context.from_dict({"builder": {"thumbnail": {"enabled": thumbnails}}})
    builder = c2pa.Builder(facts.definition(), context)
    try:
        if facts.parent is not None:
            builder.add_ingredient(
                {"title": facts.parent.title, "relationship": "parentOf", "label": "parent"},
                facts.parent.mime_type,
                io.BytesIO(facts.parent.data),
            )
        signer = credentials.c2pa_signer()
        try:
            output = io.BytesIO()
            builder.sign(signer, mime_type, io.BytesIO(image), output)
        finally:
            signer.close()
    finally:
        builder.close()
    signed = output.getvalue()
    reading = read_manifest(signed, mime_type)
    assert reading.label is not None and reading.store_json is not None, "just signed"
    return SignedImage(signed, reading.label, reading.store_json)


def read_manifest(
    data: bytes, mime_type: str, *, trust_anchors: bytes | None = None
) -> ManifestReading:
    """Read and validate the manifest embedded in ``data``; never raises for a bad file."""
    settings: dict[str, Any] = {"verify": {"verify_trust": trust_anchors is not None}}
    if trust_anchors is not None:
        settings["trust"] = {"trust_anchors": trust_anchors.decode()}
    try:
        reader = c2pa.Reader(mime_type, io.BytesIO(data), context=c2pa.Context.from_dict(settings))
    except c2pa.C2paError as exc:
        if type(exc).__name__.endswith("ManifestNotFound"):
            return ManifestReading(found=False)
        return ManifestReading(found=False, error=f"{type(exc).__name__}: {exc}")
    try:
        store_json = reader.json()
        active = reader.get_active_manifest() or {}
        results = reader.get_validation_results() or {}
        state = reader.get_validation_state()
    finally:
        reader.close()
    assertions = {item.get("label"): item.get("data") for item in active.get("assertions", [])}
    failures = tuple(
        ValidationIssue(item.get("code", ""), item.get("explanation", ""), item.get("url", ""))
        for item in results.get("activeManifest", {}).get("failure", [])
    )
    return ManifestReading(
        found=True,
        state=state,
        failures=failures,
        label=active.get("label"),
        guard_assertion=assertions.get(GUARD_ASSERTION),
        soft_binding=assertions.get(SOFT_BINDING_ASSERTION),
        store_json=store_json,
    )
