"""Prompt screening finds blocklisted names however they are spelled or spaced."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guard.identity import PublicFigure
from guard.safety import PromptScreen, figures_named_in

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


# Each manipulation family: found with only the exact folding plus its own step, missed by
# the exact folding alone, and reported under its own rule by the full screen.
PUTIN = PublicFigure("vladimir-putin", "Vladimir Putin", (), (3,))
FAMILIES = {
    "invisible": ["T\u200bom Hanks", "Tom Ha\u200dnks", "T\u2066om Ha\u202enks"],
    "confusable": ["Тоm Наnks", "Tŏm Hänks", "ｔｏｍ ｈǎｎｋｓ"],
    "transliteration": ["Владимир Путин в парке"],
    "leetspeak": ["t0m h4nk5", "T0M H@NK$", "7om hank5"],
    "separator": ["t.o.m h.a.n.k.s", "T O M  H A N K S", "t-o-m-h-a-n-k-s"],
    "fuzzy": ["Tom Hankss", "Thom Hanks", "a photo of Tom Hankz"],
}
FIGURES = [HANKS, COLLINS, PUTIN]


def test_each_family_needs_its_own_step() -> None:
    exact_only = PromptScreen(FIGURES, rules=("exact",))
    full = PromptScreen(FIGURES)
    for family, prompts in FAMILIES.items():
        with_step = PromptScreen(FIGURES, rules=("exact", family))
        for prompt in prompts:
            assert exact_only.screen(prompt) == [], (family, prompt)
            assert [m.rule for m in with_step.screen(prompt)] == [family], (family, prompt)
            assert [m.rule for m in full.screen(prompt)] == [family], (family, prompt)


def test_the_match_names_the_span_of_the_original_prompt() -> None:
    prompt = "Please draw t0m h4nk5 at the beach"
    [match] = PromptScreen(FIGURES).screen(prompt)
    assert (match.identity_id, match.label, match.rule) == ("tom-hanks", "Tom Hanks", "leetspeak")
    assert prompt[match.span[0] : match.span[1]] == match.text == "t0m h4nk5"


def test_ordinary_words_are_not_names() -> None:
    screen = PromptScreen(FIGURES)
    for prompt in [
        "tomhanksville at dusk",
        "a custom hat for hank",
        "thomas jefferson's house",
        "vladivostok harbour",
        "Eileen's collie",
        "",
    ]:
        assert screen.screen(prompt) == [], prompt


def test_unknown_rules_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown screening rules"):
        PromptScreen(FIGURES, rules=("exact", "soundex"))


@given(st.text(max_size=300))
def test_any_text_screens_without_error_and_spans_stay_inside(prompt: str) -> None:
    for match in PromptScreen(FIGURES).screen(prompt):
        assert 0 <= match.span[0] < match.span[1] <= len(prompt)
        assert match.text == prompt[match.span[0] : match.span[1]]


@given(
    st.lists(
        st.sampled_from(["\u200b", "\u200c", "\u200d", "\u2060", "\u202e", "\u2066"]),
        min_size=1,
        max_size=4,
    ),
    st.integers(1, 8),
)
def test_format_characters_anywhere_in_a_name_are_undone(marks: list[str], where: int) -> None:
    name = "tom hanks"
    disguised = name[:where] + "".join(marks) + name[where:]
    assert [m.identity_id for m in PromptScreen(FIGURES).screen(disguised)] == ["tom-hanks"]


def test_long_and_odd_prompts_do_not_break() -> None:
    screen = PromptScreen(FIGURES)
    combining = "e\u0301" * 2000 + " tom hanks"
    emoji = "👩🏽\u200d🚀 " * 500 + "Tom Hanks"
    rtl = "\u202eskn\u0430H moT\u202c"  # reversed text: not a disguise this screen undoes
    assert [m.identity_id for m in screen.screen(combining)] == ["tom-hanks"]
    assert [m.identity_id for m in screen.screen(emoji)] == ["tom-hanks"]
    assert screen.screen(rtl) == []
    assert screen.screen("x " * 10_000) == []
    assert screen.screen("word " * 2_000 + "Tom Hanks")[0].identity_id == "tom-hanks"
