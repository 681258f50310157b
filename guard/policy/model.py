"""The policy document: a versioned YAML file validated by pydantic.

    >>> policy = load_policy(Path("policies/default.yaml"))  # doctest: +SKIP
    >>> policy.id, [rule.id for rule in policy.rules][:2]           # doctest: +SKIP
    ('default', ['permitted-operations', 'public-figures-need-their-own-consent'])

A policy that cannot be read or validated raises :class:`~guard.errors.Unavailable`; the pipeline
turns that into a ``deny`` with reason ``unavailable`` (fail closed).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from guard.errors import Unavailable
from guard.policy.rules import KNOWN_CONDITIONS, Rule


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class MonitoringRules(_Strict):
    """Usage monitoring for the HTTP service: counts per API key in fixed windows. A key that
    crosses a limit is flagged (audited, listed for admins) and throttled until cleared."""

    window_seconds: int = Field(default=3600, ge=60)
    max_edits_per_identity: int = Field(
        default=30, ge=1, description="Requests by one key involving one identified person."
    )
    max_denials: int = Field(default=50, ge=1)
    max_near_miss_figures: int = Field(
        default=5, ge=1, description="Distinct public figures a key's faces nearly matched."
    )
    throttle_factor: float = Field(
        default=0.1, gt=0.0, le=1.0, description="A flagged key's rate limit is multiplied by it."
    )


class Policy(_Strict):
    """A named, versioned list of rules (see :mod:`guard.policy.rules`)."""

    id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    description: str = ""
    rules: tuple[Rule, ...] = Field(min_length=1)
    conditions: tuple[str, ...] = Field(
        default=("watermark_required",), description="Carried by every allowed decision."
    )
    monitoring: MonitoringRules = MonitoringRules()

    @model_validator(mode="after")
    def _consistent(self) -> Policy:
        ids = [rule.id for rule in self.rules]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"rule ids must be unique; repeated: {', '.join(repeated)}")
        unknown = set(self.conditions) - KNOWN_CONDITIONS
        if unknown:
            raise ValueError(
                f"unknown condition(s) {sorted(unknown)}; known: {sorted(KNOWN_CONDITIONS)}"
            )
        return self

    def rule(self, rule_id: str) -> Rule | None:
        return next((rule for rule in self.rules if rule.id == rule_id), None)


@dataclass(frozen=True)
class PolicyProblem:
    """One thing wrong with a policy file, located in it (``line`` is 1-based, 0 unknown)."""

    line: int
    location: str
    message: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        return (
            f"{where}: {self.location}: {self.message}"
            if self.location
            else f"{where}: {self.message}"
        )


def _location(loc: tuple[str | int, ...]) -> tuple[str | int, ...]:
    """pydantic's error location without the tag of a tagged union (``require.all_of.all_of.0``
    names the key twice: once as the predicate's tag, once as its field)."""
    return tuple(part for i, part in enumerate(loc) if i == 0 or part != loc[i - 1])


def _follows_from_others(
    loc: tuple[str | int, ...], kind: str, errors: list[tuple[tuple[str | int, ...], Any]]
) -> bool:
    """pydantic also reports a list as too short when an item inside it was invalid; that
    follows from the item's own problem, which is the one worth reading."""
    return kind == "too_short" and any(
        other[: len(loc)] == loc and len(other) > len(loc) for other, _ in errors
    )


def _line_of(node: yaml.Node | None, location: tuple[str | int, ...]) -> int:
    """The 1-based line of the YAML node at ``location`` (or of its nearest existing parent)."""
    line = node.start_mark.line + 1 if node is not None else 0
    for part in location:
        if isinstance(node, yaml.MappingNode):
            found = next((v for k, v in node.value if k.value == part), None)
            if found is None:
                return line
            node = found
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int):
            if part >= len(node.value):
                return line
            node = node.value[part]
        else:
            return line
        line = node.start_mark.line + 1
    return line


def policy_problems(text: str) -> tuple[Policy | None, list[PolicyProblem]]:
    """Parse and validate a policy document: the policy, or every problem with its line."""
    try:
        tree = yaml.compose(text)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        return None, [PolicyProblem(mark.line + 1 if mark else 0, "", f"not valid YAML: {exc}")]
    if not isinstance(raw, dict):
        return None, [PolicyProblem(1, "", "a policy is a YAML mapping (id, version, rules)")]
    try:
        return Policy.model_validate(raw), []
    except ValidationError as exc:
        errors = [(_location(tuple(error["loc"])), error) for error in exc.errors()]
        return None, [
            PolicyProblem(_line_of(tree, loc), ".".join(str(part) for part in loc), error["msg"])
            for loc, error in errors
            if not _follows_from_others(loc, error["type"], errors)
        ]


def rule_lines(text: str) -> dict[str, int]:
    """The 1-based line where each rule (by id) starts in a policy document."""
    try:
        tree = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    rules = (
        next((v for k, v in tree.value if k.value == "rules"), None)
        if isinstance(tree, yaml.MappingNode)
        else None
    )
    lines = {}
    for item in rules.value if isinstance(rules, yaml.SequenceNode) else []:
        if isinstance(item, yaml.MappingNode):
            for key, value in item.value:
                if key.value == "id" and isinstance(value, yaml.ScalarNode):
                    lines[str(value.value)] = item.start_mark.line + 1
    return lines


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file, or raise :class:`Unavailable` naming every problem with
    its line."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise Unavailable(f"the policy {path} cannot be read (GUARD_POLICY_FILE): {exc}") from exc
    policy, problems = policy_problems(text)
    if policy is None:
        listed = "; ".join(str(problem) for problem in problems)
        raise Unavailable(f"the policy {path} is invalid (GUARD_POLICY_FILE): {listed}")
    return policy


class PolicySource:
    """Loads the policy file, reloading it when it changes on disk.

    What a parse gave, a policy or the :class:`Unavailable` naming the file's problems, is kept
    until the file's stat changes (inode, size, modification and change times): a broken file
    then costs one ``stat`` per request, not a parse (a large broken file took seconds each),
    and stays broken, denying ``unavailable``, until it is replaced or rewritten.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int, int, int], Policy | Unavailable] | None = None

    def current(self) -> Policy:
        with self._lock:
            try:
                stat = self.path.stat()
            except OSError as exc:
                raise Unavailable(
                    f"the policy {self.path} cannot be read (GUARD_POLICY_FILE): {exc}"
                ) from exc
            # The inode catches a file swapped in by rename; ctime a rewrite within the
            # modification time's granularity that kept the size.
            stamp = (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
            if self._cached is None or self._cached[0] != stamp:
                try:
                    loaded: Policy | Unavailable = load_policy(self.path)
                except Unavailable as exc:
                    loaded = exc
                self._cached = (stamp, loaded)
            outcome = self._cached[1]
        if isinstance(outcome, Unavailable):
            raise Unavailable(outcome.message)
        return outcome
