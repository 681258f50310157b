"""Composable policy rules: predicates over a request's facts, combined with ``all_of``,
``any_of`` and ``not`` (:mod:`guard.policy.expressions`).

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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, model_validator

from guard.policy.decision import DENY_CODES, Reason, ReasonCode, RuleOutcome
from guard.policy.expressions import Expression, explains_itself, predicate_name, walk
from guard.policy.facts import Context, Stage
from guard.policy.predicates import Evaluation, Strict

# Conditions an allowed request carries and the pipeline honours on the output.
KNOWN_CONDITIONS = frozenset({"watermark_required", "visible_label"})


class Rule(Strict):
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
                    node for node in (walk(part) if part else []) if type(node).about_face
                ]
                if about_face:
                    raise ValueError(
                        f"{predicate_name(about_face[0])} looks at a face: "
                        "use it in a rule with applies_to: each_face"
                    )
        check = self.require if self.require is not None else self.forbid
        if (
            check is not None
            and self.reason is None
            and not explains_itself(check, require=self.require is not None)
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
            outcome, passed = Evaluation(True), True
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

    def _failure_reasons(self, outcome: Evaluation) -> tuple[Reason, ...]:
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
