"""Envoy ``ext_proc``: the guard's request check *and* its response scan and stamp, in one
HTTP filter (gRPC service ``envoy.service.ext_proc.v3.ExternalProcessor``).

``ext_authz`` (:mod:`guard.api.gateway.envoy`) only ever sees requests, so it cannot stamp what
the upstream made; this service sees both halves of the exchange on one gRPC stream:

1. ``request_headers``: the guard key is read from the stream's gRPC metadata (Envoy's
   ``grpc_service.initial_metadata``, the deployment's key, which wins), or, without one, from
   the client's ``x-guard-api-key`` header;
   unknown → 401, a role that may not check → 403. A request without a body
   (``end_of_stream``) is checked right there; the key header is always removed, so it never
   reaches the upstream.
2. ``request_body`` (``BUFFERED``: the whole body in one message):
   :meth:`GatewayFlow.check_request`. Denied → an ``immediate_response`` with the denial's
   problem (403, or 503 when the guard could not decide); allowed → continue, with the
   ``x-guard-*`` allow headers set upstream (and any a client sent removed).
3. ``response_headers``: a 2xx answer loses ``content-length`` (its body may change size);
   anything else passes untouched.
4. ``response_body``: :meth:`GatewayFlow.respond`: unchanged → continue; stamped → a body
   mutation, its ``content-length`` and the ``x-guard-*`` headers; withheld → an
   ``immediate_response`` (502 or 503 problem).

Fail closed: anything the stream cannot account for — a body sent in parts (a streamed mode),
a body that never came, messages out of order, a processing mode other than ``BUFFERED`` for
either body — is answered with an ``immediate_response`` problem (503, or the error's own
status). An unexpected error (a bug) is not caught: it ends the stream with a gRPC error, which
Envoy refuses only under ``failure_mode_allow: false``, so that setting is required.
Headers are read from ``raw_value`` (Envoy's default since 1.27) or
``value``, and written back in the field the stream's own headers came in. See
``examples/gateway/envoy-ext-proc.yaml`` and ``examples/gateway/README.md``.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from envoy.config.core.v3 import base_pb2
from envoy.extensions.filters.http.ext_proc.v3 import processing_mode_pb2
from envoy.service.ext_proc.v3 import external_processor_pb2 as pb
from envoy.service.ext_proc.v3 import external_processor_pb2_grpc as pb_grpc
from envoy.type.v3 import http_status_pb2
from starlette.responses import Response

from guard.api.auth import WRITERS
from guard.api.gateway.body import single_headers
from guard.api.gateway.flow import CheckedRequest, GatewayFlow
from guard.api.keys import ApiKey
from guard.api.problems import guard_error_response, problem
from guard.api.routes.common import denial
from guard.api.service import Service
from guard.api.views import hidden_from
from guard.config import Settings
from guard.errors import (
    ConfigurationError,
    Forbidden,
    GuardError,
    InvalidInput,
    PayloadTooLarge,
    Unauthenticated,
)

log = logging.getLogger("guard.api")

KEY_HEADER = "x-guard-api-key"
"""The request header (or gRPC metadata key) that carries the guard key."""
GUARD_HEADER_PREFIX = "x-guard-"
BUFFERED = processing_mode_pb2.ProcessingMode.BUFFERED
OVERWRITE = base_pb2.HeaderValueOption.OVERWRITE_IF_EXISTS_OR_ADD
MESSAGE_HEADROOM = 1024 * 1024
"""gRPC message size above the body cap: headers and framing of one ProcessingRequest."""
DEFAULT_WORKERS = 32
"""Streams served at once: each holds a thread for its whole exchange, upstream time included."""


class ProtocolError(Exception):
    """Envoy sent what this filter's configuration rules out: fail closed (503)."""


def _is_2xx(status: int) -> bool:
    return 200 <= status < 300


class ExternalProcessor:
    """The ``ExternalProcessor`` service: one :class:`_Exchange` per stream."""

    def __init__(
        self,
        service: Service,
        flow: GatewayFlow | None = None,
        *,
        generator: str = "upstream",
        generator_version: str = "unknown",
    ) -> None:
        self.service = service
        self.flow = flow or service.gateway
        self.generator = generator
        self.generator_version = generator_version
        self.max_body_bytes = service.settings.api_max_body_bytes

    def authorise(self, token: str | None) -> ApiKey:
        if not token:
            raise Unauthenticated(
                f"send a guard key in the {KEY_HEADER} header (the client's, or Envoy's "
                "grpc_service.initial_metadata); create one with `guard keys create`"
            )
        key = self.service.authenticate(token)
        if key.role not in WRITERS:
            raise Forbidden(
                f"the {key.role.value} role may not do this; it needs one of "
                f"{', '.join(r.value for r in WRITERS)}"
            )
        return key

    def Process(  # noqa: N802 (the gRPC method's name)
        self, request_iterator: Iterable[Any], context: Any
    ) -> Iterator[Any]:
        metadata = {k.lower(): v for k, v in (context.invocation_metadata() or ())}
        token = metadata.get(KEY_HEADER)
        exchange = _Exchange(self, token if isinstance(token, str) else None)
        for message in request_iterator:
            reply = exchange.answer(message)
            yield reply
            if reply.HasField("immediate_response"):
                return  # Envoy answers the client and ends the stream


