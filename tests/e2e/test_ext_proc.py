"""The Envoy ext_proc service, fed the message sequence Envoy's ext_proc filter sends
(``processing_mode``: headers SEND, both bodies BUFFERED) over a real gRPC stream: the request's
headers and body, then the upstream's answer — the OpenAI stub's own answer where there is one.
"""

from __future__ import annotations

import base64
import json
import queue
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import grpc
import httpx
import pytest
from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from starlette.testclient import TestClient
from typer.testing import CliRunner

from examples.gateway.openai_stub import abstract_picture, create_app
from guard import Guard
from guard.api import ApiKeyStore, Role
from guard.api.admission import Admission
from guard.api.gateway.ext_proc import ExternalProcessor, build_server
from guard.api.service import Service
from guard.cli import app as cli
from guard.cli.common import EXIT_UNAVAILABLE
from guard.samples import sample_bytes
from tests.support.guards import GuardFactory
from tests.support.registry import EVIDENCE, blocklist_public_figures

REQUESTER = "acme/gateway"
OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD


# -- Envoy's side of the stream ----------------------------------------------------------------


def header_map(headers: Mapping[str, str], *, raw: bool = True) -> Any:
    return base_pb2.HeaderMap(
        headers=[
            base_pb2.HeaderValue(key=k, raw_value=v.encode())
            if raw
            else base_pb2.HeaderValue(key=k, value=v)
            for k, v in headers.items()
        ]
    )


def value_of(header: Any) -> str:
    return bytes(header.raw_value).decode() if header.raw_value else str(header.value)


def applied(headers: Mapping[str, str], mutation: Any) -> dict[str, str]:
    """``headers`` after a HeaderMutation, as Envoy applies one (removals first)."""
    out = {k: v for k, v in headers.items() if k not in set(mutation.remove_headers)}
    for option in mutation.set_headers:
        assert option.append_action == OVERWRITE
        out[option.header.key] = value_of(option.header)
    return out


def set_headers(mutation: Any) -> dict[str, str]:
    return {o.header.key: value_of(o.header) for o in mutation.set_headers}


