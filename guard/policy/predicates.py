"""The predicates a policy expression is built from, one class each, named in YAML by the key
of :data:`LEAF_PREDICATES` (``operation_in``, ``face_kind``, ``consent_granted``, ...).

A predicate evaluates to whether it holds, and the reasons that explain it when it explains
itself (``explains``): ``consent_granted`` fails with the most specific consent reason,
``prompt_names_public_figure`` holds with the figure and how the prompt named it. Face
predicates (``about_face``) only appear in ``applies_to: each_face`` rules.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from guard.identity import ConsentGrant, ConsentLevel, GrantStatus, MatchKind
from guard.policy.consent import consent_reason, how_named, match_evidence
from guard.policy.decision import Reason, ReasonCode
from guard.policy.facts import Context, Stage

FaceKind = Literal["public_figure", "subject", "unknown"]

_KIND_OF: dict[MatchKind, FaceKind] = {
    MatchKind.PUBLIC_FIGURE: "public_figure",
    MatchKind.CONSENTED_SUBJECT: "subject",
    MatchKind.UNKNOWN: "unknown",
}


@dataclass(frozen=True)
class Evaluation:
    """Whether an expression holds, and the reasons that explain it (from predicates that
    explain themselves; empty for the others)."""

    holds: bool
    because: tuple[Reason, ...] = ()


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Predicate(Strict):
    # Whether the predicate needs a face (only in ``applies_to: each_face`` rules).
    about_face: ClassVar[bool] = False
    # Whether its reasons explain a failure of ``require`` (True) or a hit of ``forbid``
    # (False); None: it gives no reasons, so a rule using it must name its reason code.
    explains: ClassVar[bool | None] = None

    def evaluate(self, context: Context) -> Evaluation:
        raise NotImplementedError


def joined(evaluations: Iterable[Evaluation]) -> tuple[Reason, ...]:
    """The reasons of several evaluations, in order."""
    return tuple(reason for evaluation in evaluations for reason in evaluation.because)


# request predicates ---------------------------------------------------------------------------


class OperationIn(Predicate):
    """The requested operation is one of these."""

    explains: ClassVar[bool | None] = True
    operation_in: tuple[str, ...] = Field(min_length=1)

    def evaluate(self, context: Context) -> Evaluation:
        operation = context.facts.operation
        if operation in self.operation_in:
            return Evaluation(True)
        return Evaluation(
            False,
            (
                Reason(
                    ReasonCode.OPERATION_NOT_PERMITTED,
                    f"operation '{operation}' is not permitted here "
                    f"(permitted: {', '.join(self.operation_in)})",
                    {"operation": operation},
                ),
            ),
        )


class TenantIn(Predicate):
    """The requester belongs to one of these tenants."""

    tenant_in: tuple[str, ...] = Field(min_length=1)

    def evaluate(self, context: Context) -> Evaluation:
        return Evaluation(context.facts.tenant in self.tenant_in)


class StageIs(Predicate):
    stage: Stage

    def evaluate(self, context: Context) -> Evaluation:
        return Evaluation(context.facts.stage == self.stage)


class HasFaces(Predicate):
    """The image shows at least one face (``false``: none)."""

    has_faces: bool

    def evaluate(self, context: Context) -> Evaluation:
        return Evaluation(bool(context.facts.faces) == self.has_faces)


class FacesAppeared(Predicate):
    """The output shows faces that are nobody from the input."""

    faces_appeared: bool

    def evaluate(self, context: Context) -> Evaluation:
        return Evaluation(bool(context.facts.appeared) == self.faces_appeared)


class PromptNamesPublicFigure(Predicate):
    """The prompt names a blocklisted figure (however disguised); it holds with one reason per
    figure, giving the screening rule that caught it and the span."""

    explains: ClassVar[bool | None] = False
    prompt_names_public_figure: bool

    def evaluate(self, context: Context) -> Evaluation:
        facts = context.facts
        if bool(facts.prompt_figures) != self.prompt_names_public_figure:
            return Evaluation(False)
        return Evaluation(
            True,
            tuple(
                Reason(
                    ReasonCode.PROMPT_NAMES_PUBLIC_FIGURE,
                    f"the prompt names public figure {figure_id}"
                    + how_named(facts.prompt_mentions.get(figure_id)),
                    {"figure_id": figure_id, **facts.prompt_mentions.get(figure_id, {})},
                )
                for figure_id in facts.prompt_figures
            ),
        )


class PromptSubjectsConsented(Predicate):
    """Every enrolled subject the prompt names (by display name, however disguised) granted
    this requester this operation; fails with each subject's consent reason."""

    explains: ClassVar[bool | None] = True
    prompt_subjects_consented: Literal[True]

    def evaluate(self, context: Context) -> Evaluation:
        facts = context.facts
        reasons = []
        for named in facts.prompt_subjects:
            reason = consent_reason(named.subject_id, named.grants, facts.operation, facts.at, {})
            reasons.append(
                Reason(
                    reason.code,
                    f"named in the prompt{how_named(named.mention)}: {reason.message}",
                    {**reason.evidence, **named.mention},
                )
            )
        return Evaluation(all(not r.denies for r in reasons), tuple(reasons))


