"""Prompt screening: which blocklisted public figures a prompt names.

Names and aliases are compared after Unicode NFKC folding, case folding and collapsing every
run of non-alphanumeric characters to one space, on whole-word boundaries ("Tom Hanks",
"TOM-HANKS" and "tom   hanks" all match; "tomhanksville" does not).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

from guard.identity import PublicFigure

_NON_ALNUM = re.compile(r"[\W_]+", re.UNICODE)


def normalise_text(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(_NON_ALNUM.sub(" ", folded).split())


def figures_named_in(prompt: str, figures: Iterable[PublicFigure]) -> tuple[str, ...]:
    """Ids of the figures whose name or an alias appears in ``prompt``, in figure-id order."""
    haystack = f" {normalise_text(prompt)} "
    if not haystack.strip():
        return ()
    named = []
    for figure in sorted(figures, key=lambda f: f.id):
        for label in (figure.name, *figure.aliases):
            needle = normalise_text(label)
            if needle and f" {needle} " in haystack:
                named.append(figure.id)
                break
    return tuple(named)
