"""Likeness Guard: consent and public-figure checks, identity-preserving edits and provenance
for AI image editing of real people.

    >>> from guard import Guard, EditRequest, CheckRequest
    >>> guard = Guard()  # settings from GUARD_* variables or guard.toml       # doctest: +SKIP
    >>> decision = guard.check(CheckRequest(requester="acme/app", operation="relight",
    ...                                     image=open("photo.jpg", "rb").read()))  # doctest: +SKIP
    >>> decision.verdict, decision.reason_codes                                 # doctest: +SKIP
    (<Verdict.DENY: 'deny'>, ('public_figure',))
"""

from __future__ import annotations

from guard.config import Settings
from guard.errors import (
    ConfigurationError,
    Conflict,
    GuardError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    PolicyDenied,
    Unavailable,
    UndecodableImage,
    UnsupportedMedia,
)
from guard.pipeline import (
    CheckRequest,
    DecisionEvent,
    DecisionSink,
    EditRequest,
    Guard,
    Result,
    StageObserver,
    StampRequest,
)
from guard.policy import Decision, FaceDecision, Reason, ReasonCode, Verdict
from guard.provenance import Outcome, StampedImage, VerificationReport

__version__ = "0.1.0"

__all__ = [
    "CheckRequest",
    "ConfigurationError",
    "Conflict",
    "Decision",
    "DecisionEvent",
    "DecisionSink",
    "EditRequest",
    "FaceDecision",
    "Guard",
    "GuardError",
    "InvalidInput",
    "NotFound",
    "Outcome",
    "PayloadTooLarge",
    "PolicyDenied",
    "Reason",
    "ReasonCode",
    "Result",
    "Settings",
    "StageObserver",
    "StampRequest",
    "StampedImage",
    "Unavailable",
    "UndecodableImage",
    "UnsupportedMedia",
    "Verdict",
    "VerificationReport",
    "__version__",
]
