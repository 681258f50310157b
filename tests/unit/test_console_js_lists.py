"""The console's in-browser checks keep their own copies of what they check (the server must not
choose it), so each copy is tied here to the Python it mirrors: the members a page's rows carry
and the words a page prints beside a raw code. A change on one side alone fails this test
instead of making every "Verify" on the console answer "Not verified" (or check too little)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import guard.api  # noqa: F401  (guard.web imports guard.api's app: load it first)
from guard.policy.decision import Verdict
from guard.web.console import decision, subjects
from guard.web.wording import verdict_words

STATIC = Path(decision.__file__).parents[1] / "static" / "console"
_STRING = r"'((?:[^'\\]|\\.)*)'"


def _source(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def js_array(source: str, name: str) -> tuple[str, ...]:
    """The strings of ``const NAME = ['a', 'b'];`` (single-quoted literals only)."""
    found = re.search(rf"^const {name} = \[([^\]]*)\];", source, re.MULTILINE)
    assert found is not None, f"no const {name} array"
    items = [item.strip() for item in found.group(1).split(",") if item.strip()]
    assert all(re.fullmatch(_STRING, item) for item in items), items
    return tuple(item[1:-1] for item in items)


def js_map(source: str, name: str) -> dict[str, str]:
    """The members of ``const NAME = {\\n  key: 'words',\\n};``, one a line."""
    found = re.search(rf"^(?:export )?const {name} = \{{\n(.*?)^\}};", source, re.M | re.S)
    assert found is not None, f"no const {name} object"
    members: dict[str, str] = {}
    for line in found.group(1).splitlines():
        member = re.fullmatch(rf"  ([a-z_]+): {_STRING},", line)
        assert member is not None, f"{name}: unreadable line {line!r}"
        members[member.group(1)] = member.group(2)
    return members


def js_string(source: str, name: str) -> str:
    """The string of ``const NAME = 'words';`` (a single-quoted literal)."""
    found = re.search(rf"^const {name} = {_STRING};$", source, re.MULTILINE)
    assert found is not None, f"no const {name} string"
    return found.group(1)


@pytest.mark.parametrize(
    ("script", "name", "python"),
    [
        ("verify_all.js", "SUBJECT_ROW", subjects.SUBJECT_ROW),
        ("verify_all.js", "ERASURE_ROW", subjects.ERASURE_ROW),
        ("verify_all.js", "ACT_SHOWN", subjects.ACT_SHOWN),
        ("verify_all.js", "ERASURE_KINDS", subjects.ERASURE_KINDS),
        ("decision.js", "RELEASE_SHOWN", decision.RELEASE_SHOWN),
    ],
)
def test_member_lists_match(script: str, name: str, python: tuple[str, ...]) -> None:
    assert js_array(_source(script), name) == python


def test_words_match() -> None:
    source = _source("decision.js")
    assert js_map(source, "REASON_WORDS") == decision.REASON_WORDS
    assert js_map(source, "KIND_WORDS") == decision.KIND_WORDS
    assert js_map(source, "STAGE_WORDS") == decision.STAGE_WORDS
    assert js_string(source, "NOT_RECORDED") == decision.NOT_RECORDED
    assert js_string(source, "NO_FACES") == decision.NO_FACES
    verdicts = {v.value: verdict_words(v.value) for v in Verdict}
    assert js_map(_source("checking.js"), "VERDICT_WORDS") == verdicts


def test_the_reader_sees_a_difference() -> None:
    # The regexes must read what they claim, or the tests above prove nothing.
    assert js_array("const X = ['a', 'b'];\n", "X") == ("a", "b")
    assert js_array("const X = ['a',\n  'c'];\n", "X") == ("a", "c")
    assert js_map("const Y = {\n  a_b: 'x y',\n};\n", "Y") == {"a_b": "x y"}
    assert js_string("const Z = 'it\\'s';\n", "Z") == "it\\'s"
    with pytest.raises(AssertionError):
        js_array("const X = ['a', b];\n", "X")
