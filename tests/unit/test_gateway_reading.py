"""How the gateway reads a request body: sniffing, strict parsing and the claim rules, without
a guard (the end-to-end checks are in tests/e2e/test_gateway_bypasses.py).

The property at the end is the heart of it: whatever shape a body takes, an image in it is
either handed to the checks or refuses the request. It is never silently skipped.
"""

from __future__ import annotations

import base64
import gzip
import json
import string

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from guard.api.gateway.adapters import Role, adapter_named
from guard.api.gateway.body import Body, parse_body, single_headers
from guard.api.gateway.claims import Claimed, claim_request
from guard.api.gateway.routes import RouteMap, normalise_path
from guard.api.gateway.sniff import looks_like_image, trailing_bytes
from guard.api.gateway.strings import read_string
from guard.errors import InvalidInput, PayloadTooLarge, UnprocessableInput, UnsupportedMedia
from guard.samples import sample_bytes

PHOTO = sample_bytes("tom_hanks")
B64 = base64.b64encode(PHOTO).decode()
GENERIC = adapter_named("generic")
MAX = 64 * 1024 * 1024
FORM = "application/x-www-form-urlencoded"


def read(content_type: str, body: bytes, adapter: str = "generic", **headers: str) -> Claimed:
    parsed = parse_body({"content-type": content_type, **headers}, body, max_bytes=MAX)
    return claim_request(adapter_named(adapter), parsed, max_images=8)


def refused(code: str, content_type: str, body: bytes, adapter: str = "generic") -> None:
    with pytest.raises(UnprocessableInput) as caught:
        read(content_type, body, adapter)
    assert caught.value.code == code, caught.value.message


def multipart(parts: list[tuple[str, tuple[str, bytes, str] | str]]) -> tuple[str, bytes]:
    files = [(name, value) for name, value in parts if isinstance(value, tuple)]
    data = [(name, value) for name, value in parts if isinstance(value, str)]
    request = httpx.Request("POST", "http://x/", data=dict(data), files=files)
    return request.headers["content-type"], request.read()


# -- sniffing ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["t1", "tom_hanks", "astronaut"])
def test_real_photos_are_images_in_every_encoding(name: str) -> None:
    data = sample_bytes(name)
    encoded = base64.b64encode(data).decode()
    assert looks_like_image(data)
    for text in (
        encoded,
        base64.urlsafe_b64encode(data).decode().rstrip("="),
        "\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76)),
        f"data:image/png;base64,{encoded}",
        f"data:application/octet-stream;base64,{encoded}",
        f"look at this: data:image/png;base64,{encoded} and make it nicer",
        base64.b64encode(json.dumps({"image": encoded}).encode()).decode(),
    ):
        assert read_string(text).kind == "image", text[:40]


def test_strings_that_are_not_images() -> None:
    assert read_string("https://cdn.example.com/a.png").kind == "url"
    assert read_string("s3://bucket/key").kind == "url"
    assert read_string('{"a": 1}').kind == "json"
    assert read_string("make the sky warmer").kind == "text"
    assert read_string("aGVsbG8gd29ybGQgaGVsbG8gd29ybGQ=").kind == "text"  # base64 of text
    assert read_string("<svg xmlns='http://www.w3.org/2000/svg'></svg>").kind == "image"


# -- bodies --------------------------------------------------------------------------------


def test_a_body_is_read_by_what_it_is() -> None:
    as_json = json.dumps({"image": B64}).encode()
    for label in ("text/plain", "", "image/png"):
        (body,) = parse_body({"content-type": label}, as_json, max_bytes=MAX)
        assert body.kind == "json"
    # Declared a form but JSON-looking: read both ways, every reading accounted for.
    kinds = [b.kind for b in parse_body({"content-type": FORM}, as_json, max_bytes=MAX)]
    assert kinds == ["form", "json"]
    (image,) = parse_body({"content-type": "application/octet-stream"}, PHOTO, max_bytes=MAX)
    assert image.kind == "image"
    zipped = gzip.compress(as_json)
    readings = parse_body(
        {"content-type": "application/json", "content-encoding": "gzip"}, zipped, max_bytes=MAX
    )
    assert readings == (Body("json", document={"image": B64}),)


