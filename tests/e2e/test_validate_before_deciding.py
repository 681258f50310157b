"""Everything is validated before anything is decided (issue 17): a malformed edit, check or
stamp is refused (422, or 400 where the API's schema refuses the JSON itself) through the
library, the CLI (exit 2, never 1 = denied) and HTTP, and nothing is audited or stored. The
input here would be allowed (a picture without people), so an edit checked only after its input
gate would have left an allow in the audit log."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import httpx
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select
from typer.testing import CliRunner

from guard import CheckRequest, EditRequest, Guard, StampRequest
from guard.api import Role
from guard.cli import app as cli
from guard.config import Settings
from guard.editors import ClassicEditor
from guard.editors.classic import SPECS
from guard.errors import InvalidInput
from guard.media import encode_image
from guard.provenance.store import ManifestRow
from guard.samples import sample_rgb
from tests.support.guards import GuardFactory
from tests.support.live import LiveFactory, LiveService
from tests.support.registry import EVIDENCE

REQUESTER = "acme/app"
# A picture without people: its input gate allows, so only a check before it refuses.
IMAGE = encode_image(cv2.resize(sample_rgb("coffee"), (96, 64), interpolation=cv2.INTER_AREA))
State = tuple[int, int, int, int]


def _state(guard: Guard) -> State:
    """What a refusal must leave as it was: audit entries, subjects, grants, manifests."""
    with guard.db.transaction() as session:
        manifests = int(session.scalar(select(func.count()).select_from(ManifestRow)) or 0)
    registry = guard.registry
    return guard.audit.size(), len(registry.list_subjects()), len(registry.list_grants()), manifests


# What each malformed edit is refused with (the library's code; HTTP adds schema refusals).
MALFORMED_EDITS: list[tuple[str, dict[str, Any], str]] = [
    ("strength 5", {"operation": "background_blur", "params": {"strength": 5}}, "invalid_params"),
    ("NaN", {"operation": "background_blur", "params": {"strength": math.nan}}, "invalid_params"),
    ("1e308", {"operation": "relight", "params": {"intensity": 1e308}}, "invalid_params"),
    ("infinity", {"operation": "color_grade", "params": {"amount": math.inf}}, "invalid_params"),
    ("unknown key", {"operation": "relight", "params": {"radius": 3}}, "invalid_params"),
    ("a bool for a number", {"operation": "sketch", "params": {"shade": True}}, "invalid_params"),
    ("a number for a name", {"operation": "relight", "params": {"direction": 3}}, "invalid_params"),
    ("text for a number", {"operation": "relight", "params": {"intensity": "x"}}, "invalid_params"),
    ("surrogate in a value", {"operation": "relight", "params": {"direction": "\ud800"}},
     "invalid_params"),
    ("surrogate in the prompt", {"operation": "relight", "prompt": "warm \ud800"}, "invalid_text"),
    ("a bad operation name", {"operation": "Relight Now"}, "invalid_operation"),
]  # fmt: skip


def _edit_request(fields: dict[str, Any], requester: str = REQUESTER) -> EditRequest:
    return EditRequest(
        image=IMAGE,
        requester=requester,
        operation=fields["operation"],
        prompt=fields.get("prompt", ""),
        params=fields.get("params", {}),
        output_format=fields.get("output_format", "png"),
    )


def _refused(guard: Guard, call: Callable[[], object], code: str, what: str = "") -> None:
    before = _state(guard)
    with pytest.raises(InvalidInput) as caught:
        call()
    assert caught.value.code == code, (what, caught.value.message)
    assert _state(guard) == before, f"{what}: refused, yet something was audited or stored"


# the library --------------------------------------------------------------------------------


def test_the_library_refuses_malformed_edits_and_stamps_before_deciding(
    make_guard: GuardFactory,
) -> None:
    guard = make_guard()
    allowed = guard.edit(_edit_request({"operation": "relight", "params": {"intensity": 0.5}}))
    assert allowed.decision.allowed and allowed.image is not None  # the input itself is fine

    for name, fields, code in MALFORMED_EDITS:
        _refused(guard, lambda fields=fields: guard.edit(_edit_request(fields)), code, name)
    edit = {"operation": "relight"}
    _refused(
        guard, lambda: guard.edit(_edit_request(edit, requester="acme/\ud800")), "invalid_text"
    )
    _refused(
        guard, lambda: guard.edit(_edit_request({**edit, "output_format": "gif"})), "invalid_params"
    )
    _refused(
        guard,
        lambda: guard.edit(_edit_request({**edit, "params": {"a": [1]}})),
        "invalid_params",
    )

    def stamp(**fields: Any) -> object:
        values: dict[str, Any] = {"image": IMAGE, "requester": REQUESTER, "generator": "acme-gen"}
        return guard.stamp(StampRequest(**{**values, **fields}))

    for fields, code in (
        ({"generator": "acme\ud800"}, "invalid_text"),
        ({"generator": "acme\ngen"}, "invalid_text"),
        ({"generator": "x" * 201}, "invalid_text"),
        ({"generator": "   "}, "invalid_text"),
        ({"generator_version": "1.0\u202e"}, "invalid_text"),
        ({"output_format": "bmp"}, "invalid_params"),
        ({"prompt": "\udfff"}, "invalid_text"),
        ({"requester": "\ud800/app"}, "invalid_text"),
        ({"source_image": b"not an image"}, "unsupported_media"),
    ):
        _refused(guard, lambda fields=fields: stamp(**fields), code)
    _refused(
        guard,
        lambda: guard.check_with_receipt(
            CheckRequest(requester=REQUESTER, operation="x", prompt="\ud800")
        ),
        "invalid_text",
    )


# the CLI ------------------------------------------------------------------------------------


def test_the_cli_exits_2_for_malformed_input_and_changes_nothing(
    make_guard: GuardFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guard = make_guard()
    monkeypatch.setenv("GUARD_DATA_DIR", str(guard.settings.data_dir))
    monkeypatch.setenv("GUARD_DATABASE_URL", guard.settings.database_url)
    # Each command opens its guard from those settings as `guard` does; only the face engine
    # (its models take seconds to load) is the one already loaded.
    monkeypatch.setattr(
        "guard.cli.decisions.open_guard",
        lambda **overrides: Guard(Settings(**overrides), face_engine=guard.face_engine),
    )
    picture = tmp_path / "coffee.png"
    picture.write_bytes(IMAGE)
    out = tmp_path / "out.png"
    runner = CliRunner()
    edit = ["edit", str(picture), "--out", str(out), "--as", REQUESTER]
    stamp = ["stamp", str(picture), "--out", str(out), "--as", REQUESTER]
    before = _state(guard)
    for args in (
        [*edit, "--op", "background_blur", "--param", "strength=5"],
        [*edit, "--op", "background_blur", "--param", "strength=nan"],
        [*edit, "--op", "relight", "--param", "intensity=1e308"],
        [*edit, "--op", "relight", "--param", "radius=3"],
        [*edit, "--op", "relight", "--param", "direction=3"],
        [*edit, "--op", "relight", "--prompt", "warm \udcff"],  # argv bytes that are not UTF-8
        ["edit", str(picture), "--out", str(out), "--as", "acme/\udcff", "--op", "relight"],
        [*stamp, "--generator", "acme\ngen"],
        [*stamp, "--generator", "acme\udcff"],
        [*stamp, "--generator", "acme", "--generator-version", "x" * 101],
    ):
        result = runner.invoke(cli, args)
        assert result.exit_code == 2, (args, result.output)
        assert not out.exists()
    assert _state(guard) == before
    # The same request, well formed, is allowed: exit 0 and an audited edit.
    result = runner.invoke(cli, [*edit, "--op", "background_blur", "--param", "strength=0.05"])
    assert result.exit_code == 0, result.output
    assert out.exists() and guard.audit.size() > before[0]


# HTTP ---------------------------------------------------------------------------------------


def _form(fields: dict[str, Any]) -> dict[str, str]:
    # json.dumps writes NaN and Infinity (which the API's parser reads) and escapes surrogates.
    return {"params": json.dumps(fields)}


def _image() -> dict[str, tuple[str, bytes, str]]:
    return {"image": ("coffee.png", IMAGE, "image/png")}


def _assert_refused(service: LiveService, response: httpx.Response, codes: set[str]) -> None:
    assert response.status_code in (400, 422), response.text
    body = response.json()
    assert body["code"] in codes, body
    assert response.headers["content-type"] == "application/problem+json"
    assert "decision" not in body and "x-guard-decision-id" not in response.headers


def test_http_refuses_malformed_requests_before_deciding(live: LiveFactory) -> None:
    # More requests than one key's burst (20) go out here, faster than its refill: the rate
    # limit is not under test, so it must not decide which refusal comes back.
    service = live(api_rate_burst=1_000_000)
    guard = service.guard
    with service.client() as api, service.client(role=Role.OPERATOR) as operator:
        ok = api.post("/v1/edits", data=_form({"operation": "sketch"}), files=_image())
        assert ok.status_code == 200, ok.text
        subject = api.post("/v1/subjects", json={"display_name": "Model A"}).json()["id"]
        before = _state(guard)

        for name, fields, code in MALFORMED_EDITS:
            response = api.post("/v1/edits", data=_form(fields), files=_image())
            # A lone surrogate anywhere in the params part is refused as text (422).
            codes = {"invalid_text"} if "surrogate" in name else {code}
            _assert_refused(service, response, codes)
            assert response.status_code == 422, (name, response.text)
        for fields in (
            {"operation": "relight", "params": {"intensity": [0.5]}},  # the schema refuses
            {"operation": "relight", "params": {"intensity": None}},
            {"operation": "relight", "output_format": "gif"},
            {"operation": "relight", "subject_ids": ["x" * 65]},
        ):
            response = api.post("/v1/edits", data=_form(fields), files=_image())
            _assert_refused(service, response, {"invalid_input"})
            assert response.status_code == 400

        json_type = {"content-type": "application/json"}
        refusals = [
            api.post("/v1/checks", content=b'{"operation":"relight","prompt":"\\ud800"}',
                     headers=json_type),
            api.post("/v1/checks", content=b'{"operation":"relight","prompt":"\\ud800"}'),
            api.post("/v1/checks", content=b'{"operation":"relight","prompt":"caf\xe9"}',
                     headers=json_type),
            api.post("/v1/checks", data={"params": '{"operation":"relight","prompt":"\\udc00"}'},
                     files=_image()),
            api.post("/v1/stamps", data=_form({"generator": "acme\ud800"}), files=_image()),
            api.post("/v1/stamps", data=_form({"generator": "acme\ngen"}), files=_image()),
            api.post("/v1/stamps", data=_form({"generator": "acme", "prompt": "\udfff"}),
                     files=_image()),
            api.post("/v1/subjects", content=b'{"display_name":"\\ud800"}', headers=json_type),
            api.post("/v1/consents", headers=json_type, content=json.dumps(
                {"subject_id": "\ud800", "scopes": ["relight"], "evidence_sha256": EVIDENCE}
            ).encode()),
            api.post("/v1/consents", headers=json_type, content=json.dumps(
                {"subject_id": subject, "scopes": ["re\udc00light"], "evidence_sha256": EVIDENCE}
            ).encode()),
            api.post("/v1/consents", headers=json_type, content=json.dumps(
                {"subject_id": subject, "scopes": ["relight"], "evidence_sha256": EVIDENCE,
                 "grantee": "acme/\ud800"}
            ).encode()),
            operator.put(f"/v1/subjects/{subject}/public-figure", headers=json_type,
                         content=json.dumps({"figure_id": "\ud800", "evidence_sha256": EVIDENCE})
                         .encode()),
        ]  # fmt: skip
        for response in refusals:
            _assert_refused(service, response, {"invalid_text"})
            assert response.status_code == 422
        _assert_refused(
            service,
            api.post("/v1/checks", content=b'{"operation":"Relight!"}', headers=json_type),
            {"invalid_operation"},
        )
        assert _state(guard) == before


_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.sampled_from(["\ud800", "0.05", "1e309", "nan", "left", "mono", "true"]),
    lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=3,
)
_in_range = st.floats(min_value=0.0, max_value=0.12) | st.sampled_from(
    ["left", "top", "warm", "vintage", 0.05, "0.05"]
)


@st.composite
def _edits(draw: st.DrawFn) -> dict[str, Any]:
    operation = draw(st.sampled_from(sorted(SPECS)))
    values = st.one_of(_in_range, _in_range, _json_values)
    known = draw(st.fixed_dictionaries({}, optional=dict.fromkeys(SPECS[operation], values)))
    extra = draw(st.dictionaries(st.text(min_size=1, max_size=6), _json_values, max_size=1))
    return {"operation": operation, "params": {**(extra if draw(st.booleans()) else {}), **known}}


@pytest.fixture
def edits_service(live: LiveFactory) -> LiveService:
    return live(api_rate_burst=1_000_000)


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(fields=_edits())
def test_any_params_are_either_accepted_and_valid_or_refused_with_nothing_audited(
    edits_service: LiveService, fields: dict[str, Any]
) -> None:
    """Arbitrary JSON for each known parameter plus random names, through POST /v1/edits:
    decided (the edit ran, so the editor takes them: valid; its output may still be denied: a
    sketch of coffee can look like a face) or refused (400/422) with nothing audited. Never a
    5xx, never an audited decision followed by a refusal."""
    guard = edits_service.guard
    before = guard.audit.size()
    with edits_service.client() as api:
        response = api.post("/v1/edits", data=_form(fields), files=_image())
    event(f"HTTP {response.status_code}")
    if response.status_code in (200, 403):  # decided: allowed, or the output scan denied
        assert "decision" in response.json()
        ClassicEditor().validate_params(fields["operation"], fields["params"])  # so: valid
        assert guard.audit.size() > before
        return
    assert response.status_code in (400, 422), response.text
    assert response.json()["code"] in {"invalid_params", "invalid_text", "invalid_input"}
    assert guard.audit.size() == before, "refused after an audited decision"


def test_params_the_schema_reads_reach_the_editor_unchanged() -> None:
    """What the HTTP schema makes of params is what the library checks: JSON NaN, Infinity
    and 1e309 arrive as floats (refused by the editor, not lost or turned into text)."""
    from guard.api.schemas import EditParams

    parsed = EditParams.model_validate_json(
        '{"operation": "relight", "params": {"a": NaN, "b": Infinity, "c": 1e309, "d": "0.5"}}'
    )
    a, b, c, d = (parsed.params[k] for k in "abcd")
    assert isinstance(a, float) and math.isnan(a) and b == c == math.inf and d == "0.5"