class EnvoyStream:
    """One ext_proc stream: send a message, wait for the guard's answer, as Envoy does."""

    def __init__(self, stub: Any, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self._outbox: queue.Queue[Any] = queue.Queue()
        self._replies = stub.Process(iter(self._outbox.get, None), metadata=metadata, timeout=120)

    def send(self, message: Any) -> Any:
        self._outbox.put(message)
        return next(self._replies)

    def close(self) -> None:
        self._outbox.put(None)


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes = b""


@dataclass
class Chain:
    """The guard's ext_proc server on a free port, a gRPC client playing Envoy, and the
    OpenAI stub as the upstream."""

    guard: Guard
    stub: Any
    upstream: TestClient
    streams: list[EnvoyStream]
    processor: ExternalProcessor

    def key(self, role: Role = Role.INTEGRATOR, requester: str = REQUESTER) -> str:
        store = ApiKeyStore(self.guard.db)
        return store.create(tenant="acme", role=role, requester=requester).token

    def stream(self, metadata: tuple[tuple[str, str], ...] = ()) -> EnvoyStream:
        stream = EnvoyStream(self.stub, metadata)
        self.streams.append(stream)
        return stream

    def request(
        self, stream: EnvoyStream, request: Request, *, raw: bool = True
    ) -> tuple[Any, dict[str, str] | None]:
        """Headers (and the body, if any) as Envoy sends them: the last answer and, when the
        request goes on upstream, the headers the upstream gets."""
        pseudo = {":method": request.method, ":path": request.path, ":authority": "images.test"}
        headers_message = pb.ProcessingRequest(
            request_headers=pb.HttpHeaders(
                headers=header_map({**pseudo, **request.headers}, raw=raw),
                end_of_stream=not request.body,
            )
        )
        answer = stream.send(headers_message)
        if answer.HasField("immediate_response"):
            return answer, None
        assert answer.HasField("request_headers")
        forwarded = applied(request.headers, answer.request_headers.response.header_mutation)
        if not request.body:
            return answer, forwarded
        answer = stream.send(
            pb.ProcessingRequest(request_body=pb.HttpBody(body=request.body, end_of_stream=True))
        )
        if answer.HasField("immediate_response"):
            return answer, None
        assert answer.HasField("request_body")
        return answer, applied(forwarded, answer.request_body.response.header_mutation)

    def response(
        self, stream: EnvoyStream, status: int, headers: Mapping[str, str], body: bytes
    ) -> tuple[Any, Any]:
        """The upstream's answer as Envoy sends it: (headers answer, body answer or None)."""
        head = stream.send(
            pb.ProcessingRequest(
                response_headers=pb.HttpHeaders(
                    headers=header_map({":status": str(status), **headers}),
                    end_of_stream=not body,
                )
            )
        )
        if head.HasField("immediate_response") or not body:
            return head, None
        tail = stream.send(
            pb.ProcessingRequest(response_body=pb.HttpBody(body=body, end_of_stream=True))
        )
        return head, tail

    def upstream_answer(self, request: Request, headers: Mapping[str, str]) -> httpx.Response:
        return self.upstream.request(
            request.method, request.path, headers=dict(headers), content=request.body
        )


@pytest.fixture
def chain(make_guard: GuardFactory) -> Iterator[Chain]:
    guard = make_guard()
    processor = ExternalProcessor(
        Service.build(guard.settings, guard), generator="openai-stub", generator_version="1.0"
    )
    server, port = build_server(processor, host="127.0.0.1", port=0, workers=4)
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    running = Chain(
        guard, pb_grpc.ExternalProcessorStub(channel), TestClient(create_app()), [], processor
    )
    try:
        yield running
    finally:
        for stream in running.streams:
            stream.close()
        channel.close()
        server.stop(grace=None)


def multipart(fields: dict[str, str], image: bytes, name: str = "image[]") -> tuple[bytes, str]:
    request = httpx.Request(
        "POST", "http://images.test/", data=fields, files={name: ("photo.png", image, "image/png")}
    )
    return request.read(), request.headers["content-type"]


def edit_request(key: str | None, image: bytes) -> Request:
    body, content_type = multipart({"prompt": "make it brighter", "model": "gpt-image-1"}, image)
    headers = {
        "content-type": content_type,
        "content-length": str(len(body)),
        "authorization": "Bearer sk-the-clients-own-upstream-key",
        "x-guard-operation": "prompt_edit",
    }
    if key:
        headers["x-guard-api-key"] = key
    return Request("POST", "/v1/images/edits?trace=1", headers, body)


def generation_request(key: str | None, prompt: str = "a lighthouse at dusk") -> Request:
    body = json.dumps({"prompt": prompt, "model": "gpt-image-1", "size": "512x512"}).encode()
    headers = {"content-type": "application/json", "content-length": str(len(body))}
    if key:
        headers["x-guard-api-key"] = key
    return Request("POST", "/v1/images/generations", headers, body)


def immediate(answer: Any) -> tuple[int, dict[str, str], dict[str, Any]]:
    assert answer.HasField("immediate_response"), answer
    response = answer.immediate_response
    return response.status.code, set_headers(response.headers), json.loads(response.body)


# -- the request -------------------------------------------------------------------------------


def test_a_blocklisted_face_is_refused_before_the_upstream(chain: Chain) -> None:
    blocklist_public_figures(chain.guard)
    answer, forwarded = chain.request(
        chain.stream(), edit_request(chain.key(), sample_bytes("tom_hanks"))
    )
    assert forwarded is None, "a denied request never goes upstream"
    status, headers, problem = immediate(answer)
    assert status == 403
    assert headers["content-type"] == "application/problem+json"
    assert "content-length" not in headers  # Envoy sets it for its own reply
    assert headers["x-guard-decision"] == "deny"
    assert problem["code"] == "public_figure"
    assert problem["type"] == "https://likeness-guard.dev/problems/public_figure"
    assert problem["receipt"]["leaf_index"] >= 0


@pytest.mark.parametrize(
    ("who", "status", "code"),
    [
        ("unknown", 401, "unauthenticated"),
        ("nobody", 401, "unauthenticated"),
        ("auditor", 403, "forbidden"),
    ],
)
def test_keys_are_checked_at_the_request_headers(
    chain: Chain, who: str, status: int, code: str
) -> None:
    key = {
        "unknown": "lg_nosuchkey.notasecret",
        "nobody": None,
        "auditor": chain.key(Role.AUDITOR),
    }[who]
    answer = chain.stream().send(
        pb.ProcessingRequest(
            request_headers=pb.HttpHeaders(
                headers=header_map(
                    {":method": "POST", ":path": "/v1/images/generations"}
                    | ({"x-guard-api-key": key} if key else {})
                ),
                end_of_stream=False,
            )
        )
    )
    got, headers, problem = immediate(answer)
    assert (got, problem["code"]) == (status, code)
    assert headers["content-type"] == "application/problem+json"


def test_a_request_without_a_body_is_checked_at_its_headers(chain: Chain) -> None:
    key = chain.key()
    request = Request("GET", "/v1/models", {"x-guard-api-key": key, "accept": "application/json"})
    stream = chain.stream()
    answer, forwarded = chain.request(stream, request)
    assert forwarded is not None
    mutation = answer.request_headers.response.header_mutation
    assert "x-guard-api-key" in mutation.remove_headers
    assert "x-guard-api-key" not in forwarded
    assert forwarded["x-guard-decision"] in ("allow", "allow_with_conditions")
    assert chain.guard.audit.receipt_for_decision(forwarded["x-guard-decision-id"])
    # The stub's model list holds no image: it passes unchanged.
    upstream = chain.upstream_answer(request, forwarded)
    head, tail = chain.response(
        stream, upstream.status_code, dict(upstream.headers), upstream.content
    )
    assert list(head.response_headers.response.header_mutation.remove_headers) == ["content-length"]
    assert tail.HasField("response_body")
    assert not tail.response_body.response.HasField("body_mutation")


def test_the_key_may_come_as_grpc_metadata_and_guard_headers_are_not_taken_from_clients(
    chain: Chain,
) -> None:
    request = generation_request(None)
    request.headers["x-guard-decision"] = "allow"  # a client's forgery
    request.headers["x-guard-receipt"] = "forged"
    answer, forwarded = chain.request(chain.stream((("x-guard-api-key", chain.key()),)), request)
    assert forwarded is not None, answer
    assert forwarded["x-guard-decision"] == "allow_with_conditions"
    assert "x-guard-receipt" not in forwarded


def test_the_deployments_metadata_key_wins_over_a_clients_header(chain: Chain) -> None:
    """A client cannot pick its own requester where Envoy's configuration sends the key."""
    request = generation_request(chain.key(role=Role.AUDITOR))  # would be refused (403)
    answer, forwarded = chain.request(chain.stream((("x-guard-api-key", chain.key()),)), request)
    assert forwarded is not None, answer
    assert "x-guard-api-key" not in forwarded


def test_headers_are_answered_in_the_field_envoy_uses(chain: Chain) -> None:
    """Envoy with send_header_raw_value off sends (and reads) ``value``, not ``raw_value``."""
    answer, forwarded = chain.request(chain.stream(), generation_request(chain.key()), raw=False)
    assert forwarded is not None
    options = answer.request_body.response.header_mutation.set_headers
    assert options and all(o.header.value and not o.header.raw_value for o in options)


# -- the whole exchange, with the OpenAI stub upstream -----------------------------------------


def test_an_allowed_edit_is_forwarded_and_its_answer_stamped(chain: Chain) -> None:
    guard = chain.guard
    astronaut = sample_bytes("astronaut")
    subject = guard.registry.create_subject("acme", display_name="Eileen")
    guard.registry.enroll(subject.id, guard.faces_in(astronaut))
    guard.registry.grant(
        subject.id, grantee=REQUESTER, scopes=["prompt_edit"], evidence_sha256=EVIDENCE
    )
    request = edit_request(chain.key(), astronaut)
    stream = chain.stream()
    answer, forwarded = chain.request(stream, request)
    assert forwarded is not None, answer
    assert "x-guard-api-key" not in forwarded
    assert forwarded["authorization"] == "Bearer sk-the-clients-own-upstream-key"
    assert forwarded["x-guard-decision"] == "allow_with_conditions"
    input_decision = forwarded["x-guard-decision-id"]
    assert int(forwarded["x-guard-audit-index"]) >= 0

    upstream = chain.upstream_answer(request, forwarded)
    assert upstream.status_code == 200, upstream.text
    original = upstream.json()
    head, tail = chain.response(stream, 200, dict(upstream.headers), upstream.content)
    assert "content-length" in head.response_headers.response.header_mutation.remove_headers
    common = tail.response_body.response
    body = common.body_mutation.body
    headers = set_headers(common.header_mutation)
    assert headers["content-length"] == str(len(body))
    assert headers["content-type"] == "application/json"
    assert headers["x-guard-input-decision-id"] == input_decision
    assert headers["x-guard-decision"] in ("allow", "allow_with_conditions")
    answered = json.loads(body)
    assert answered["created"] == original["created"] and answered["usage"] == original["usage"]
    stamped = base64.b64decode(answered["data"][0]["b64_json"])
    assert stamped != base64.b64decode(original["data"][0]["b64_json"])
    report = guard.verify(stamped)
    assert report.outcome.value == "valid", report.summary
    assert report.decision is not None
    assert report.decision["decision_id"] == headers["x-guard-decision-id"]


def test_a_generated_image_answer_is_stamped_whole(chain: Chain) -> None:
    """A bare image/png answer (not the JSON envelope) is watermarked and signed too."""
    request = generation_request(chain.key(), "a red kite over a field")
    stream = chain.stream()
    answer, forwarded = chain.request(stream, request)
    assert forwarded is not None, answer
    picture = abstract_picture("a red kite over a field")
    upstream_headers = {"content-type": "image/png", "content-length": str(len(picture))}
    _, tail = chain.response(stream, 200, upstream_headers, picture)
    common = tail.response_body.response
    headers = set_headers(common.header_mutation)
    assert headers["content-type"] == "image/png"
    assert headers["content-length"] == str(len(common.body_mutation.body))
    assert chain.guard.verify(common.body_mutation.body).outcome.value == "valid"


def test_the_stubs_generation_answer_is_stamped_in_its_json(chain: Chain) -> None:
    request = generation_request(chain.key())
    stream = chain.stream()
    _, forwarded = chain.request(stream, request)
    assert forwarded is not None
    upstream = chain.upstream_answer(request, forwarded)
    _, tail = chain.response(stream, 200, dict(upstream.headers), upstream.content)
    stamped = json.loads(tail.response_body.response.body_mutation.body)
    image = base64.b64decode(stamped["data"][0]["b64_json"])
    assert chain.guard.verify(image).outcome.value == "valid"


def test_an_answer_that_cannot_be_stamped_is_withheld(chain: Chain) -> None:
    stream = chain.stream()
    _, forwarded = chain.request(stream, generation_request(chain.key()))
    assert forwarded is not None
    body = json.dumps({"created": 1, "data": [{"url": "https://cdn.test/out.png"}]}).encode()
    _, tail = chain.response(stream, 200, {"content-type": "application/json"}, body)
    status, headers, problem = immediate(tail)
    assert status == 502
    assert problem["code"] == "output_not_stampable"
    assert headers["content-type"] == "application/problem+json"


def test_an_upstream_error_passes_untouched(chain: Chain) -> None:
    stream = chain.stream()
    request = generation_request(chain.key())
    request.body = json.dumps({"model": "gpt-image-1"}).encode()  # no prompt: the stub's 400
    request.headers["content-length"] = str(len(request.body))
    _, forwarded = chain.request(stream, request)
    assert forwarded is not None
    upstream = chain.upstream_answer(request, forwarded)
    assert upstream.status_code == 400
    head, tail = chain.response(stream, 400, dict(upstream.headers), upstream.content)
    assert not head.response_headers.HasField("response")
    assert not tail.response_body.HasField("response")


# -- failing closed ----------------------------------------------------------------------------


def test_a_body_in_parts_is_refused(chain: Chain) -> None:
    stream = chain.stream()
    request = generation_request(chain.key())
    stream.send(
        pb.ProcessingRequest(
            request_headers=pb.HttpHeaders(
                headers=header_map({":method": "POST", ":path": request.path, **request.headers})
            )
        )
    )
    answer = stream.send(
        pb.ProcessingRequest(request_body=pb.HttpBody(body=request.body[:10], end_of_stream=False))
    )
    status, _, problem = immediate(answer)
    assert (status, problem["code"]) == (503, "unavailable")
    assert "BUFFERED" in problem["detail"]


def test_a_streamed_processing_mode_is_refused_at_once(chain: Chain) -> None:
    request = generation_request(chain.key())
    answer = chain.stream().send(
        pb.ProcessingRequest(
            request_headers=pb.HttpHeaders(
                headers=header_map({":method": "POST", ":path": request.path, **request.headers})
            ),
            protocol_config=pb.ProtocolConfiguration(
                request_body_mode=processing_mode_pb2.ProcessingMode.BUFFERED,
                response_body_mode=processing_mode_pb2.ProcessingMode.STREAMED,
            ),
        )
    )
    status, _, problem = immediate(answer)
    assert status == 503 and "response_body_mode is STREAMED" in problem["detail"]


def test_an_answer_to_a_request_whose_body_never_came_is_withheld(chain: Chain) -> None:
    stream = chain.stream()
    request = generation_request(chain.key())
    stream.send(
        pb.ProcessingRequest(
            request_headers=pb.HttpHeaders(
                headers=header_map({":method": "POST", ":path": request.path, **request.headers})
            )
        )
    )
    head, _ = chain.response(stream, 200, {"content-type": "image/png"}, b"\x89PNG...")
    status, _, problem = immediate(head)
    assert status == 503 and "never checked" in problem["detail"]


def test_a_request_the_guard_and_the_upstream_could_read_differently_is_refused(
    chain: Chain,
) -> None:
    twice = base_pb2.HeaderMap(
        headers=[
            base_pb2.HeaderValue(key=k, raw_value=v.encode())
            for k, v in (
                (":method", "POST"),
                (":path", "/v1/images/edits"),
                ("x-guard-api-key", chain.key()),
                ("content-type", "application/json"),
                ("content-type", "multipart/form-data; boundary=x"),
            )
        ]
    )
    answer = chain.stream().send(
        pb.ProcessingRequest(request_headers=pb.HttpHeaders(headers=twice))
    )
    status, _, problem = immediate(answer)
    assert (status, problem["code"]) == (422, "ambiguous_request")


def test_a_full_worker_answers_busy_and_nothing_is_checked(chain: Chain) -> None:
    admission = Admission(slots=1, queue=0, retry_after_s=3.0)
    chain.processor.flow.admission = admission
    before = chain.guard.audit.size()
    with admission.admitted(sample_bytes("astronaut")):  # another stream holds the only slot
        answer, forwarded = chain.request(
            chain.stream(), edit_request(chain.key(), sample_bytes("astronaut"))
        )
    assert forwarded is None
    status, headers, problem = immediate(answer)
    assert (status, problem["code"]) == (503, "busy")
    assert headers["retry-after"] == "3"
    assert chain.guard.audit.size() == before


def test_a_body_over_the_cap_is_refused(chain: Chain) -> None:
    request = generation_request(chain.key())
    request.headers["content-length"] = str(chain.guard.settings.api_max_body_bytes + 1)
    answer, _ = chain.request(chain.stream(), request)
    status, _, problem = immediate(answer)
    assert (status, problem["code"]) == (413, "payload_too_large")


# -- the command -------------------------------------------------------------------------------


@pytest.fixture
def workdir(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GUARD_DATA_DIR", str(tmp_path / "var"))
    for variable in ("GUARD_DATABASE_URL", "GUARD_HMAC_KEY", "GUARD_TEMPLATE_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)


def test_serve_ext_proc_runs_the_grpc_service(
    workdir: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(
        "guard.api.gateway.ext_proc.serve", lambda settings, **kwargs: calls.append(kwargs)
    )
    result = CliRunner().invoke(
        cli, ["serve-ext-proc", "--port", "50099", "--workers", "3", "--generator", "acme-gen"]
    )
    assert result.exit_code == 0, result.output
    assert calls == [
        {
            "host": "127.0.0.1",
            "port": 50099,
            "workers": 3,
            "generator": "acme-gen",
            "generator_version": "unknown",
        }
    ]


def test_serve_ext_proc_refuses_a_short_hmac_key(
    workdir: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GUARD_HMAC_KEY", "changeme")
    monkeypatch.setattr(
        "guard.api.gateway.ext_proc.serve", lambda *a, **k: pytest.fail("it started")
    )
    result = CliRunner().invoke(cli, ["serve-ext-proc"])
    assert result.exit_code == EXIT_UNAVAILABLE
    assert "GUARD_HMAC_KEY is 8 bytes" in result.stderr
    assert "changeme" not in result.output


def test_serve_ext_proc_names_the_extra_when_grpc_is_missing(
    workdir: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    import guard.api.gateway

    monkeypatch.setitem(sys.modules, "grpc", None)
    monkeypatch.delitem(sys.modules, "guard.api.gateway.ext_proc", raising=False)
    monkeypatch.delattr(guard.api.gateway, "ext_proc", raising=False)
    result = CliRunner().invoke(cli, ["serve-ext-proc"])
    assert result.exit_code == EXIT_UNAVAILABLE
    assert "likeness-guard[gateway]" in " ".join(result.stderr.split())


def test_an_unexpected_error_ends_the_stream_and_nothing_is_forwarded(
    chain: Chain, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug is not swallowed into an answer: the stream fails, and Envoy (failure_mode_allow:
    false) refuses the request instead of forwarding it."""

    def broken(**_: object) -> None:
        raise RuntimeError("a bug in the flow")

    monkeypatch.setattr(chain.processor.flow, "check_request", broken)
    with pytest.raises(grpc.RpcError):
        chain.request(chain.stream(), generation_request(chain.key()))
