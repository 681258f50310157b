"""Likeness Guard: consent and public-figure checks, identity-preserving edits and provenance
for AI image editing of real people.

    >>> from guard import Guard, CheckRequest
    >>> guard = Guard()  # settings from GUARD_* variables or guard.toml       # doctest: +SKIP
    >>> decision = guard.check(CheckRequest(requester="acme/app", operation="relight",
    ...                                     image=open("photo.jpg", "rb").read()))  # doctest: +SKIP
    >>> decision.verdict, decision.reason_codes                                 # doctest: +SKIP
    (<Verdict.DENY: 'deny'>, ('public_figure',))

This module is the public surface: the guard and its flows' requests and results, decisions,
receipts, verification reports, the protocols a stage plugs in through, and the errors. The
services a guard composes (``guard.registry``, ``guard.blocklists``, ``guard.policies``,
``guard.audit``, ``guard.provenance``) are documented on :class:`Guard`.
"""

from __future__ import annotations

from guard._version import __version__
from guard.audit import Receipt
from guard.config import Settings
from guard.editors import Editor
from guard.errors import (
    ConfigurationError,
    Conflict,
    EditTimedOut,
    GuardError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Unavailable,
    UndecodableImage,
    UnsupportedMedia,
)
from guard.faces import Face, FaceEngine
from guard.pipeline import Guard
from guard.policy import Decision, FaceDecision, Reason, ReasonCode, Verdict
from guard.provenance import StampedImage, VerificationOutcome, VerificationReport
from guard.requests import (
    CheckRequest,
    DecisionEvent,
    DecisionSink,
    EditRequest,
    Result,
    StageObserver,
    StampRequest,
)

__all__ = [
    "CheckRequest",
    "ConfigurationError",
    "Conflict",
    "Decision",
    "DecisionEvent",
    "DecisionSink",
    "EditRequest",
    "EditTimedOut",
    "Editor",
    "Face",
    "FaceDecision",
    "FaceEngine",
    "Guard",
    "GuardError",
    "InvalidInput",
    "NotFound",
    "PayloadTooLarge",
    "Reason",
    "ReasonCode",
    "Receipt",
    "Result",
    "Settings",
    "StageObserver",
    "StampRequest",
    "StampedImage",
    "Unavailable",
    "UndecodableImage",
    "UnsupportedMedia",
    "Verdict",
    "VerificationOutcome",
    "VerificationReport",
    "__version__",
]
