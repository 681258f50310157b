"""Edit parameters and request text are checked before anything is decided: what each spec
takes, what the editors refuse (422 ``invalid_params``, naming the parameter and what it takes),
the request-wide checks (output format, generator names) and JSON bodies that are not text
(422 ``invalid_text``). The whole flow, nothing audited, is in
tests/e2e/test_validate_before_deciding.py.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from guard.api.json_text import JsonTextCheck, lone_surrogate_in, refusal
from guard.config import Settings
from guard.editors import ClassicEditor
from guard.editors.classic import SPECS as CLASSIC_SPECS
from guard.editors.diffusion import PIPELINES, RunSettings
from guard.editors.params import Choice, Flag, Number, ParamSpec, check_params
from guard.errors import InvalidInput, UnprocessableInput
from guard.request_checks import (
    check_name,
    check_output_format,
    check_param_values,
)

EDITOR = ClassicEditor()
SMALL = np.random.default_rng(7).integers(0, 256, (24, 32, 3), dtype=np.uint8)


def _refused(call: Any, code: str = "invalid_params") -> UnprocessableInput:
    with pytest.raises(UnprocessableInput) as caught:
        call()
    assert caught.value.code == code and caught.value.http_status == 422
    # The message must itself be text: a response or a console has to carry it.
    caught.value.message.encode("utf-8")
    return caught.value


# the specs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [5, -0.01, 0, math.nan, math.inf, -math.inf, 1e308, 10**400, True, False, "nan",
     "inf", "1e309", "bright", "", None, [0.05], {"v": 0.05}, "x" * 100],
)  # fmt: skip
def test_a_number_refuses_what_is_not_a_finite_number_in_range(value: object) -> None:
    with pytest.raises(ValueError, match=r"a number in \(0, 0\.1\]"):
        Number(0.0, 0.1, low_open=True).read(value)


@pytest.mark.parametrize(("value", "read"), [(0.05, 0.05), (0.1, 0.1), ("0.05", 0.05), (1, 1.0)])
def test_a_number_takes_numbers_and_their_spellings(value: object, read: float) -> None:
    assert Number(0.0, 1.0, low_open=True).read(value) == read


def test_a_whole_number_takes_no_fraction() -> None:
    steps = Number(1, 500, integer=True)
    assert steps.read(4.0) == 4 and isinstance(steps.read(4.0), int)
    assert steps.read("12") == 12
    for value in (4.5, "4.5", 0, 501, 1e308, True):
        with pytest.raises(ValueError, match=r"a whole number in \[1, 500\]"):
            steps.read(value)
    seed = Number(0, 2**63, high_open=True, integer=True)
    assert seed.read(2**63 - 1) == 2**63 - 1
    with pytest.raises(ValueError, match="9223372036854775808"):
        seed.read(2**63)


def test_choices_and_flags() -> None:
    look = Choice(("warm", "cool"))
    assert look.read("warm") == "warm"
    for value in ("Warm", "", 1, None, "warm\x00"):
        with pytest.raises(ValueError, match="one of warm, cool"):
            look.read(value)
    flag = Flag()
    assert [flag.read(v) for v in (True, 1, 0.0, "Yes", " false ")] == [
        True,
        True,
        False,
        True,
        False,
    ]
    for not_a_flag in (2, 0.5, "maybe", None, math.nan):
        with pytest.raises(ValueError, match="true or false"):
            flag.read(not_a_flag)


def test_unknown_names_are_listed_safely() -> None:
    error = _refused(lambda: check_params("relight", {"\ud800x": 1, "b" * 500: 2}, {}))
    assert "unknown parameter(s)" in error.message and "\\ud800x" in error.message
    assert len(error.message) < 300  # a long name is cut, not echoed whole


# the editors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "params", "named"),
    [
        ("background_blur", {"strength": 5}, "strength must be a number in (0, 0.1]"),
        ("background_blur", {"strength": math.nan}, "strength must be a number in (0, 0.1]"),
        ("background_blur", {"strength": 1e308}, "strength"),
        ("background_blur", {"strength": "\ud800"}, "strength"),
        ("background_blur", {"radius": 3}, "unknown parameter(s) 'radius'"),
        ("relight", {"intensity": True}, "intensity must be a number in (0, 1]"),
        ("relight", {"direction": "sideways"}, "direction must be one of left, right, top"),
        ("relight", {"direction": 3}, "direction"),
        ("color_grade", {"amount": -math.inf}, "amount"),
        ("color_grade", {"look": "sepia"}, "look must be one of warm"),
        ("sketch", {"shade": 0.2}, "shade must be a number in [0, 0.1]"),
    ],
)
def test_the_classic_editor_refuses_before_it_runs(
    operation: str, params: dict[str, Any], named: str
) -> None:
    error = _refused(lambda: EDITOR.validate_params(operation, params))
    assert named in error.message
    # describe (what Guard.edit asks before deciding) and edit refuse the same.
    _refused(lambda: EDITOR.describe(operation, params, ""))
    _refused(lambda: EDITOR.edit(SMALL, [], operation, params))


def test_an_operation_the_editor_lacks_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="no operation 'face_swap'"):
        EDITOR.validate_params("face_swap", {})


def test_the_diffusers_run_settings_are_checked() -> None:
    kind = PIPELINES["FluxKontextPipeline"]
    run = RunSettings.from_params(
        {"seed": 3.0, "steps": "4", "protect_faces": "no"}, Settings(), kind
    )
    assert (run.seed, run.steps, run.protect_faces) == (3, 4, False)
    for params in (
        {"steps": 0},
        {"steps": 2.5},
        {"seed": -1},
        {"seed": 2**63},
        {"guidance": math.nan},
        {"guidance": 1e308},
        {"protect_faces": "maybe"},
        {"strength": 3},
    ):
        _refused(lambda params=params: RunSettings.from_params(params, Settings(), kind))


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()  # NaN, infinities and 1e308 included
    | st.text(max_size=12)
    | st.sampled_from(["\ud800", "0.05", " 1 ", "1e309", "nan", "left", "warm", "true"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=4,
)


def _near_valid(spec: ParamSpec) -> st.SearchStrategy[object]:
    """Values around what ``spec`` takes, so that accepted edits are drawn about as often as
    refused ones (the spec's edges, its spellings, just outside it)."""
    if isinstance(spec, Choice):
        return st.sampled_from([*spec.options, spec.options[0].upper(), "up"])
    assert isinstance(spec, Number)
    return st.floats(min_value=spec.low, max_value=spec.high * 1.2) | st.sampled_from(
        [spec.low, spec.high, str(spec.high / 2), int(spec.high)]
    )


def _known_then_random(operation: str) -> st.SearchStrategy[dict[str, object]]:
    known = st.fixed_dictionaries(
        {},
        optional={
            name: st.one_of(_near_valid(spec), _near_valid(spec), _json_values)
            for name, spec in CLASSIC_SPECS[operation].items()
        },
    )
    extra = st.dictionaries(st.text(min_size=1, max_size=8), _json_values, max_size=2)
    no_extra: st.SearchStrategy[dict[str, object]] = st.just({})
    return st.tuples(known, st.one_of(no_extra, no_extra, extra)).map(
        lambda pair: {**pair[1], **pair[0]}
    )


def _oracle(operation: str, params: dict[str, object]) -> bool:
    """What the README says each classic operation takes, written out independently."""
    ranges = {
        "strength": (0.0, 0.1, True),
        "intensity": (0.0, 1.0, True),
        "amount": (0.0, 1.0, True),
        "shade": (0.0, 0.1, False),
    }
    names = {"direction": ("left", "right", "top", "bottom"),
             "look": ("warm", "cool", "teal_orange", "vintage", "mono")}  # fmt: skip
    for key, value in params.items():
        if key not in CLASSIC_SPECS[operation]:
            return False
        if key in names:
            if value not in names[key]:
                return False
            continue
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            return False
        try:
            number = float(value.strip()) if isinstance(value, str) else float(value)
        except (ValueError, OverflowError):
            return False
        if isinstance(value, str) and len(value) > 64:
            return False
        low, high, open_low = ranges[key]
        if not math.isfinite(number) or not (low < number if open_low else low <= number):
            return False
        if number > high:
            return False
    return True


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), operation=st.sampled_from(sorted(CLASSIC_SPECS)))
def test_any_json_params_are_either_run_or_refused_up_front(
    data: st.DataObject, operation: str
) -> None:
    """Arbitrary JSON for each known name plus random names: the editor either accepts them
    and the edit then runs, or refuses them (422 invalid_params) before running; never
    anything else, and exactly when the README's rules say."""
    params = data.draw(_known_then_random(operation))
    try:
        EDITOR.validate_params(operation, params)  # type: ignore[arg-type]
    except UnprocessableInput as refused:
        assert refused.code == "invalid_params"
        refused.message.encode("utf-8")
        assert not _oracle(operation, params)
        return
    assert _oracle(operation, params)
    assert EDITOR.edit(SMALL, [], operation, params).shape == SMALL.shape  # type: ignore[arg-type]


