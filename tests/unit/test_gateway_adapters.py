"""The adapter declarations, read against the real API bodies in ``tests/data/gateway/``: every
image in them sits in a field its adapter declares with an image role, every URL in a link
(or, in a response, an output), every prompt in a prompt field; the generic adapter claims
none of the other APIs' image names; the pattern syntax parses as documented."""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from guard.api.gateway.adapters import (
    ADAPTERS,
    Adapter,
    Field,
    Role,
    adapter_named,
    bfl,
    dashscope,
    generic,
    openai,
    replicate,
    stability,
)
from guard.api.gateway.adapters.base import ARRAY
from guard.errors import ConfigurationError
from tests.support.gateway_bodies import (
    BODIES,
    DATA,
    ENCODING,
    PLACEHOLDER,
    image_slots,
    load_body,
    load_document,
)

Path = tuple[str | int, ...]
IMAGE_ROLES = {Role.INPUT, Role.MASK, Role.REFERENCE}
REQUESTS = sorted(name for name, body in BODIES.items() if body.direction == "request")
RESPONSES = sorted(name for name, body in BODIES.items() if body.direction == "response")

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00"
    b"\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7V\xbd\xfa"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)
JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(range(40))


def _leaves(value: object, path: Path = ()) -> list[tuple[Path, str]]:
    """Every string in a JSON document, with its path (keys and list indexes)."""
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list):
        return [leaf for index, item in enumerate(value) for leaf in _leaves(item, (*path, index))]
    return [(path, value)] if isinstance(value, str) else []


def _is_url(value: str) -> bool:
    return bool(re.match(r"[a-z][a-z0-9+.-]*://", value, re.I))


def _form_parts(document: dict[str, object]) -> list[tuple[str, str, bool]]:
    """``(name, value, is_file)`` for each part a description builds."""
    parts: list[tuple[str, str, bool]] = []
    for section, is_file in (("fields", False), ("files", True)):
        declared = document.get(section, {})
        assert isinstance(declared, dict)
        for name, value in declared.items():
            for item in value if isinstance(value, list) else [value]:
                parts.append((name, item, is_file))
    return parts


# -- the registry ------------------------------------------------------------------------------


def test_the_registry_holds_one_adapter_per_module() -> None:
    modules = (generic, openai, bfl, dashscope, replicate, stability)
    assert [module.ADAPTER.name for module in modules] == [
        "generic",
        "openai-images",
        "bfl-flux",
        "dashscope-qwen-image-edit",
        "replicate",
        "stability",
    ]
    assert dict(ADAPTERS) == {module.ADAPTER.name: module.ADAPTER for module in modules}
    for module in modules:
        assert module.__doc__ and len(module.__doc__) > 200, module.__name__
        assert module.ADAPTER.title
    with pytest.raises(TypeError):
        ADAPTERS["mine"] = generic.ADAPTER  # type: ignore[index]


def test_adapter_named_finds_each_and_names_the_known_ones_otherwise() -> None:
    for name, adapter in ADAPTERS.items():
        assert adapter_named(name) is adapter
    with pytest.raises(ConfigurationError) as refused:
        adapter_named("openai")
    for name in ADAPTERS:
        assert name in refused.value.message
    assert "'openai'" in refused.value.message
    with pytest.raises(ConfigurationError):
        adapter_named("")


@pytest.mark.parametrize("adapter", ADAPTERS.values(), ids=list(ADAPTERS))
def test_requests_and_responses_use_their_own_roles(adapter: Adapter) -> None:
    """OUTPUT only in responses; a response declares only outputs and links; JSON patterns
    parse; no pattern is declared twice."""
    for field in (*adapter.json_fields, *adapter.form_fields):
        assert field.role is not Role.OUTPUT, field
    for field in adapter.json_fields:
        assert field.json_segments is not None  # form names are matched whole, not parsed
    for field in adapter.response_fields:
        assert field.role in (Role.OUTPUT, Role.LINK), field
        assert field.json_segments is not None
    for fields in (adapter.json_fields, adapter.form_fields, adapter.response_fields):
        patterns = Counter(field.pattern for field in fields)
        assert all(count == 1 for count in patterns.values()), patterns
    assert not any(field.repeatable for field in adapter.json_fields)
    assert adapter.raw_body in (None, Role.INPUT, Role.MASK, Role.REFERENCE)


# -- the data files --------------------------------------------------------------------------


