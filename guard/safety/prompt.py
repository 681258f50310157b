"""Prompt screening: which public figures (or enrolled subjects) a prompt names, however it
disguises them.

A prompt is compared with every name and alias at successive levels of normalisation; the
first level at which a name appears is the **rule** that fired, reported with the span of the
original prompt it covers:

- ``exact``: case, punctuation, NFKC compatibility forms, spacing ("TOM-HANKS", full width);
- ``invisible``: zero-width, bidi-control and other format characters ("T\\u200bom Hanks");
- ``confusable``: diacritics and look-alike letters of other scripts, from Unicode's TR39
  confusables data ("Тоm Наnks" in Cyrillic, "Tŏm Hänks");
- ``transliteration``: names written in another script (``anyascii``);
- ``leetspeak``: digits and symbols for letters ("t0m h4nk5", "h@nks");
- ``separator``: letters spread out ("t.o.m h.a.n.k.s", "T O M H A N K S");
- ``fuzzy``: a bounded number of typos, by Levenshtein distance ("Tom Hankss", "Thom Hanks").

Names must match whole words ("tomhanksville" is not Tom Hanks). Every level but ``fuzzy`` is an
Aho–Corasick automaton (``pyahocorasick``) over the names folded the same way, so the cost per
prompt grows with the prompt, not with the number of names; ``fuzzy`` compares the prompt's
word windows with names of as many words using ``rapidfuzz`` (C++), only for names long enough
that one typo cannot turn an ordinary phrase into them. Transliteration is lossy (``Том Хэнкс``
becomes ``tom khenks``): ``fuzzy`` catches some of those, the red-team benchmark measures the
rest.
"""

from __future__ import annotations

import json
import threading
import unicodedata
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Protocol

import ahocorasick
import numpy as np
from anyascii import anyascii
from rapidfuzz.distance import Levenshtein
from rapidfuzz.process import cdist

RULES = ("exact", "invisible", "confusable", "transliteration", "leetspeak", "separator")
FUZZY = "fuzzy"
# Digits and symbols read as letters. Both sides are folded, so letters that leetspeak confuses
# with each other (l and i) fold together too.
_LEET = str.maketrans(
    {
        "0": "o",
        "1": "i",
        "!": "i",
        "|": "i",
        "l": "i",
        "3": "e",
        "4": "a",
        "@": "a",
        "5": "s",
        "$": "s",
        "7": "t",
        "+": "t",
        "8": "b",
        "9": "g",
        "6": "g",
        "2": "z",
    }
)
# Fuzzy matching only for names this long, with this many edits.
_FUZZY_MIN_LENGTH = 7
_FUZZY_LONG = 12


@lru_cache(maxsize=1)
def _confusable_skeleton() -> dict[str, str]:
    """Character -> the ASCII letter or digit it is confusable with (Unicode confusables.txt,
    as shipped by ``confusable_homoglyphs``)."""
    data = json.loads(
        resources.files("confusable_homoglyphs").joinpath("confusables.json").read_text()
    )
    skeleton = {}
    for char, lookalikes in data.items():
        ascii_forms = [
            entry["c"] for entry in lookalikes if entry["c"].isascii() and entry["c"].isalnum()
        ]
        if ascii_forms and not (char.isascii() and char.isalnum()):
            skeleton[char] = ascii_forms[0].lower()
    return skeleton


@dataclass(frozen=True)
class _Folded:
    """A folded text: its characters, and for each the index of the original character."""

    text: str
    origins: tuple[int, ...]


Steps = frozenset[str]