class NsfwScoreAtLeast(Predicate):
    """The NSFW classifier scored the image at least this (never holds when screening is off)."""

    explains: ClassVar[bool | None] = False
    nsfw_score_at_least: float = Field(gt=0.0, le=1.0)

    def evaluate(self, context: Context) -> Evaluation:
        facts = context.facts
        score = facts.nsfw_score
        if score is None or score < self.nsfw_score_at_least:
            return Evaluation(False)
        return Evaluation(
            True,
            (
                Reason(
                    ReasonCode.NSFW_REAL_PERSON,
                    f"sexual content ({', '.join(facts.nsfw_labels) or 'classifier score'}) "
                    f"scored {score:.2f} >= {self.nsfw_score_at_least}",
                    {"nsfw_score": score, "threshold": self.nsfw_score_at_least},
                ),
            ),
        )


class IdentityHeld(Predicate):
    """Every allowed input face is still the same person in the output (drift score at or above
    the engine's drift threshold); holds trivially on the input stage."""

    explains: ClassVar[bool | None] = True
    identity_held: Literal[True]

    def evaluate(self, context: Context) -> Evaluation:
        reasons = []
        for d in context.facts.drift:
            evidence: dict[str, str | int | float | bool | None] = {
                "face_index": d.input_face_index,
                "output_face_index": d.output_face_index,
                "similarity": round(d.similarity, 4),
                "threshold": d.threshold,
            }
            if d.similarity >= d.threshold:
                reasons.append(
                    Reason(
                        ReasonCode.IDENTITY_PRESERVED,
                        f"input face {d.input_face_index} is still the same person "
                        f"(similarity {d.similarity:.3f})",
                        evidence,
                    )
                )
            else:
                reasons.append(
                    Reason(
                        ReasonCode.IDENTITY_DRIFT,
                        f"input face {d.input_face_index} is no longer the same person in the "
                        f"output (similarity {d.similarity:.3f} < {d.threshold})",
                        evidence,
                    )
                )
        return Evaluation(all(not r.denies for r in reasons), tuple(reasons))


# face predicates ------------------------------------------------------------------------------


class FaceKindIs(Predicate):
    """The face is one of these kinds: ``public_figure`` (matches the blocklist, whether or not
    it also matches a subject), ``subject`` (matches an enrolled subject only), ``unknown``."""

    about_face: ClassVar[bool] = True
    face_kind: tuple[FaceKind, ...] = Field(min_length=1)

    def evaluate(self, context: Context) -> Evaluation:
        return Evaluation(_KIND_OF[context.the_face.kind] in self.face_kind)


class FaceReadable(Predicate):
    """*(face)* The identity engine could read the face (``false``: another detector saw a
    face there, covered or turned away, that cannot be identified; its kind is ``unknown``)."""

    about_face: ClassVar[bool] = True
    face_readable: bool

    def evaluate(self, context: Context) -> Evaluation:
        return Evaluation(context.the_face.readable == self.face_readable)