def test_bodies_the_gateway_cannot_read_are_refused() -> None:
    with pytest.raises(UnsupportedMedia):
        parse_body(
            {"content-type": "application/octet-stream"}, b"\x00\x01\xfe" * 10, max_bytes=MAX
        )
    with pytest.raises(UnsupportedMedia):
        parse_body({"content-encoding": "br"}, b"\x00", max_bytes=MAX)
    with pytest.raises(PayloadTooLarge):
        parse_body({"content-encoding": "gzip"}, gzip.compress(b" " * 10_000), max_bytes=1000)
    with pytest.raises(InvalidInput):
        parse_body({"content-type": "application/json"}, b'{"a": NaN}', max_bytes=MAX)
    with pytest.raises(InvalidInput):
        parse_body(
            {"content-type": "multipart/form-data; boundary=x"}, b"--x\r\nbroken", max_bytes=MAX
        )


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"image": "a", "image": "b"}', "ambiguous_request"),
        (b'{"prompt": "\\ud800"}', "invalid_text"),
        (b'{"prompt": "caf\xe9"}', "invalid_text"),
        (b"[" * 100_000 + b"]" * 100_000, "invalid_json"),
    ],
)
def test_json_is_strict(body: bytes, code: str) -> None:
    refused(code, "application/json", body)


def test_headers_that_say_how_to_read_the_body_come_once() -> None:
    with pytest.raises(UnprocessableInput) as caught:
        single_headers([("Content-Type", "application/json"), ("content-type", "image/png")])
    assert caught.value.code == "ambiguous_request"
    assert single_headers([("X-A", "1"), ("x-a", "2")]) == {"x-a": "1, 2"}


# -- claims --------------------------------------------------------------------------------


def test_the_generic_shape_is_claimed() -> None:
    claimed = read("application/json", json.dumps({"image": B64, "prompt": "p"}).encode())
    assert [(i.role, i.data) for i in claimed.images] == [(Role.INPUT, PHOTO)]
    assert claimed.prompt == "p"
    content_type, body = multipart([("image", ("a.png", PHOTO, "image/png")), ("prompt", "p")])
    assert read(content_type, body).images[0].data == PHOTO
    assert read("application/octet-stream", PHOTO).images[0].data == PHOTO


@pytest.mark.parametrize(
    "document",
    [
        {"image[]": B64},
        {"images": [B64]},
        {"input_image": B64},
        {"init_image": B64},
        {"input": {"image": B64}},
        {"input": {"messages": [{"content": [{"image": f"data:image/png;base64,{B64}"}]}]}},
        {"prompt": "p", "extra": json.dumps({"image": B64})},
        [B64],
    ],
)
def test_images_the_generic_adapter_does_not_declare_refuse(document: object) -> None:
    refused("unrecognised_image_field", "application/json", json.dumps(document).encode())


def test_multipart_shapes_that_refuse() -> None:
    photo = ("a.png", PHOTO, "image/png")
    for parts, code in (
        ([("Image", photo)], "unrecognised_image_field"),
        ([("image[]", photo)], "unrecognised_image_field"),
        ([("picture", B64)], "unrecognised_image_field"),
        ([("notes", ("notes.txt", b"just text", "text/plain"))], "unrecognised_image_field"),
        ([("image", photo), ("image", photo)], "ambiguous_request"),
    ):
        content_type, body = multipart(parts)  # type: ignore[arg-type]
        refused(code, content_type, body)
    extended = (
        b"--b\r\nContent-Disposition: form-data; name=prompt; name*=UTF-8''image\r\n"
        b"\r\nx\r\n--b--\r\n"
    )
    refused("ambiguous_request", "multipart/form-data; boundary=b", extended)


