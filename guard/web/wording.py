"""Plain words for what a person is asked to allow and what the guard decided."""

from __future__ import annotations

_OPERATIONS = {
    "relight": "change the lighting of photos of you",
    "background_blur": "blur the background behind you in photos",
    "color_grade": "change the colours of photos of you",
    "sketch": "turn photos of you into a drawing",
    "prompt_edit": "edit photos of you as a written instruction describes",
    "generate": "make new pictures that show you",
}
_VERDICTS = {
    "allow": "allowed",
    "allow_with_conditions": "allowed, with conditions",
    "deny": "refused",
}


def operation_words(operation: str) -> str:
    """``relight`` → "change the lighting of photos of you"; unknown names stay visible."""
    return _OPERATIONS.get(operation, f"use photos of you for “{operation}”")


def verdict_words(verdict: str) -> str:
    return _VERDICTS.get(verdict, verdict)
