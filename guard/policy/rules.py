"""Composable policy rules: predicates over a request's facts, combined with ``all_of``,
``any_of`` and ``not``.

A rule names the facts it looks at (``applies_to: request`` or ``each_face``), when it applies
(``when``, optional; ``stages``) and what must hold (``require``) or must not (``forbid``)::

    - id: subjects-need-consent
      applies_to: each_face
      when: {face_kind: [subject]}
      require: {consent_granted: true}

Every rule that fails gives a reason. Some predicates explain themselves: ``consent_granted``
fails with the most specific consent reason (``consent_revoked``, ``scope_not_granted``, ...),
``prompt_names_public_figure`` holds with the figure, the rule that caught the disguise and the
span. A rule built from predicates that do not (``face_kind``, ``has_faces``, a ``not``) names
its ``reason`` code, or the policy does not load: no rule can fail without saying why.

An expression is a mapping with one key, the predicate's name (see :data:`PREDICATES`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from guard.identity import ConsentGrant, FaceFacts, GrantStatus, Match, MatchKind, tenant_of
from guard.policy.decision import DENY_CODES, Reason, ReasonCode, RuleOutcome

Stage = Literal["input", "output"]
FaceKind = Literal["public_figure", "subject", "unknown"]
# Conditions an allowed request carries and the pipeline honours on the output.
KNOWN_CONDITIONS = frozenset({"watermark_required", "visible_label"})

_KIND_OF: dict[MatchKind, FaceKind] = {
    MatchKind.PUBLIC_FIGURE: "public_figure",
    MatchKind.CONSENTED_SUBJECT: "subject",
    MatchKind.UNKNOWN: "unknown",
}


@dataclass(frozen=True)
class DriftFact:
    """How similar an allowed input face is to its best counterpart in the output."""

    input_face_index: int
    output_face_index: int | None
    similarity: float
    threshold: float


@dataclass(frozen=True)
class PromptSubject:
    """An enrolled subject of the requester's tenant named in the prompt, with the subject's
    grants to this requester."""

    subject_id: str
    grants: tuple[ConsentGrant, ...]
    mention: Mapping[str, str]


@dataclass(frozen=True)
class RequestFacts:
    """Everything a policy can look at for one request at one stage; no biometric data."""

    stage: Stage
    requester: str
    operation: str
    faces: tuple[FaceFacts, ...]
    prompt_figures: tuple[str, ...] = ()
    # Per named figure: how the prompt named it (rule, span, matched text), for the evidence.
    prompt_mentions: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    prompt_subjects: tuple[PromptSubject, ...] = ()
    drift: tuple[DriftFact, ...] = ()
    # Output faces that are nobody from the input (output stage of an edit).
    appeared: tuple[int, ...] = ()
    # The NSFW classifier's score (None: screening switched off) and the classes it saw.
    nsfw_score: float | None = None
    nsfw_labels: tuple[str, ...] = ()
    # Conditions the input gate set (output stage): obligations carry through to the output.
    carried_conditions: tuple[str, ...] = ()
    at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def tenant(self) -> str:
        """The tenant part of the requester id (``tenant/app``)."""
        return tenant_of(self.requester)


@dataclass(frozen=True)
class Outcome:
    """Whether an expression holds, and the reasons that explain it (from predicates that
    explain themselves; empty for the others)."""

    holds: bool
    because: tuple[Reason, ...] = ()


@dataclass(frozen=True)
class Context:
    facts: RequestFacts
    face: FaceFacts | None = None

    @property
    def the_face(self) -> FaceFacts:
        # Rules are validated so that face predicates only appear in each_face rules.
        assert self.face is not None, "a face predicate outside an each_face rule"
        return self.face


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class _Predicate(_Strict):
    # Whether the predicate needs a face (only in ``applies_to: each_face`` rules).
    about_face: ClassVar[bool] = False
    # Whether its reasons explain a failure of ``require`` (True) or a hit of ``forbid``
    # (False); None: it gives no reasons, so a rule using it must name its reason code.
    explains: ClassVar[bool | None] = None

    def evaluate(self, context: Context) -> Outcome:
        raise NotImplementedError


# combinators ----------------------------------------------------------------------------------


class AllOf(_Predicate):
    all_of: tuple[Expression, ...] = Field(min_length=1)

    def evaluate(self, context: Context) -> Outcome:
        outcomes = [e.evaluate(context) for e in self.all_of]
        holds = all(o.holds for o in outcomes)
        return Outcome(holds, _joined(o for o in outcomes if o.holds == holds))


class AnyOf(_Predicate):
    any_of: tuple[Expression, ...] = Field(min_length=1)

    def evaluate(self, context: Context) -> Outcome:
        outcomes = [e.evaluate(context) for e in self.any_of]
        for outcome in outcomes:
            if outcome.holds:
                return outcome
        return Outcome(False, _joined(outcomes))


class Not(_Predicate):
    not_: Expression = Field(alias="not")

    def evaluate(self, context: Context) -> Outcome:
        # The inner reasons explain the opposite verdict, so none are passed on.
        return Outcome(not self.not_.evaluate(context).holds)


def _joined(outcomes: Iterable[Outcome]) -> tuple[Reason, ...]:
    return tuple(reason for outcome in outcomes for reason in outcome.because)


# request predicates ---------------------------------------------------------------------------


class OperationIn(_Predicate):
    """The requested operation is one of these."""

    explains: ClassVar[bool | None] = True
    operation_in: tuple[str, ...] = Field(min_length=1)

    def evaluate(self, context: Context) -> Outcome:
        operation = context.facts.operation
        if operation in self.operation_in:
            return Outcome(True)
        return Outcome(
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


class TenantIn(_Predicate):
    """The requester belongs to one of these tenants."""

    tenant_in: tuple[str, ...] = Field(min_length=1)

    def evaluate(self, context: Context) -> Outcome:
        return Outcome(context.facts.tenant in self.tenant_in)


class StageIs(_Predicate):
    stage: Stage

    def evaluate(self, context: Context) -> Outcome:
        return Outcome(context.facts.stage == self.stage)


class HasFaces(_Predicate):
    """The image shows at least one face (``false``: none)."""

    has_faces: bool

    def evaluate(self, context: Context) -> Outcome:
        return Outcome(bool(context.facts.faces) == self.has_faces)


class FacesAppeared(_Predicate):
    """The output shows faces that are nobody from the input."""

    faces_appeared: bool

    def evaluate(self, context: Context) -> Outcome:
        return Outcome(bool(context.facts.appeared) == self.faces_appeared)


class PromptNamesPublicFigure(_Predicate):
    """The prompt names a blocklisted figure (however disguised); it holds with one reason per
    figure, giving the screening rule that caught it and the span."""

    explains: ClassVar[bool | None] = False
    prompt_names_public_figure: bool

    def evaluate(self, context: Context) -> Outcome:
        facts = context.facts
        if bool(facts.prompt_figures) != self.prompt_names_public_figure:
            return Outcome(False)
        return Outcome(
            True,
            tuple(
                Reason(
                    ReasonCode.PROMPT_NAMES_PUBLIC_FIGURE,
                    f"the prompt names public figure {figure_id}"
                    + _how_named(facts.prompt_mentions.get(figure_id)),
                    {"figure_id": figure_id, **facts.prompt_mentions.get(figure_id, {})},
                )
                for figure_id in facts.prompt_figures
            ),
        )


class PromptSubjectsConsented(_Predicate):
    """Every enrolled subject the prompt names (by display name, however disguised) granted
    this requester this operation; fails with each subject's consent reason."""

    explains: ClassVar[bool | None] = True
    prompt_subjects_consented: Literal[True]

    def evaluate(self, context: Context) -> Outcome:
        facts = context.facts
        reasons = []
        for named in facts.prompt_subjects:
            reason = consent_reason(named.subject_id, named.grants, facts.operation, facts.at, {})
            reasons.append(
                Reason(
                    reason.code,
                    f"named in the prompt{_how_named(named.mention)}: {reason.message}",
                    {**reason.evidence, **named.mention},
                )
            )
        return Outcome(all(not r.denies for r in reasons), tuple(reasons))