def test_urls_and_ids_where_images_go_refuse() -> None:
    refused(
        "unverifiable_image_reference",
        "application/json",
        json.dumps({"image": "https://cdn.example.com/face.png"}).encode(),
    )
    refused(
        "unverifiable_image_reference",
        "application/json",
        json.dumps({"images": [{"file_id": "file-abc123"}], "prompt": "p"}).encode(),
        adapter="openai-images",
    )
    refused(  # a URL in a field nobody declared: the upstream may fetch it
        "unverifiable_image_reference",
        "application/json",
        json.dumps({"prompt": "p", "style_ref": "https://x.example/y.jpg"}).encode(),
    )


def test_form_urlencoded_and_text_bodies() -> None:
    form = f"prompt=hi&image={base64.urlsafe_b64encode(PHOTO).decode()}".encode()
    assert read("application/x-www-form-urlencoded", form).images[0].data == PHOTO
    refused("unrecognised_image_field", "text/plain", f"prompt=hi&picture={B64}".encode())
    assert read("text/plain", B64.encode()).images[0].data == PHOTO  # a bare base64 body


def test_too_many_images() -> None:
    adapter = adapter_named("openai-images")
    content_type, body = multipart([("image[]", ("a.png", PHOTO, "image/png"))] * 9)
    parsed = parse_body({"content-type": content_type}, body, max_bytes=MAX)
    with pytest.raises(UnprocessableInput) as caught:
        claim_request(adapter, parsed, max_images=8)
    assert caught.value.code == "too_many_images"


def test_routes_normalise_the_path_before_matching() -> None:
    routes = RouteMap.built_in()
    assert routes.route_for("/v1/images/edits?x=1").adapter.name == "openai-images"
    assert routes.route_for("/v1/images/%65dits").adapter.name == "openai-images"
    assert routes.route_for("//v1/x/../images/edits/").adapter.name == "openai-images"
    assert routes.route_for("/anything/else").adapter.name == "generic"
    assert normalise_path("/a/%2e%2e/b") == "/b"


# -- the property --------------------------------------------------------------------------

_names = st.text(string.ascii_letters + "_[]-.", min_size=1, max_size=12)
_leaves = st.one_of(st.text(max_size=20), st.integers(), st.booleans(), st.none())
_json = st.recursive(
    _leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_names, children, max_size=4)
    ),
    max_leaves=12,
)
_encodings = st.sampled_from(
    [
        lambda: B64,
        lambda: f"data:image/png;base64,{B64}",
        lambda: base64.urlsafe_b64encode(PHOTO).decode(),
        lambda: f"data:;base64,{B64}",
        lambda: json.dumps({"nested": B64}),
    ]
)


def _insert(document: object, path: list[int], image: str, key: str) -> object:
    """Put ``image`` somewhere inside ``document`` (steered by ``path``)."""
    if isinstance(document, dict) and document and path:
        keys = sorted(document)
        chosen = keys[path[0] % len(keys)]
        return {**document, chosen: _insert(document[chosen], path[1:], image, key)}
    if isinstance(document, list) and document and path:
        index = path[0] % len(document)
        return [
            *document[:index],
            _insert(document[index], path[1:], image, key),
            *document[index + 1 :],
        ]
    if isinstance(document, dict):
        return {**document, key: image}
    if isinstance(document, list):
        return [*document, image]
    return {key: image}