class _Exchange:
    """One HTTP request and its response, as one ext_proc stream carries them."""

    def __init__(self, processor: ExternalProcessor, metadata_token: str | None) -> None:
        self.processor = processor
        self.metadata_token = metadata_token
        self.raw_values = True
        self.first = True
        self.key: ApiKey | None = None
        self.method = "GET"
        self.path = "/"
        self.request_headers: dict[str, str] = {}
        self.client_guard_headers: set[str] = set()
        self.awaiting_body = False
        self.checked: CheckedRequest | None = None
        self.status: int | None = None
        self.response_headers: dict[str, str] = {}

    # -- dispatch -------------------------------------------------------------------------

    def answer(self, message: Any) -> Any:
        in_response = self.status is not None or message.HasField("response_headers")
        try:
            if self.first:
                self.first = False
                self._check_protocol(message)
            return self._dispatch(message)
        except InvalidInput as exc:
            if in_response:  # the upstream's answer, not the client's request, is at fault
                return self._immediate(problem(502, exc.code, f"{exc.message}; it is withheld"))
            return self._immediate(guard_error_response(exc))
        except GuardError as exc:
            return self._immediate(guard_error_response(exc))
        except ProtocolError as exc:
            log.error("ext_proc: %s", exc)
            return self._immediate(problem(503, "unavailable", str(exc)))
        # Anything else is a bug: it is not caught here. It ends the stream with a gRPC error,
        # which Envoy answers as a refusal under failure_mode_allow: false (the required
        # setting, examples/gateway/envoy-ext-proc.yaml); nothing is forwarded on a guess.

    def _check_protocol(self, message: Any) -> None:
        """Newer Envoys state the body modes in the first message: both must be BUFFERED.
        A filter in observability mode ignores every answer: nothing the guard says counts."""
        if message.observability_mode:
            raise ProtocolError(
                "the ext_proc filter runs in observability_mode, which ignores the guard's "
                "answers (nothing is refused or stamped): turn it off"
            )
        if not message.HasField("protocol_config"):
            return
        config = message.protocol_config
        for name in ("request_body_mode", "response_body_mode"):
            mode = getattr(config, name)
            if mode != BUFFERED:
                raise ProtocolError(
                    f"the ext_proc filter's processing_mode.{name} is "
                    f"{processing_mode_pb2.ProcessingMode.BodySendMode.Name(mode)}; the guard "
                    "needs BUFFERED for both bodies (see examples/gateway/envoy-ext-proc.yaml)"
                )

    def _dispatch(self, message: Any) -> Any:
        kind = message.WhichOneof("request")
        if kind == "request_headers":
            return self._on_request_headers(message.request_headers)
        if kind == "request_body":
            return self._on_request_body(message.request_body)
        if kind == "response_headers":
            return self._on_response_headers(message.response_headers)
        if kind == "response_body":
            return self._on_response_body(message.response_body)
        if kind == "request_trailers":
            return pb.ProcessingResponse(request_trailers=pb.TrailersResponse())
        if kind == "response_trailers":
            return pb.ProcessingResponse(response_trailers=pb.TrailersResponse())
        raise ProtocolError(f"unexpected ext_proc message {kind or '(empty)'}")

    # -- the request ----------------------------------------------------------------------

    def _on_request_headers(self, message: Any) -> Any:
        if self.key is not None:
            raise ProtocolError("request headers arrived twice on one stream")
        headers, pseudo = self._read(message.headers)
        self.method = pseudo.get(":method", "GET").upper()
        self.path = pseudo.get(":path", "/") or "/"  # with its query: images there refuse
        # The key Envoy's configuration sends wins: a client cannot pick another requester.
        client_token = headers.pop(KEY_HEADER, None)
        token = self.metadata_token or client_token
        self.client_guard_headers = {n for n in headers if n.startswith(GUARD_HEADER_PREFIX)}
        self.request_headers = headers
        self.key = self.processor.authorise(token)
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.processor.max_body_bytes:
            raise self._too_large()
        if message.end_of_stream:
            return self._check(b"", phase="request_headers")
        self.awaiting_body = True
        # Headers stay open in BUFFERED mode: the allow headers are set with the body's answer.
        return pb.ProcessingResponse(
            request_headers=pb.HeadersResponse(
                response=pb.CommonResponse(
                    header_mutation=pb.HeaderMutation(remove_headers=[KEY_HEADER])
                )
            )
        )

    def _on_request_body(self, message: Any) -> Any:
        if not self.awaiting_body:
            raise ProtocolError("a request body arrived before its headers, or twice")
        if not message.end_of_stream:
            raise ProtocolError(
                "the request body came in parts (a streamed mode, or trailers after it); the "
                "guard checks whole bodies only: set processing_mode.request_body_mode: BUFFERED"
            )
        if len(message.body) > self.processor.max_body_bytes:
            raise self._too_large()
        self.awaiting_body = False
        return self._check(bytes(message.body), phase="request_body")

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"the request body is over {self.processor.max_body_bytes:,} bytes "
            "(GUARD_API_MAX_BODY_BYTES)"
        )

    def _check(self, body: bytes, *, phase: str) -> Any:
        key = self.key
        assert key is not None
        processor = self.processor
        checked = processor.flow.check_request(
            method=self.method,
            path=self.path,
            headers=self.request_headers,
            body=body,
            requester=key.requester,
        )
        for decision in checked.decisions:
            processor.service.observe(key, decision)
        if not checked.allowed:
            hidden = hidden_from(processor.service.guard.registry, key.tenant)
            return self._immediate(
                denial(checked.decision, hidden, receipt=checked.receipt.to_dict())
            )
        self.checked = checked
        allow = checked.allow_headers()
        mutation = self._mutation(
            allow,
            remove=[KEY_HEADER, *sorted(self.client_guard_headers - allow.keys())],
        )
        common = pb.CommonResponse(header_mutation=mutation)
        if phase == "request_headers":
            return pb.ProcessingResponse(request_headers=pb.HeadersResponse(response=common))
        return pb.ProcessingResponse(request_body=pb.BodyResponse(response=common))

    # -- the response ---------------------------------------------------------------------

    def _on_response_headers(self, message: Any) -> Any:
        if self.status is not None:
            raise ProtocolError("response headers arrived twice on one stream")
        if self.checked is None:
            raise ProtocolError(
                "the upstream answered a request the guard never checked (its body never came: "
                "set processing_mode.request_body_mode: BUFFERED); the answer is withheld"
                if self.awaiting_body
                else "response headers arrived before the request was checked"
            )
        headers, pseudo = self._read(message.headers)
        status_text = pseudo.get(":status", "")
        if not status_text.isdigit():
            raise ProtocolError(f"the upstream's :status {status_text!r} is not a number")
        self.status = int(status_text)
        self.response_headers = headers
        if 300 <= self.status < 400 and "location" in headers:
            return self._respond(b"", phase="response_headers")  # a redirect is withheld
        if not _is_2xx(self.status):
            return pb.ProcessingResponse(response_headers=pb.HeadersResponse())
        if message.end_of_stream:
            return self._respond(b"", phase="response_headers")
        return pb.ProcessingResponse(
            response_headers=pb.HeadersResponse(
                response=pb.CommonResponse(
                    header_mutation=pb.HeaderMutation(remove_headers=["content-length"])
                )
            )
        )

    def _on_response_body(self, message: Any) -> Any:
        if self.status is None:
            raise ProtocolError("a response body arrived before its headers")
        if not _is_2xx(self.status):
            return pb.ProcessingResponse(response_body=pb.BodyResponse())
        if not message.end_of_stream:
            raise ProtocolError(
                "the upstream's answer came in parts (a streamed mode, or trailers after it); "
                "the guard stamps whole bodies only: set processing_mode.response_body_mode: "
                "BUFFERED; the answer is withheld"
            )
        return self._respond(bytes(message.body), phase="response_body")

    def _respond(self, body: bytes, *, phase: str) -> Any:
        assert self.checked is not None and self.status is not None and self.key is not None
        processor = self.processor
        outcome = processor.flow.respond(
            self.checked,
            status=self.status,
            headers=self.response_headers,
            body=body,
            generator=processor.generator,
            generator_version=processor.generator_version,
            hidden=hidden_from(processor.service.guard.registry, self.key.tenant),
        )
        if not outcome.changed:
            if phase == "response_headers":
                return pb.ProcessingResponse(response_headers=pb.HeadersResponse())
            return pb.ProcessingResponse(response_body=pb.BodyResponse())
        if outcome.withheld:  # a problem instead of the answer
            return self._immediate_parts(outcome.status, outcome.body, outcome.set_headers)
        set_headers = dict(outcome.set_headers)
        common = pb.CommonResponse(body_mutation=pb.BodyMutation(body=outcome.body))
        if phase == "response_headers":
            # No body was buffered: replace the whole answer (Envoy drops content-length).
            common.status = pb.CommonResponse.CONTINUE_AND_REPLACE
        else:
            # Envoy (1.29+) refuses a body mutation whose length differs from content-length.
            set_headers["content-length"] = str(len(outcome.body))
        remove = [n for n in outcome.remove_headers if n.lower() not in set_headers]
        common.header_mutation.CopyFrom(self._mutation(set_headers, remove=remove))
        if phase == "response_headers":
            return pb.ProcessingResponse(response_headers=pb.HeadersResponse(response=common))
        return pb.ProcessingResponse(response_body=pb.BodyResponse(response=common))

    # -- messages -------------------------------------------------------------------------

    def _read(self, header_map: Any) -> tuple[dict[str, str], dict[str, str]]:
        """``(headers, pseudo_headers)`` with lower-case names: repeated names joined, and a
        header that says how to read the body, given twice, refused (as every front end)."""
        entries = list(header_map.headers)
        if entries:  # answer in the field Envoy itself uses (its send_header_raw_value flag)
            self.raw_values = any(e.raw_value for e in entries) or not any(e.value for e in entries)
        pairs: list[tuple[str, str]] = []
        pseudo: dict[str, str] = {}
        for entry in entries:
            name = entry.key.lower()
            value = bytes(entry.raw_value).decode("latin-1") if entry.raw_value else entry.value
            if name.startswith(":"):
                pseudo[name] = value
            else:
                pairs.append((name, value))
        return single_headers(pairs), pseudo

    def _header(self, name: str, value: str) -> Any:
        header = (
            base_pb2.HeaderValue(key=name, raw_value=value.encode("utf-8"))
            if self.raw_values
            else base_pb2.HeaderValue(key=name, value=value)
        )
        return base_pb2.HeaderValueOption(header=header, append_action=OVERWRITE)

    def _mutation(self, set_headers: Mapping[str, str], *, remove: Iterable[str] = ()) -> Any:
        return pb.HeaderMutation(
            set_headers=[self._header(n.lower(), v) for n, v in set_headers.items()],
            remove_headers=list(remove),
        )

    def _immediate(self, response: Response) -> Any:
        headers = {n: v for n, v in response.headers.items() if n.lower() != "content-length"}
        return self._immediate_parts(response.status_code, bytes(response.body), headers)

    def _immediate_parts(self, status: int, body: bytes, headers: Mapping[str, str]) -> Any:
        """Envoy answers the client itself with this; it sets content-length."""
        return pb.ProcessingResponse(
            immediate_response=pb.ImmediateResponse(
                status=http_status_pb2.HttpStatus(code=status),
                headers=self._mutation(
                    {n: v for n, v in headers.items() if n.lower() != "content-length"}
                ),
                body=body,
                details=f"likeness_guard_{status}",
            )
        )