def _fold(prompt: str, steps: Steps) -> _Folded:
    """Fold ``prompt`` with the given normalisation ``steps`` (names from :data:`RULES`; the
    ``exact`` folding always applies): lowercase alphanumeric words separated by single
    spaces, each character remembering where it came from."""
    chars: list[str] = []
    origins: list[int] = []
    # With both steps on, look-alike letters are undone in words that mix Latin with another
    # script (a disguise) and whole words of another script are transliterated (a spelling):
    # skeleton-mapping "Путин" would turn it into Latin look-alikes, not into "Putin".
    mixed = _mixed_script_positions(prompt) if "transliteration" in steps else None
    for index, char in enumerate(prompt):
        if "invisible" in steps and not char.isascii() and unicodedata.category(char) == "Cf":
            continue
        look_alikes = "confusable" in steps and (mixed is None or index in mixed)
        for out in _fold_char(char, steps, look_alikes=look_alikes):
            chars.append(out if out.isalnum() else " ")
            origins.append(index)
    return _squeeze("".join(chars), origins, merge_letters="separator" in steps)


def _mixed_script_positions(prompt: str) -> set[int]:
    """Positions of the characters of words that hold both ASCII and non-ASCII letters."""
    positions: set[int] = set()
    word: list[int] = []
    for index, char in enumerate([*prompt, " "]):
        if char.isalnum() or unicodedata.combining(char) or unicodedata.category(char) == "Cf":
            word.append(index)
            continue
        letters = [prompt[i] for i in word if prompt[i].isalpha()]
        if any(c.isascii() for c in letters) and any(not c.isascii() for c in letters):
            positions.update(word)
        word = []
    return positions


def _fold_char(char: str, steps: Steps, *, look_alikes: bool) -> str:
    """One original character, folded: possibly several characters, or none."""
    leet = "leetspeak" in steps
    if char.isascii():  # the common case: no normalisation form, mark or look-alike applies
        return char.lower().translate(_LEET) if leet else char.lower()
    if "confusable" in steps:
        skeleton = _confusable_skeleton() if look_alikes else {}
        pieces = [
            skeleton.get(piece, piece)
            for piece in unicodedata.normalize("NFKD", char)
            if not unicodedata.combining(piece)
        ]
    else:
        pieces = [unicodedata.normalize("NFKC", char)]
    transliterate = "transliteration" in steps
    folded = "".join(
        anyascii(piece) if transliterate and not piece.isascii() else piece for piece in pieces
    ).casefold()
    return folded.translate(_LEET) if leet else folded


def _squeeze(text: str, origins: Sequence[int], *, merge_letters: bool) -> _Folded:
    """Collapse separator runs to one space; with ``merge_letters``, join runs of one-letter
    words ("t o m hanks" -> "tom hanks", "t.o.m.h.a.n.k.s" -> "tomhanks")."""
    words: list[tuple[str, list[int]]] = []
    previous_single = False
    for raw in _words(text):
        word, where = text[raw[0] : raw[1]], list(origins[raw[0] : raw[1]])
        single = len(word) == 1
        if merge_letters and single and previous_single:
            words[-1] = (words[-1][0] + word, words[-1][1] + where)
        else:
            words.append((word, where))
        previous_single = single
    out_text: list[str] = []
    out_origins: list[int] = []
    for word, where in words:
        if out_text:
            out_text.append(" ")
            out_origins.append(where[0])
        out_text.append(word)
        out_origins.extend(where)
    return _Folded("".join(out_text), tuple(out_origins))


def _words(text: str) -> list[tuple[int, int]]:
    """(start, end) of each run of non-space characters."""
    spans = []
    start = None
    for position, char in enumerate(text + " "):
        if char != " " and start is None:
            start = position
        elif char == " " and start is not None:
            spans.append((start, position))
            start = None
    return spans


@dataclass(frozen=True)
class PromptMatch:
    """A figure (or subject) named in a prompt: by which name or alias, how it was disguised
    (``rule``) and where (``span``: start and end offsets in the original prompt; ``text`` is
    that slice)."""

    identity_id: str
    label: str
    rule: str
    span: tuple[int, int]
    text: str

    def evidence(self) -> dict[str, str]:
        """How the prompt named someone, for a decision's evidence."""
        return {
            "rule": self.rule,
            "span": f"{self.span[0]}:{self.span[1]}",
            "matched": self.text[:200],
        }