def _accounted_for(content_type: str, body: bytes, adapter: str) -> None:
    """The photo reaches the checks, or the request is refused."""
    try:
        claimed = read(content_type, body, adapter)
    except (InvalidInput, UnsupportedMedia):
        return
    assert any(image.data == PHOTO for image in claimed.images), "an image slipped through"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    document=_json,
    path=st.lists(st.integers(0, 10), max_size=6),
    key=_names,
    encode=_encodings,
    label=st.sampled_from(
        ["application/json", "text/plain", "", "application/x-www-form-urlencoded"]
    ),
    adapter=st.sampled_from(
        sorted(
            [
                "generic",
                "openai-images",
                "bfl-flux",
                "replicate",
                "stability",
                "dashscope-qwen-image-edit",
            ]
        )
    ),
)
def test_no_json_body_carries_the_photo_unchecked(
    document: object, path: list[int], key: str, encode: object, label: str, adapter: str
) -> None:
    body = json.dumps(_insert(document, path, encode(), key)).encode()  # type: ignore[operator]
    _accounted_for(label, body, adapter)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    fields=st.lists(st.tuples(_names, st.text(max_size=20)), max_size=5),
    name=_names,
    as_file=st.booleans(),
    part_type=st.sampled_from(
        ["image/png", "application/octet-stream", "text/plain", "image/jpeg"]
    ),
    adapter=st.sampled_from(["generic", "openai-images", "stability", "bfl-flux"]),
)
def test_no_multipart_body_carries_the_photo_unchecked(
    fields: list[tuple[str, str]], name: str, as_file: bool, part_type: str, adapter: str
) -> None:
    parts: list[tuple[str, tuple[str, bytes, str] | str]] = list(fields)
    parts.append((name, ("photo.png", PHOTO, part_type) if as_file else B64))
    content_type, body = multipart(parts)
    _accounted_for(content_type, body, adapter)


# -- what the cold review found (each a reproducer of a way around the reading) ----------------


def _blank_png() -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (200, 180, 160)).save(buffer, "PNG")
    return buffer.getvalue()


def _percent_all(text: str) -> str:
    return "".join(f"%{ord(c):02X}" for c in text)


@pytest.mark.parametrize(
    ("name", "headers", "body", "code"),
    [
        (  # upstream form parsers read image=; the guard once read only the JSON
            "JSON-looking body declared a form",
            {"content-type": FORM},
            ('{"a":"&image=' + _percent_all(B64) + '&b="}').encode(),
            "checked",
        ),
        (  # Pillow ignores bytes after IEND; a form parser finds image= there
            "a harmless image followed by form data",
            {"content-type": FORM},
            _blank_png() + b"&image=" + B64.encode() + b"&",
            "invalid_text",
        ),
        (
            "a harmless image followed by another, undeclared",
            {"content-type": "application/octet-stream"},
            _blank_png() + PHOTO,
            "ambiguous_request",
        ),
        (  # Node's gunzip, Go and Python read every gzip member
            "a second gzip member",
            {"content-type": FORM, "content-encoding": "gzip"},
            gzip.compress(b"prompt=a+cat") + gzip.compress(b"&picture=" + B64.encode()),
            "unrecognised_image_field",
        ),
        (  # Werkzeug ends a part at a boundary after a bare LF
            "a boundary after a bare line feed inside a part",
            {"content-type": "multipart/form-data; boundary=B"},
            b'--B\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n\r\n'
            + _blank_png()
            + b'\n--B\nContent-Disposition: form-data; name="mask"; filename="m.png"\n\n'
            + PHOTO
            + b"\r\n--B--\r\n",
            "ambiguous_request",
        ),
        (
            "content in the multipart preamble",
            {"content-type": "multipart/form-data; boundary=B"},
            b"image=" + B64.encode() + b"\r\n--B\r\nContent-Disposition: form-data; "
            b'name="prompt"\r\n\r\nhi\r\n--B--\r\n',
            "ambiguous_request",
        ),
        (  # a lenient base64 decoder drops the dots
            "base64 sprinkled with characters a lenient decoder drops",
            {"content-type": "application/json"},
            json.dumps(
                {"init_image": ".".join(B64[i : i + 80] for i in range(0, len(B64), 80))}
            ).encode(),
            "unrecognised_image_field",
        ),
        (  # TGA has no magic number; a long binary blob counts as an image
            "base64 of a format without a magic number",
            {"content-type": "application/json"},
            json.dumps({"style": base64.b64encode(bytes(range(256)) * 8).decode()}).encode(),
            "unrecognised_image_field",
        ),
        (
            "base64 wrapped at 76 columns inside prose",
            {"content-type": "application/json"},
            json.dumps(
                {"prompt": "see:\n" + "\n".join(B64[i : i + 76] for i in range(0, len(B64), 76))}
            ).encode(),
            "unrecognised_image_field",
        ),
        (  # Jackson reads an int array into byte[]
            "an array of bytes where an image goes",
            {"content-type": "application/json"},
            json.dumps({"image": list(PHOTO)}).encode(),
            "unrecognised_image_field",
        ),
        (
            "an array of bytes anywhere",
            {"content-type": "application/json"},
            json.dumps({"extra": {"type": "Buffer", "data": list(PHOTO)}}).encode(),
            "unrecognised_image_field",
        ),
        (
            "an image as a JSON key",
            {"content-type": "application/json"},
            json.dumps({B64: "x"}).encode(),
            "unrecognised_image_field",
        ),
        (
            "SVG with a BOM and a namespace prefix",
            {"content-type": "application/json"},
            json.dumps({"logo": "\ufeff<?xml version='1.0'?><svg:svg xmlns:svg='x'/>"}).encode(),
            "unrecognised_image_field",
        ),
        (
            "JSON nested deeper than any API",
            {"content-type": "application/json"},
            b'{"a":' * 990 + b"1" + b"}" * 990,
            "invalid_json",
        ),
    ],
    ids=lambda value: value if isinstance(value, str) and " " in value else "",
)
def test_reviewed_bypasses_are_refused(
    name: str, headers: dict[str, str], body: bytes, code: str
) -> None:
    """Each is refused with ``code``, or (``checked``) its photo goes to the checks."""
    if code == "checked":
        claimed = claim_request(GENERIC, parse_body(headers, body, max_bytes=MAX), max_images=8)
        assert PHOTO in [image.data for image in claimed.images], name
        return
    with pytest.raises(UnprocessableInput) as caught:
        readings = parse_body(headers, body, max_bytes=MAX)
        claim_request(GENERIC, readings, max_images=8)
    assert caught.value.code == code, f"{name}: {caught.value.message}"


