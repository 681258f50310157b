"""Prompt screening finds blocklisted names however they are spelled or spaced."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from guard.identity import PublicFigure
from guard.safety import figures_named_in

HANKS = PublicFigure("tom-hanks", "Tom Hanks", ("Thomas Jeffrey Hanks",), (1,))
COLLINS = PublicFigure("eileen-collins", "Eileen Collins", (), (2,))


def test_names_and_aliases_are_found() -> None:
    assert figures_named_in("Put TOM-HANKS on a beach", [HANKS, COLLINS]) == ("tom-hanks",)
    assert figures_named_in("thomas   jeffrey hanks, smiling", [HANKS]) == ("tom-hanks",)
    assert figures_named_in("Ｔｏｍ Ｈａｎｋｓ", [HANKS]) == ("tom-hanks",)  # full-width letters
    assert figures_named_in("tom hanks and eileen collins", [COLLINS, HANKS]) == (
        "eileen-collins",
        "tom-hanks",
    )


def test_substrings_of_words_do_not_match() -> None:
    assert figures_named_in("tomhanksville at dusk", [HANKS]) == ()
    assert figures_named_in("", [HANKS]) == ()


@given(
    st.text(alphabet=st.characters(blacklist_categories=("L", "N")), max_size=5),
    st.text(alphabet=st.characters(blacklist_categories=("L", "N")), max_size=5),
)
def test_any_punctuation_around_the_name_still_matches(before: str, after: str) -> None:
    assert figures_named_in(f"{before} tom hanks {after}", [HANKS]) == ("tom-hanks",)