Owners = list[tuple[str, str]]


class Named(Protocol):
    """Anything with an id and names to screen for: a :class:`~guard.identity.PublicFigure`,
    or a :class:`NamedIdentity`."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def aliases(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class NamedIdentity:
    """An id with a name and aliases (e.g. an enrolled subject and its display name)."""

    id: str
    name: str
    aliases: tuple[str, ...] = ()


class PromptScreen:
    """The names and aliases of a set of figures, compiled for screening prompts.

    Build one per blocklist generation and reuse it (compiling 10,000 names takes a while;
    screening a prompt does not)."""

    def __init__(self, figures: Iterable[Named], *, rules: Sequence[str] = (*RULES, FUZZY)) -> None:
        unknown = set(rules) - {*RULES, FUZZY}
        if unknown:
            raise ValueError(f"unknown screening rules {sorted(unknown)}; choose from {RULES}")
        # A rule left out is left out of every level: the red-team benchmark's ablations.
        self.rules = tuple(rules)
        enabled = [rule for rule in RULES if rule in self.rules]
        # Each enabled rule screens with its own step and every enabled step before it.
        self._levels: list[tuple[str, Steps]] = [
            (rule, frozenset(enabled[: position + 1])) for position, rule in enumerate(enabled)
        ]
        self._all_steps: Steps = frozenset(enabled)
        self._labels: list[tuple[str, str]] = [
            (figure.id, label)
            for figure in sorted(figures, key=lambda f: f.id)
            for label in dict.fromkeys((figure.name, *figure.aliases))
            if label.strip()
        ]
        self._automata = [self._automaton(steps) for _, steps in self._levels]
        self._fuzzy: dict[tuple[int, int], tuple[list[str], list[Owners]]] = {}
        for form, owners in self._forms(self._all_steps).items():
            if len(form) >= _FUZZY_MIN_LENGTH:
                names, owner_lists = self._fuzzy.setdefault(
                    (form.count(" ") + 1, len(form)), ([], [])
                )
                names.append(form)
                owner_lists.append(owners)

    def _forms(self, steps: Steps) -> dict[str, Owners]:
        forms: dict[str, Owners] = {}
        for figure_id, label in self._labels:
            folded = _fold(label, steps).text
            # Spread-out letters merge into one word: "t.o.m.h.a.n.k.s" is "tomhanks".
            variants = {folded, folded.replace(" ", "")} if "separator" in steps else {folded}
            for form in variants - {""}:
                forms.setdefault(form, []).append((figure_id, label))
        return forms

    def _automaton(self, steps: Steps) -> ahocorasick.Automaton | None:
        forms = self._forms(steps)
        if not forms:
            return None
        automaton = ahocorasick.Automaton()
        for form, owners in forms.items():
            automaton.add_word(form, (form, owners))
        automaton.make_automaton()
        return automaton

    def screen(self, prompt: str) -> list[PromptMatch]:
        """Every figure the prompt names, each once (at the first rule that finds it), in
        figure-id order."""
        found: dict[str, PromptMatch] = {}
        for (rule, steps), automaton in zip(self._levels, self._automata, strict=True):
            folded = _fold(prompt, steps)
            if automaton is None or not folded.text:
                continue
            haystack = folded.text
            for end, (form, owners) in automaton.iter(haystack):
                start = end - len(form) + 1
                if start > 0 and haystack[start - 1] != " ":
                    continue
                if end + 1 < len(haystack) and haystack[end + 1] != " ":
                    continue
                self._found(found, owners, rule, folded, prompt, start, end + 1)
        if FUZZY in self.rules:
            self._fuzzy_matches(found, _fold(prompt, self._all_steps), prompt)
        return sorted(found.values(), key=lambda match: match.identity_id)

    @staticmethod
    def _found(
        found: dict[str, PromptMatch],
        owners: Owners,
        rule: str,
        folded: _Folded,
        prompt: str,
        start: int,
        end: int,
    ) -> None:
        first, last = folded.origins[start], folded.origins[end - 1] + 1
        for identity_id, label in owners:
            if identity_id not in found:
                found[identity_id] = PromptMatch(
                    identity_id, label, rule, (first, last), prompt[first:last]
                )

    def _fuzzy_matches(self, found: dict[str, PromptMatch], folded: _Folded, prompt: str) -> None:
        """Word windows of the most-folded prompt within a few edits of a long-enough name:
        windows are grouped by word count and length, and each group is compared in one
        ``cdist`` call with the names of as many words and nearly the same length."""
        if not self._fuzzy or not folded.text:
            return
        words = _words(folded.text)
        windows: dict[tuple[int, int], list[tuple[int, int]]] = {}
        for count in sorted({count for count, _ in self._fuzzy}):
            for first in range(len(words) - count + 1):
                start, end = words[first][0], words[first + count - 1][1]
                windows.setdefault((count, end - start), []).append((start, end))
        for (count, length), spans in windows.items():
            texts = [folded.text[start:end] for start, end in spans]
            for name_length in range(length - 2, length + 3):
                bucket = self._fuzzy.get((count, name_length))
                if bucket is None:
                    continue
                names, owner_lists = bucket
                distances = cdist(texts, names, scorer=Levenshtein.distance, score_cutoff=2)
                for row, column in np.argwhere(distances <= 2):
                    allowed = 2 if len(names[column]) >= _FUZZY_LONG else 1
                    if distances[row, column] <= allowed:
                        start, end = spans[row]
                        self._found(found, owner_lists[column], FUZZY, folded, prompt, start, end)


def normalise_text(text: str) -> str:
    """The ``exact`` folding: NFKC, case-folded, words separated by single spaces."""
    return _fold(text, frozenset()).text


def figures_named_in(prompt: str, figures: Iterable[Named]) -> tuple[str, ...]:
    """Ids of the figures whose name or an alias appears in ``prompt``, in figure-id order
    (compiles the names each call: for repeated use keep a :class:`PromptScreen`)."""
    return tuple(match.identity_id for match in PromptScreen(figures).screen(prompt))


class PromptScreens:
    """The compiled screens a gate keeps between requests: the blocklist's names (recompiled
    when the blocklist changes) and, per tenant, its enrolled subjects' display names
    (recompiled when they change; at most ``max_tenants`` kept, then all are dropped).

    Only the requester's own tenant's names are screened: screening every tenant's would let a
    prompt probe which names other tenants enrolled."""

    def __init__(self, max_tenants: int = 256) -> None:
        self._max_tenants = max_tenants
        self._lock = threading.Lock()
        self._figures: tuple[Hashable, PromptScreen] | None = None
        self._subjects: dict[str, tuple[tuple[tuple[str, str], ...], PromptScreen]] = {}

    def figures(
        self, prompt: str, version: Hashable, figures: Iterable[Named]
    ) -> list[PromptMatch]:
        """The figures ``prompt`` names; ``version`` says when ``figures`` changed."""
        with self._lock:
            cached = self._figures
            if cached is None or cached[0] != version:
                cached = (version, PromptScreen(figures))
                self._figures = cached
        return cached[1].screen(prompt)

    def subjects(
        self, prompt: str, tenant: str, names: Callable[[str], Sequence[tuple[str, str]]]
    ) -> list[PromptMatch]:
        """The subjects of ``tenant`` that ``prompt`` names; ``names(tenant)`` lists their
        ``(subject_id, display_name)`` (asked only when the prompt has words)."""
        if not prompt.strip():
            return []
        current = tuple(names(tenant))
        if not current:
            return []
        with self._lock:
            cached = self._subjects.get(tenant)
            if cached is None or cached[0] != current:
                if len(self._subjects) >= self._max_tenants:
                    self._subjects.clear()
                cached = (current, PromptScreen(NamedIdentity(i, name) for i, name in current))
                self._subjects[tenant] = cached
        return cached[1].screen(prompt)