def test_every_data_file_is_listed_and_loads() -> None:
    on_disk = {path.stem for path in DATA.glob("*.json")}
    assert on_disk == set(BODIES)
    for name, body in BODIES.items():
        assert body.adapter in ADAPTERS, name
        assert body.path.startswith("/"), name
        assert body.method in ("GET", "POST"), name
        content, content_type = load_body(name, PNG)
        assert content and content_type, name
    assert {BODIES[name].adapter for name in REQUESTS} == set(ADAPTERS)


@pytest.mark.parametrize("name", REQUESTS)
def test_request_images_prompts_and_links_sit_in_declared_fields(name: str) -> None:
    adapter = ADAPTERS[BODIES[name].adapter]
    document = load_document(name)
    prompts = 0
    if isinstance(document, dict) and ENCODING in document:
        if document[ENCODING] == "raw":
            assert adapter.raw_body in IMAGE_ROLES
            return
        counts = Counter(part for part, _, _ in _form_parts(document))
        for part, value, is_file in _form_parts(document):
            declared = adapter.form_role(part)
            role = declared.role if declared else None
            if is_file or value == PLACEHOLDER:
                assert role in IMAGE_ROLES, (part, role)
            elif _is_url(value):
                assert role is Role.LINK, (part, role)
            else:
                assert role not in IMAGE_ROLES, (part, role)  # text in an image field refuses
            if counts[part] > 1:
                assert declared is not None and declared.repeatable, part
            prompts += role is Role.PROMPT
    else:
        for path, value in _leaves(document):
            declared = adapter.json_role(path)
            role = declared.role if declared else None
            if value == PLACEHOLDER:
                assert role in IMAGE_ROLES, (path, role)
            elif _is_url(value):
                assert role is Role.LINK, (path, role)
            else:
                assert role not in IMAGE_ROLES, (path, role)
            prompts += role is Role.PROMPT
    if name != "openai-variations-multipart":  # the one shape with no prompt at all
        assert prompts >= 1, name


@pytest.mark.parametrize("name", RESPONSES)
def test_response_images_and_urls_sit_in_declared_fields(name: str) -> None:
    adapter = ADAPTERS[BODIES[name].adapter]
    withheld = False
    for path, value in _leaves(load_document(name)):
        declared = adapter.response_role(path)
        role = declared.role if declared else None
        if value == PLACEHOLDER:
            assert role is Role.OUTPUT, (path, role)
        elif _is_url(value):
            assert role in (Role.OUTPUT, Role.LINK), (path, role)
            withheld |= role is Role.OUTPUT
    # A URL result cannot be stamped: these responses are the ones the gateway withholds.
    assert withheld == (
        name in {"openai-response-url", "bfl-result", "dashscope-response", "replicate-response"}
    )