class NsfwScoreAtLeast(_Predicate):
    """The NSFW classifier scored the image at least this (never holds when screening is off)."""

    explains: ClassVar[bool | None] = False
    nsfw_score_at_least: float = Field(gt=0.0, le=1.0)

    def evaluate(self, context: Context) -> Outcome:
        facts = context.facts
        score = facts.nsfw_score
        if score is None or score < self.nsfw_score_at_least:
            return Outcome(False)
        return Outcome(
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


class IdentityHeld(_Predicate):
    """Every allowed input face is still the same person in the output (drift score at or above
    the engine's drift threshold); holds trivially on the input stage."""

    explains: ClassVar[bool | None] = True
    identity_held: Literal[True]

    def evaluate(self, context: Context) -> Outcome:
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
        return Outcome(all(not r.denies for r in reasons), tuple(reasons))


# face predicates ------------------------------------------------------------------------------


class FaceKindIs(_Predicate):
    """The face is one of these kinds: ``public_figure`` (matches the blocklist, whether or not
    it also matches a subject), ``subject`` (matches an enrolled subject only), ``unknown``."""

    about_face: ClassVar[bool] = True
    face_kind: tuple[FaceKind, ...] = Field(min_length=1)

    def evaluate(self, context: Context) -> Outcome:
        return Outcome(_KIND_OF[context.the_face.kind] in self.face_kind)


class FaceReadable(_Predicate):
    """*(face)* The identity engine could read the face (``false``: another detector saw a
    face there, covered or turned away, that cannot be identified; its kind is ``unknown``)."""

    about_face: ClassVar[bool] = True
    face_readable: bool

    def evaluate(self, context: Context) -> Outcome:
        return Outcome(context.the_face.readable == self.face_readable)


class ConsentGranted(_Predicate):
    """The face's enrolled subject granted this requester this operation, and the grant is in
    force now; fails with the most specific reason (``scope_not_granted`` > ``consent_revoked``
    > ``consent_expired`` > ``consent_not_yet_valid`` > ``no_consent``)."""

    about_face: ClassVar[bool] = True
    explains: ClassVar[bool | None] = True
    consent_granted: Literal[True]

    def evaluate(self, context: Context) -> Outcome:
        face, facts = context.the_face, context.facts
        if face.subject is None or face.subject.identity_id is None:
            return Outcome(
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
        return Outcome(not reason.denies, (reason,))


class OwnConsent(_Predicate):
    """The person in the face consented themselves: a public figure who enrolled as a subject
    (linked to this very blocklist entry) granted this requester this operation; fails with
    ``public_figure`` (``output_public_figure`` on the output). For a face that is no public
    figure it is :class:`ConsentGranted`."""

    about_face: ClassVar[bool] = True
    explains: ClassVar[bool | None] = True
    own_consent: Literal[True]

    def evaluate(self, context: Context) -> Outcome:
        face, facts = context.the_face, context.facts
        figure, subject = face.figure, face.subject
        if figure is None:
            return ConsentGranted(consent_granted=True).evaluate(context)
        if subject is not None and face.linked_figure_id == figure.identity_id:
            consent = consent_reason(
                str(subject.identity_id), face.grants, facts.operation, facts.at, {}
            )
            if not consent.denies:
                return Outcome(
                    True,
                    (
                        Reason(
                            ReasonCode.PUBLIC_FIGURE_OWN_CONSENT,
                            f"public figure {figure.identity_id} enrolled and granted this use",
                            {**match_evidence(figure), **consent.evidence},
                        ),
                    ),
                )
        code = (
            ReasonCode.OUTPUT_PUBLIC_FIGURE if facts.stage == "output" else ReasonCode.PUBLIC_FIGURE
        )
        return Outcome(
            False,
            (
                Reason(
                    code,
                    f"face matches public figure {figure.identity_id}",
                    match_evidence(figure),
                ),
            ),
        )


class GrantScopesInclude(_Predicate):
    """The grant that allows this operation also carries these scopes (e.g. a separate
    ``publication`` scope a newsroom asks for)."""

    about_face: ClassVar[bool] = True
    grant_scopes_include: tuple[str, ...] = Field(min_length=1)

    def evaluate(self, context: Context) -> Outcome:
        face, facts = context.the_face, context.facts
        return Outcome(
            any(
                g.status_at(facts.at) is GrantStatus.ACTIVE
                and {facts.operation, *self.grant_scopes_include} <= set(g.scopes)
                for g in face.grants
            )
        )


# the expression type --------------------------------------------------------------------------

PREDICATES: dict[str, type[_Predicate]] = {
    "all_of": AllOf,
    "any_of": AnyOf,
    "not": Not,
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
    "face_readable": FaceReadable,
    "consent_granted": ConsentGranted,
    "own_consent": OwnConsent,
    "grant_scopes_include": GrantScopesInclude,
}


_NAME_OF = {model: name for name, model in PREDICATES.items()}


def _predicate_name(value: Any) -> str | None:
    if isinstance(value, dict) and len(value) == 1:
        name = next(iter(value))
        return name if name in PREDICATES else None
    return _NAME_OF.get(type(value))


Expression = Annotated[
    Annotated[AllOf, Tag("all_of")]
    | Annotated[AnyOf, Tag("any_of")]
    | Annotated[Not, Tag("not")]
    | Annotated[OperationIn, Tag("operation_in")]
    | Annotated[TenantIn, Tag("tenant_in")]
    | Annotated[StageIs, Tag("stage")]
    | Annotated[HasFaces, Tag("has_faces")]
    | Annotated[FacesAppeared, Tag("faces_appeared")]
    | Annotated[PromptNamesPublicFigure, Tag("prompt_names_public_figure")]
    | Annotated[PromptSubjectsConsented, Tag("prompt_subjects_consented")]
    | Annotated[NsfwScoreAtLeast, Tag("nsfw_score_at_least")]
    | Annotated[IdentityHeld, Tag("identity_held")]
    | Annotated[FaceKindIs, Tag("face_kind")]
    | Annotated[FaceReadable, Tag("face_readable")]
    | Annotated[ConsentGranted, Tag("consent_granted")]
    | Annotated[OwnConsent, Tag("own_consent")]
    | Annotated[GrantScopesInclude, Tag("grant_scopes_include")],
    Discriminator(
        _predicate_name,
        custom_error_type="unknown_predicate",
        custom_error_message=(
            "an expression is a mapping with exactly one key, one of: " + ", ".join(PREDICATES)
        ),
    ),
]

for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()


def _walk(expression: _Predicate) -> list[_Predicate]:
    children: list[_Predicate] = []
    if isinstance(expression, AllOf):
        children = list(expression.all_of)
    elif isinstance(expression, AnyOf):
        children = list(expression.any_of)
    elif isinstance(expression, Not):
        children = [expression.not_]
    return [expression, *(node for child in children for node in _walk(child))]


def _explains_itself(expression: _Predicate, *, require: bool) -> bool:
    """Whether a failing ``require`` (or a hit ``forbid``) of this expression always comes with
    reasons of its own."""
    if isinstance(expression, AllOf | AnyOf):
        children = expression.all_of if isinstance(expression, AllOf) else expression.any_of
        return all(_explains_itself(child, require=require) for child in children)
    return type(expression).explains is require


# rules ----------------------------------------------------------------------------------------


class Rule(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$", max_length=80)
    description: str = ""
    applies_to: Literal["request", "each_face"] = "request"
    stages: tuple[Stage, ...] = Field(default=("input", "output"), min_length=1)
    when: Expression | None = None
    require: Expression | None = None
    forbid: Expression | None = None
    reason: ReasonCode | None = Field(
        default=None, description="The deny code when the rule fails."
    )
    message: str | None = None
    conditions: tuple[str, ...] = Field(
        default=(), description="Added to an allowed decision whenever the rule applies."
    )

    @model_validator(mode="after")
    def _well_formed(self) -> Rule:
        if self.require is not None and self.forbid is not None:
            raise ValueError("a rule has require or forbid, not both")
        if self.require is None and self.forbid is None and not self.conditions:
            raise ValueError("a rule needs require, forbid or conditions")
        if self.reason is not None and self.reason not in DENY_CODES:
            raise ValueError(
                f"reason {self.reason.value!r} does not deny; use one of "
                + ", ".join(sorted(code.value for code in DENY_CODES))
            )
        unknown = set(self.conditions) - KNOWN_CONDITIONS
        if unknown:
            raise ValueError(
                f"unknown condition(s) {sorted(unknown)}; known: {sorted(KNOWN_CONDITIONS)}"
            )
        if self.applies_to == "request":
            for part in (self.when, self.require, self.forbid):
                about_face = [
                    node for node in (_walk(part) if part else []) if type(node).about_face
                ]
                if about_face:
                    raise ValueError(
                        f"{_predicate_name(about_face[0])} looks at a face: "
                        "use it in a rule with applies_to: each_face"
                    )
        check = self.require if self.require is not None else self.forbid
        if (
            check is not None
            and self.reason is None
            and not _explains_itself(check, require=self.require is not None)
        ):
            raise ValueError(
                "this rule can fail without a reason of its own: give it a reason code "
                "(reason: ...), e.g. reason: no_consent"
            )
        return self

    def result(self, context: Context) -> RuleResult | None:
        """The rule's verdict on this request (or face), or None when it does not apply."""
        if context.facts.stage not in self.stages:
            return None
        if self.when is not None and not self.when.evaluate(context).holds:
            return None
        if self.require is not None:
            outcome = self.require.evaluate(context)
            passed = outcome.holds
        elif self.forbid is not None:
            outcome = self.forbid.evaluate(context)
            passed = not outcome.holds
        else:
            outcome, passed = Outcome(True), True
        face_index = context.face.face_index if context.face is not None else None
        reasons = (
            tuple(r for r in outcome.because if not r.denies)
            if passed
            else self._failure_reasons(outcome)
        )
        return RuleResult(
            self.id,
            face_index,
            passed,
            tuple(
                Reason(
                    r.code,
                    r.message,
                    {
                        **({} if face_index is None else {"face_index": face_index}),
                        **r.evidence,
                        "policy_rule": self.id,
                    },
                )
                for r in reasons
            ),
            self.conditions,
        )

    def _failure_reasons(self, outcome: Outcome) -> tuple[Reason, ...]:
        own = tuple(r for r in outcome.because if r.denies)
        if self.reason is None or (own and all(r.code is self.reason for r in own)):
            if self.message is not None:
                return tuple(Reason(r.code, self.message, r.evidence) for r in own)
            return own
        evidence = own[0].evidence if own else {}
        message = self.message or (
            "; ".join(r.message for r in own)
            if own
            else f"policy rule {self.id}: {self.description or 'failed'}"
        )
        return (Reason(self.reason, message, dict(evidence)),)


@dataclass(frozen=True)
class RuleResult:
    """What one rule said about the request (``face_index`` None) or about one face."""

    rule_id: str
    face_index: int | None
    passed: bool
    reasons: tuple[Reason, ...]
    conditions: tuple[str, ...] = ()

    def outcome(self) -> RuleOutcome:
        """The audited form: ids and codes only (messages can name subjects)."""
        return RuleOutcome(
            self.rule_id,
            self.face_index,
            self.passed,
            tuple(dict.fromkeys(r.code.value for r in self.reasons)),
        )


# consent --------------------------------------------------------------------------------------

_GRANT_PROBLEMS: tuple[tuple[GrantStatus, ReasonCode, str], ...] = (
    (GrantStatus.REVOKED, ReasonCode.CONSENT_REVOKED, "the consent grant was revoked"),
    (GrantStatus.EXPIRED, ReasonCode.CONSENT_EXPIRED, "the consent grant has expired"),
    (
        GrantStatus.NOT_YET_VALID,
        ReasonCode.CONSENT_NOT_YET_VALID,
        "the consent grant is not valid yet",
    ),
)


def match_evidence(match: Match) -> dict[str, str | int | float | bool | None]:
    key = "figure_id" if match.kind == MatchKind.PUBLIC_FIGURE else "subject_id"
    return {key: match.identity_id, "similarity": match.similarity, "threshold": match.threshold}


def consent_reason(
    subject_id: str,
    grants: Sequence[ConsentGrant],
    operation: str,
    at: datetime,
    evidence: Mapping[str, str | int | float | bool | None],
) -> Reason:
    """The reason a subject's grants to this requester allow or deny ``operation`` at ``at``."""
    evidence = {"subject_id": subject_id, **evidence}
    statuses = [(g, g.status_at(at)) for g in grants]
    for grant, status in statuses:
        if status is GrantStatus.ACTIVE and operation in grant.scopes:
            return Reason(
                ReasonCode.CONSENT_GRANTED,
                f"subject {subject_id} granted '{operation}' to this requester",
                {**evidence, "grant_id": grant.id},
            )
    active = [g for g, s in statuses if s is GrantStatus.ACTIVE]
    if active:
        return Reason(
            ReasonCode.SCOPE_NOT_GRANTED,
            f"subject {subject_id} did not grant '{operation}' "
            f"(granted: {', '.join(sorted({s for g in active for s in g.scopes}))})",
            {**evidence, "grant_id": active[0].id},
        )
    for wanted, code, message in _GRANT_PROBLEMS:
        for grant, status in statuses:
            if status is wanted:
                return Reason(
                    code, f"subject {subject_id}: {message}", {**evidence, "grant_id": grant.id}
                )
    return Reason(
        ReasonCode.NO_CONSENT,
        f"subject {subject_id} has no consent grant for this requester",
        evidence,
    )


def _how_named(mention: Mapping[str, str] | None) -> str:
    if not mention:
        return ""
    return f" ({mention['rule']} match: {mention['matched']!r})"