def test_images_in_the_query_or_headers_are_refused() -> None:
    readings = parse_body({"content-type": "application/json"}, b'{"prompt":"x"}', max_bytes=MAX)
    for extra in ({"query": f"image={B64.replace('+', '%2B')}"}, {"headers": {"x-image": B64}}):
        with pytest.raises(UnprocessableInput) as caught:
            claim_request(GENERIC, readings, max_images=8, **extra)  # type: ignore[arg-type]
        assert caught.value.code == "unrecognised_image_field"


def test_a_long_boundary_or_odd_content_type_is_a_clean_refusal() -> None:
    boundary = "b" * 300
    body = f"--{boundary}\r\nContent-Disposition: form-data; name=p\r\n\r\nx\r\n--{boundary}--\r\n"
    with pytest.raises(InvalidInput):
        parse_body(
            {"content-type": f"multipart/form-data; boundary={boundary}"},
            body.encode(),
            max_bytes=MAX,
        )
    with pytest.raises(InvalidInput):
        parse_body({"content-type": "multipart/form-data; boundary=é€"}, b"--x--", max_bytes=MAX)


def test_crafted_markup_costs_milliseconds() -> None:
    """A regex with nested repetition once froze the process on 281 bytes."""
    import time

    for text in ("<!---->" * 40 + "x", "<!---->" * 100_000 + "x", ("A" * 95 + " ") * 20_000):
        started = time.perf_counter()
        read_string(text)
        assert time.perf_counter() - started < 1.0, text[:20]


def test_trailing_bytes_are_found_by_walking_the_file() -> None:
    for name in ("t1", "tom_hanks", "astronaut"):
        data = sample_bytes(name)
        assert trailing_bytes(data) == 0
        assert trailing_bytes(data + b"&image=x") == 8
        # A fake end marker appended does not hide the extra bytes.
        assert trailing_bytes(data + b"junk IEND\xaeB`\x82\xff\xd9") > 0