def test_each_adapter_declares_the_image_fields_of_its_api() -> None:
    """Spot checks, by the paths the APIs document."""
    image = {Role.INPUT, Role.MASK, Role.REFERENCE}

    def json_role(adapter: Adapter, *path: str | int) -> Role | None:
        field = adapter.json_role(path)
        return field.role if field else None

    def form_role(adapter: Adapter, name: str) -> Role | None:
        field = adapter.form_role(name)
        return field.role if field else None

    oa = openai.ADAPTER
    assert json_role(oa, "images", 3, "file_id") is Role.INPUT  # refuses later: unverifiable
    assert json_role(oa, "mask", "file_id") is Role.MASK
    assert json_role(oa, "images", 0) is None  # a bare string is not the documented shape
    assert form_role(oa, "image[]") is Role.INPUT
    assert form_role(oa, "mask") is Role.MASK
    assert form_role(oa, "prompt") is Role.PROMPT
    assert oa.form_role("mask") and not oa.form_role("mask").repeatable  # type: ignore[union-attr]
    assert form_role(oa, "model") is None
    assert json_role(oa, "images") is None

    fx = bfl.ADAPTER
    for index in range(2, 11):
        assert json_role(fx, f"input_image_{index}") is Role.INPUT
    assert json_role(fx, "input_images") is None
    assert json_role(fx, "preprocessed_image") is Role.REFERENCE
    assert json_role(fx, "webhook_url") is Role.LINK
    assert json_role(fx, "webhook_secret") is None
    assert fx.response_role(("result", "sample")).role is Role.OUTPUT  # type: ignore[union-attr]
    assert fx.response_role(("polling_url",)).role is Role.LINK  # type: ignore[union-attr]

    ds = dashscope.ADAPTER
    path = ("input", "messages", 0, "content", 2)
    assert json_role(ds, *path, "image") is Role.INPUT
    assert json_role(ds, *path, "text") is Role.PROMPT
    assert json_role(ds, "parameters", "negative_prompt") is None
    assert json_role(ds, "input", "messages", 0, "role") is None

    rp = replicate.ADAPTER
    assert json_role(rp, "input", "image_input", 5) is Role.INPUT
    assert json_role(rp, "input", "reference_images", 0) is Role.REFERENCE
    assert json_role(rp, "input", "image_prompt") is Role.REFERENCE
    assert json_role(rp, "webhook") is Role.LINK
    assert json_role(rp, "image") is None  # only inside ``input``
    assert rp.response_role(("output", 1)).role is Role.OUTPUT  # type: ignore[union-attr]
    assert rp.response_role(("urls", "stream")).role is Role.LINK  # type: ignore[union-attr]
    assert rp.response_role(("urls", "a", "b")) is None

    st = stability.ADAPTER
    assert form_role(st, "text_prompts[3][text]") is Role.PROMPT
    assert form_role(st, "text_prompts[0][weight]") is None
    assert form_role(st, "negative_prompt") is None
    assert form_role(st, "subject_image") is Role.INPUT
    assert form_role(st, "light_reference") in image
    assert json_role(st, "text_prompts", 0, "text") is Role.PROMPT
    assert st.response_role(("artifacts", 0, "base64")).role is Role.OUTPUT  # type: ignore[union-attr]
    assert st.raw_body is None


# -- the generic adapter is exact ------------------------------------------------------------

BYPASS_NAMES = [
    "image[]",
    "images",
    "input_image",
    "init_image",
    "Image",
    "IMAGE",
    "image ",
    "input.image",
    "image_url",
    "mask[]",
    "file",
    "photo",
    "image2",
]


@pytest.mark.parametrize("name", BYPASS_NAMES)
def test_generic_claims_no_other_apis_image_names(name: str) -> None:
    adapter = generic.ADAPTER
    assert adapter.form_role(name) is None
    assert adapter.json_role((name,)) is None


@pytest.mark.parametrize(
    "path",
    [
        ("images", 0),
        ("image", 0),
        ("input", "image"),
        ("input", "image", 0),
        ("images", 0, "image_url"),
        ("data", "image"),
        ("image", "image"),
        ("input_image",),
        ("init_image",),
    ],
)
def test_generic_json_claims_only_top_level_names(path: Path) -> None:
    assert generic.ADAPTER.json_role(path) is None


def test_generic_declares_its_own_shape_once() -> None:
    adapter = generic.ADAPTER
    expected = {"image": Role.INPUT, "mask": Role.MASK, "prompt": Role.PROMPT}
    expected["operation"] = Role.OPERATION
    for name, role in expected.items():
        assert adapter.json_role((name,)).role is role  # type: ignore[union-attr]
        declared = adapter.form_role(name)
        assert declared is not None and declared.role is role and not declared.repeatable
    assert adapter.raw_body is Role.INPUT
    assert adapter.response_fields == ()


# -- the pattern syntax ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "segments"),
    [
        ("$", ()),
        ("prompt", ("prompt",)),
        ("input.image", ("input", "image")),
        ("images[]", ("images", ARRAY)),
        ("images[].image_url", ("images", ARRAY, "image_url")),
        ("grid[][]", ("grid", ARRAY, ARRAY)),
        ("[]", (ARRAY,)),
        ("[].image", (ARRAY, "image")),
        (
            "input.messages[].content[].image",
            ("input", "messages", ARRAY, "content", ARRAY, "image"),
        ),
        ("input_image*", ("input_image*",)),
        ("urls.*", ("urls", "*")),
    ],
)
def test_json_segments(pattern: str, segments: tuple[str, ...]) -> None:
    assert Field(pattern, Role.INPUT).json_segments == segments


@pytest.mark.parametrize("pattern", ["a[0]", "a[x]", "a[]b", "a[][x]"])
def test_json_segments_refuse_what_is_not_the_syntax(pattern: str) -> None:
    with pytest.raises(ValueError, match="bad field pattern"):
        _ = Field(pattern, Role.INPUT).json_segments


