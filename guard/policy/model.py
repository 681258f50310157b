"""The policy document: a versioned YAML file validated by pydantic.

    >>> policy = load_policy(Path("guard/policy/default.yaml"))  # doctest: +SKIP
    >>> policy.id, policy.version                                 # doctest: +SKIP
    ('default', '2026-11-23.1')

A policy that cannot be read or validated raises :class:`~guard.errors.Unavailable`; the pipeline
turns that into a ``deny`` with reason ``unavailable`` (fail closed).
"""

from __future__ import annotations

import threading
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


def load_policy(path: Path) -> Policy:
    """Read and validate a policy file, or raise :class:`Unavailable` naming the problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise Unavailable(f"the policy {path} cannot be read (GUARD_POLICY_FILE): {exc}") from exc
    if not isinstance(raw, dict):
        raise Unavailable(f"the policy {path} is not a YAML mapping (GUARD_POLICY_FILE)")
    try:
        return Policy.model_validate(raw)
    except ValidationError as exc:
        raise Unavailable(f"the policy {path} is invalid (GUARD_POLICY_FILE): {exc}") from exc


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