# request-wide checks -----------------------------------------------------------------------


def test_generator_names_are_one_line_of_text() -> None:
    check_name("acme-diffusion 2 (beta) ✓", "generator", max_chars=200)
    for bad in ("", "   ", "a" * 201, "a\nb", "a\x00", "a\u202eb", "\ud800", "a\u2028b"):
        _refused(lambda bad=bad: check_name(bad, "generator", max_chars=200), "invalid_text")
    _refused(lambda: check_name(7, "generator", max_chars=200), "invalid_text")


def test_output_formats_and_param_values() -> None:
    check_output_format("webp")
    for fmt in ("gif", "PNG", None, "\ud800"):
        _refused(lambda fmt=fmt: check_output_format(fmt))
    check_param_values({"a": 1, "b": 0.5, "c": "x", "d": True})
    for bad in (
        [("a", 1)],
        {"a": math.nan},
        {"a": math.inf},
        {"a": None},
        {"a": [1]},
        {"a": "\ud800"},
        {"a": "x" * 1001},
        {"": 1},
        {"\ud800": 1},
        {"a\n": 1},
        {str(i): i for i in range(33)},
    ):
        _refused(lambda bad=bad: check_param_values(bad))


# JSON bodies must be text -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "content_type", "refused"),
    [
        (b'{"a": "\\ud800"}', "application/json", True),
        (b'{"a": ["x", {"b": "\\uDFFF"}]}', "application/json; charset=utf-8", True),
        (b'{"\\ud800": 1}', "application/problem+json", True),
        (b'{"a": "\\ud83d\\ude00"}', "application/json", False),  # a pair is an emoji
        (b'{"a": "\\\\ud800"}', "application/json", False),  # a backslash, then text
        (b'{"a": "caf\xe9"}', "application/json", True),  # Latin-1, not UTF-8
        (b'{"a": "caf\xc3\xa9"}', "application/json", False),
        (b'{"a": "\\ud800"', "application/json", False),  # not JSON: the route says so
        (b'{"a": "\\ud800"}', "text/plain", False),  # not read as JSON by any route
        (b'{"a": "\\ud800"}', None, True),  # untyped: FastAPI parses it as JSON
        ('{"a": "\\ud800"}'.encode("utf-16"), None, True),
        (b"\xff\xd8\xff\xe0 binary", None, False),
    ],
)
def test_json_bodies_that_are_not_text(
    body: bytes, content_type: str | None, refused: bool
) -> None:
    assert (refusal(body, content_type) is not None) is refused


