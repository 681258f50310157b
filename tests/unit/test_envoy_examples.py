"""The Envoy configurations in examples/gateway/ are valid Envoy v3 bootstraps (there is no
envoy binary here: they are read into ``envoy.config.bootstrap.v3.Bootstrap``, every typed
config resolved, unknown fields refused) and say what the README promises: fail closed, whole
bodies both ways, the key never in the HTTP request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.extensions.filters.http.ext_authz.v3 import ext_authz_pb2
from envoy.extensions.filters.http.ext_proc.v3 import ext_proc_pb2, processing_mode_pb2
from envoy.extensions.filters.http.router.v3 import router_pb2
from envoy.extensions.filters.network.http_connection_manager.v3 import (
    http_connection_manager_pb2,
)
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2
from google.protobuf import json_format

# Imported for their descriptors: the typed_config messages the files name must be known for
# their Any fields to resolve.
TYPED_CONFIGS = (ext_authz_pb2, ext_proc_pb2, router_pb2, http_connection_manager_pb2)
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "gateway"


def bootstrap(name: str) -> Any:
    return json_format.ParseDict(
        yaml.safe_load((EXAMPLES / name).read_text("utf-8")), bootstrap_pb2.Bootstrap()
    )


def http_filter(config: Any, name: str, message: Any) -> Any:
    manager = config.static_resources.listeners[0].filter_chains[0].filters[0]
    hcm = http_connection_manager_pb2.HttpConnectionManager()
    assert manager.typed_config.Unpack(hcm)
    names = [f.name for f in hcm.http_filters]
    assert names[-1] == "envoy.filters.http.router"
    found = message()
    assert hcm.http_filters[names.index(name)].typed_config.Unpack(found)
    return found


@pytest.mark.parametrize("name", ["envoy-ext-authz.yaml", "envoy-ext-proc.yaml"])
def test_the_example_configs_are_envoy_bootstraps(name: str) -> None:
    assert bootstrap(name).static_resources.listeners


def test_the_ext_proc_config_fails_closed_with_whole_bodies() -> None:
    config = bootstrap("envoy-ext-proc.yaml")
    ext_proc = http_filter(config, "envoy.filters.http.ext_proc", ext_proc_pb2.ExternalProcessor)
    assert ext_proc.failure_mode_allow is False
    mode = ext_proc.processing_mode
    modes = processing_mode_pb2.ProcessingMode
    assert (mode.request_header_mode, mode.response_header_mode) == (modes.SEND, modes.SEND)
    assert (mode.request_body_mode, mode.response_body_mode) == (modes.BUFFERED, modes.BUFFERED)
    assert ext_proc.message_timeout.seconds >= 30
    assert ext_proc.max_message_timeout.seconds >= ext_proc.message_timeout.seconds
    [metadata] = ext_proc.grpc_service.initial_metadata
    assert (metadata.key, metadata.value) == ("x-guard-api-key", "${GUARD_GATEWAY_KEY}")

    clusters = {c.name: c for c in config.static_resources.clusters}
    guard = clusters[ext_proc.grpc_service.envoy_grpc.cluster_name]
    options = guard.typed_extension_protocol_options[
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
    ]
    assert "HttpProtocolOptions" in options.type_url
    protocol = http_protocol_options_pb2.HttpProtocolOptions()
    assert options.Unpack(protocol)
    assert protocol.explicit_http_config.HasField("http2_protocol_options")

    def port(cluster: Any) -> int:
        endpoint = cluster.load_assignment.endpoints[0].lb_endpoints[0].endpoint
        return int(endpoint.address.socket_address.port_value)

    assert port(guard) == 50051
    assert port(clusters["openai_stub"]) == 9000
    listener = config.static_resources.listeners[0]
    assert listener.address.socket_address.address == "127.0.0.1"
    assert listener.address.socket_address.port_value == 10000
    # Envoy buffers whole bodies: its 1 MiB default would refuse a photo.
    assert listener.per_connection_buffer_limit_bytes.value >= 32 * 1024 * 1024


def test_the_ext_authz_config_fails_closed() -> None:
    ext_authz = http_filter(
        bootstrap("envoy-ext-authz.yaml"), "envoy.filters.http.ext_authz", ext_authz_pb2.ExtAuthz
    )
    assert ext_authz.failure_mode_allow is False
    assert ext_authz.with_request_body.allow_partial_message is False
