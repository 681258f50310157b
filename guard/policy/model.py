"""The policy document: a versioned YAML file validated by pydantic.

    >>> policy = load_policy(Path("guard/policy/default.yaml"))  # doctest: +SKIP
    >>> policy.id, policy.version                                 # doctest: +SKIP
    ('default', '2026-11-23.1')

A policy that cannot be read or validated raises :class:`~guard.errors.Unavailable`; the pipeline
turns that into a ``deny`` with reason ``unavailable`` (fail closed).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from guard.errors import Unavailable


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PublicFigureRules(_Strict):
    # A public figure who enrolled as a subject (linked by public_figure_id) and granted this
    # requester the operation may be edited; every other match is denied.
    allow_with_own_consent: bool = True


class OutputRules(_Strict):
    deny_identity_drift: bool = True
    deny_public_figures: bool = True
    deny_unconsented_faces: bool = True


class NsfwRules(_Strict):
    # Sexual content showing any real person's face is denied, consented or not: no consent
    # scope covers it unless a policy sets this to false.
    deny_real_person: bool = True
    threshold: float = Field(default=0.5, gt=0.0, le=1.0)


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
    id: str = Field(min_length=1)
    version: str = Field(min_length=1)
    description: str = ""
    operations: tuple[str, ...] = Field(
        min_length=1, description="Operations this policy permits at all."
    )
    unknown_faces: Literal["deny", "allow"] = "deny"
    public_figures: PublicFigureRules = PublicFigureRules()
    prompt_public_figures: Literal["deny", "allow"] = "deny"
    output: OutputRules = OutputRules()
    nsfw: NsfwRules = NsfwRules()
    conditions: tuple[str, ...] = ("watermark_required",)
    monitoring: MonitoringRules = MonitoringRules()


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
        return None, [
            PolicyProblem(
                _line_of(tree, tuple(error["loc"])),
                ".".join(str(part) for part in error["loc"]),
                error["msg"],
            )
            for error in exc.errors()
        ]


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
    """Loads the policy file, reloading it when it changes on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._cached: tuple[tuple[int, int], Policy] | None = None

    def current(self) -> Policy:
        with self._lock:
            try:
                stat = self.path.stat()
            except OSError as exc:
                raise Unavailable(
                    f"the policy {self.path} cannot be read (GUARD_POLICY_FILE): {exc}"
                ) from exc
            stamp = (stat.st_mtime_ns, stat.st_size)
            if self._cached is None or self._cached[0] != stamp:
                self._cached = (stamp, load_policy(self.path))
            return self._cached[1]