def test_lone_surrogate_in_json_text() -> None:
    assert lone_surrogate_in('{"p": "a\\udc00"}')
    assert not lone_surrogate_in('{"p": "plain"}')


def _echo_app(skip: tuple[str, ...] = ()) -> TestClient:
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"length": len(await request.body())})

    app = Starlette(routes=[Route("/{path:path}", echo, methods=["POST"])])
    return TestClient(JsonTextCheck(app, skip=skip))


def test_the_middleware_refuses_and_hands_the_rest_on_whole() -> None:
    client = _echo_app(skip=("/v1/ext_authz",))
    bad = b'{"display_name": "\\ud800"}'
    refused = client.post("/v1/subjects", content=bad, headers={"content-type": "application/json"})
    assert refused.status_code == 422 and refused.json()["code"] == "invalid_text"
    assert refused.headers["content-type"] == "application/problem+json"
    good = json.dumps({"display_name": "Zoë 😀", "pad": "x" * 200_000}).encode()
    passed = client.post("/v1/subjects", content=good, headers={"content-type": "application/json"})
    assert passed.status_code == 200 and passed.json() == {"length": len(good)}
    for path, headers in (
        ("/v1/ext_authz/generate", {"content-type": "application/json"}),  # the gateway's
        ("/v1/subjects", {"content-type": "application/json", "content-encoding": "gzip"}),
        ("/v1/edits", {"content-type": "multipart/form-data; boundary=x"}),
    ):
        assert client.post(path, content=bad, headers=headers).status_code == 200