class ConsentGranted(Predicate):
    """The face's enrolled subject granted this requester this operation, and the grant is in
    force now; fails with the most specific reason (``scope_not_granted`` > ``consent_revoked``
    > ``consent_expired`` > ``consent_not_yet_valid`` > ``no_consent``)."""

    about_face: ClassVar[bool] = True
    explains: ClassVar[bool | None] = True
    consent_granted: Literal[True]

    def evaluate(self, context: Context) -> Evaluation:
        face, facts = context.the_face, context.facts
        if face.subject is None or face.subject.identity_id is None:
            return Evaluation(
                False,
                (
                    Reason(
                        ReasonCode.NO_CONSENT,
                        "unknown face: nobody with consent on record matches it",
                    ),
                ),
            )
        reason = consent_reason(
            face.subject.identity_id,
            face.grants,
            facts.operation,
            facts.at,
            match_evidence(face.subject),
        )
        return Evaluation(not reason.denies, (reason,))


class OwnConsent(Predicate):
    """The person in the face consented themselves: a public figure who enrolled as a subject
    (linked to this very blocklist entry) granted this requester this operation; fails with
    ``public_figure`` (``output_public_figure`` on the output). For a face that is no public
    figure it is :class:`ConsentGranted`."""

    about_face: ClassVar[bool] = True
    explains: ClassVar[bool | None] = True
    own_consent: Literal[True]

    def evaluate(self, context: Context) -> Evaluation:
        face, facts = context.the_face, context.facts
        figure, subject = face.figure, face.subject
        if figure is None:
            return ConsentGranted(consent_granted=True).evaluate(context)
        if subject is not None and face.linked_figure_id == figure.identity_id:
            consent = consent_reason(
                str(subject.identity_id), face.grants, facts.operation, facts.at, {}
            )
            if not consent.denies:
                return Evaluation(
                    True,
                    (
                        Reason(
                            ReasonCode.PUBLIC_FIGURE_OWN_CONSENT,
                            f"public figure {figure.identity_id} enrolled and granted this use",
                            # Only an operator can link a subject to a figure (with evidence).
                            {**match_evidence(figure), **consent.evidence, "link": "operator"},
                        ),
                    ),
                )
        code = (
            ReasonCode.OUTPUT_PUBLIC_FIGURE if facts.stage == "output" else ReasonCode.PUBLIC_FIGURE
        )
        return Evaluation(
            False,
            (
                Reason(
                    code,
                    f"face matches public figure {figure.identity_id}",
                    match_evidence(figure),
                ),
            ),
        )


def _allowing_grants(context: Context) -> list[ConsentGrant]:
    """The face's grants that allow this operation now (in force, in scope)."""
    facts = context.facts
    return [
        g
        for g in context.the_face.grants
        if g.status_at(facts.at) is GrantStatus.ACTIVE and facts.operation in g.scopes
    ]


class GrantScopesInclude(Predicate):
    """The grant that allows this operation also carries these scopes (e.g. a separate
    ``publication`` scope a newsroom asks for)."""

    about_face: ClassVar[bool] = True
    grant_scopes_include: tuple[str, ...] = Field(min_length=1)

    def evaluate(self, context: Context) -> Evaluation:
        wanted = set(self.grant_scopes_include)
        return Evaluation(any(wanted <= set(g.scopes) for g in _allowing_grants(context)))


class ConsentLevelIn(Predicate):
    """The grant that allows this operation was obtained at one of these levels: ``attested``
    (the integrator asserts it) or ``person_confirmed`` (the person confirmed it themselves)."""

    about_face: ClassVar[bool] = True
    consent_level: tuple[ConsentLevel, ...] = Field(min_length=1)

    def evaluate(self, context: Context) -> Evaluation:
        return Evaluation(any(g.level in self.consent_level for g in _allowing_grants(context)))


# the table ------------------------------------------------------------------------------------

LEAF_PREDICATES: dict[str, type[Predicate]] = {
    "operation_in": OperationIn,
    "tenant_in": TenantIn,
    "stage": StageIs,
    "has_faces": HasFaces,
    "faces_appeared": FacesAppeared,
    "prompt_names_public_figure": PromptNamesPublicFigure,
    "prompt_subjects_consented": PromptSubjectsConsented,
    "nsfw_score_at_least": NsfwScoreAtLeast,
    "identity_held": IdentityHeld,
    "face_kind": FaceKindIs,
    "consent_level": ConsentLevelIn,
    "face_readable": FaceReadable,
    "consent_granted": ConsentGranted,
    "own_consent": OwnConsent,
    "grant_scopes_include": GrantScopesInclude,
}
