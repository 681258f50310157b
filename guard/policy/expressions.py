"""Policy expressions: a predicate, or ``all_of`` / ``any_of`` / ``not`` over expressions.

An expression is a mapping with one key, the predicate's name (see :data:`PREDICATES`); the
expression type is derived from that table, so a new predicate is added in one place.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Discriminator, Field, Tag

from guard.policy.facts import Context
from guard.policy.predicates import LEAF_PREDICATES, Evaluation, Predicate, joined


class AllOf(Predicate):
    all_of: tuple[Expression, ...] = Field(min_length=1)

    def evaluate(self, context: Context) -> Evaluation:
        outcomes = [e.evaluate(context) for e in self.all_of]
        holds = all(o.holds for o in outcomes)
        return Evaluation(holds, joined(o for o in outcomes if o.holds == holds))


class AnyOf(Predicate):
    any_of: tuple[Expression, ...] = Field(min_length=1)

    def evaluate(self, context: Context) -> Evaluation:
        outcomes = [e.evaluate(context) for e in self.any_of]
        for outcome in outcomes:
            if outcome.holds:
                return outcome
        return Evaluation(False, joined(outcomes))


class Not(Predicate):
    not_: Expression = Field(alias="not")

    def evaluate(self, context: Context) -> Evaluation:
        # The inner reasons explain the opposite verdict, so none are passed on.
        return Evaluation(not self.not_.evaluate(context).holds)


PREDICATES: dict[str, type[Predicate]] = {
    "all_of": AllOf,
    "any_of": AnyOf,
    "not": Not,
    **LEAF_PREDICATES,
}
_NAME_OF = {model: name for name, model in PREDICATES.items()}


def predicate_name(value: Any) -> str | None:
    """The predicate an expression (a YAML mapping, or a parsed model) is, if any."""
    if isinstance(value, dict) and len(value) == 1:
        name = next(iter(value))
        return name if name in PREDICATES else None
    return _NAME_OF.get(type(value))


if TYPE_CHECKING:
    Expression = Predicate
else:
    Expression = Annotated[
        Union[tuple(Annotated[model, Tag(name)] for name, model in PREDICATES.items())],  # noqa: UP007
        Discriminator(
            predicate_name,
            custom_error_type="unknown_predicate",
            custom_error_message=(
                "an expression is a mapping with exactly one key, one of: " + ", ".join(PREDICATES)
            ),
        ),
    ]

for _model in (AllOf, AnyOf, Not):
    _model.model_rebuild()


def walk(expression: Predicate) -> list[Predicate]:
    """The expression and every expression inside it, depth first."""
    children: list[Predicate] = []
    if isinstance(expression, AllOf):
        children = list(expression.all_of)
    elif isinstance(expression, AnyOf):
        children = list(expression.any_of)
    elif isinstance(expression, Not):
        children = [expression.not_]
    return [expression, *(node for child in children for node in walk(child))]


def explains_itself(expression: Predicate, *, require: bool) -> bool:
    """Whether a failing ``require`` (or a hit ``forbid``) of this expression always comes with
    reasons of its own."""
    if isinstance(expression, AllOf | AnyOf):
        children = expression.all_of if isinstance(expression, AllOf) else expression.any_of
        return all(explains_itself(child, require=require) for child in children)
    return type(expression).explains is require