def test_json_matching() -> None:
    assert Field("$", Role.INPUT).matches_json(())
    assert not Field("$", Role.INPUT).matches_json(("image",))
    array = Field("images[].image_url", Role.INPUT)
    assert array.matches_json(("images", 0, "image_url"))
    assert array.matches_json(("images", 15, "image_url"))
    assert not array.matches_json(("images", "0", "image_url"))  # a key is not an index
    assert not array.matches_json(("images", 0))
    assert not array.matches_json(("images", 0, "image_url", "x"))
    named = Field("input.image", Role.INPUT)
    assert not named.matches_json(("input", 0))  # an index is not a key
    glob = Field("input_image*", Role.INPUT)
    assert glob.matches_json(("input_image",))
    assert glob.matches_json(("input_image_2",))
    assert not glob.matches_json(("input_imag",))
    assert not glob.matches_json(("an_input_image",))
    assert Field("urls.*", Role.LINK).matches_json(("urls", "get"))
    assert not Field("urls.*", Role.LINK).matches_json(("urls", 0))
    dotted = Field("a.b", Role.PROMPT)
    assert not dotted.matches_json(("a.b",))  # a dot separates keys, it is never in one


def test_form_matching() -> None:
    assert Field("image[]", Role.INPUT).matches_form("image[]")
    assert not Field("image[]", Role.INPUT).matches_form("image")
    assert not Field("image", Role.INPUT).matches_form("image[]")
    assert not Field("image", Role.INPUT).matches_form("Image")
    assert not Field("input.image", Role.INPUT).matches_form("inputXimage")  # no regex leaks
    prompts = Field("text_prompts[*][text]", Role.PROMPT)
    assert prompts.matches_form("text_prompts[0][text]")
    assert prompts.matches_form("text_prompts[12][text]")
    assert not prompts.matches_form("text_prompts[0][weight]")
    assert Field("$", Role.INPUT).matches_form("")
    assert not Field("image", Role.INPUT).matches_form("")
    assert Field("a*", Role.PROMPT).matches_form("a\nb")  # ``*`` matches any characters


# -- the loader ------------------------------------------------------------------------------


def test_load_body_fills_json_slots_in_order_and_in_the_apis_form() -> None:
    body, content_type = load_body("openai-edits-json", [PNG, JPEG, PNG])
    assert content_type == "application/json"
    document = json.loads(body)
    assert document["images"][0]["image_url"].startswith("data:image/png;base64,")
    assert document["images"][1]["image_url"].startswith("data:image/jpeg;base64,")
    assert document["mask"]["image_url"].startswith("data:image/png;base64,")
    raw = json.loads(load_body("bfl-kontext", JPEG)[0])["input_image"]
    assert raw.startswith("/9j/")  # plain base64 of a JPEG
    forced = json.loads(load_body("bfl-kontext", JPEG, "data_url")[0])["input_image"]
    assert forced.startswith("data:image/jpeg;base64,/9j/")
    assert PLACEHOLDER not in load_body("dashscope-qwen-image-edit", PNG)[0].decode()


def test_load_body_builds_multipart_urlencoded_and_raw_bodies() -> None:
    body, content_type = load_body("openai-edits-multipart", [PNG, JPEG, PNG])
    assert content_type.startswith("multipart/form-data; boundary=")
    assert body.count(b'name="image[]"') == 2
    assert body.count(b'name="mask"') == 1
    assert body.count(PNG) == 2 and body.count(JPEG) == 1
    assert b"Content-Type: image/jpeg" in body
    assert b'name="model"\r\n\r\ngpt-image-1' in body
    body, content_type = load_body("generic-urlencoded", PNG)
    assert content_type == "application/x-www-form-urlencoded"
    assert b"image=iVBORw0KGgo" in body
    assert load_body("generic-raw", JPEG) == (JPEG, "image/jpeg")
    assert image_slots("generic-raw") == ("$",)


def test_load_body_wants_one_image_per_slot() -> None:
    assert image_slots("bfl-flux2") == ("input_image", "input_image_2", "input_image_3")
    assert image_slots("dashscope-qwen-image-edit") == (
        "input.messages[0].content[0].image",
        "input.messages[0].content[1].image",
    )
    assert image_slots("openai-generations") == ()
    with pytest.raises(ValueError, match="3 image slots"):
        load_body("bfl-flux2", [PNG, PNG])