def message_limit(settings: Settings) -> int:
    """The largest gRPC message the service takes: a body at the cap, base64 included."""
    return 2 * settings.api_max_body_bytes + MESSAGE_HEADROOM


def build_server(
    processor: ExternalProcessor,
    *,
    host: str = "127.0.0.1",
    port: int = 50051,
    workers: int = DEFAULT_WORKERS,
) -> tuple[grpc.Server, int]:
    """A (not yet started) gRPC server for ``processor`` and the port it is bound to
    (``port=0``: a free one)."""
    limit = message_limit(processor.service.settings)
    server = grpc.server(
        ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ext-proc"),
        options=[
            ("grpc.max_receive_message_length", limit),
            ("grpc.max_send_message_length", limit),
        ],
    )
    pb_grpc.add_ExternalProcessorServicer_to_server(processor, server)
    address = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    try:
        bound = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise ConfigurationError(f"cannot listen on {address}: {exc}") from exc
    if not bound:
        raise ConfigurationError(f"cannot listen on {address}")
    return server, int(bound)


def serve(
    settings: Settings,
    *,
    host: str,
    port: int,
    workers: int = DEFAULT_WORKERS,
    generator: str = "upstream",
    generator_version: str = "unknown",
) -> None:
    """Run until SIGINT or SIGTERM (``guard serve-ext-proc``)."""
    service = Service.build(settings)
    processor = ExternalProcessor(service, generator=generator, generator_version=generator_version)
    server, bound = build_server(processor, host=host, port=port, workers=workers)
    stop = threading.Event()

    def on_signal(_signum: int, _frame: object) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal)
    server.start()
    log.warning("Likeness Guard ext_proc (gRPC) on %s:%d with %d workers", host, bound, workers)
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
        server.stop(grace=10).wait()
        service.guard.close()
