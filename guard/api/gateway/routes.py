"""Which adapter reads which path: the route map (``GUARD_GATEWAY_ROUTES``).

A YAML file names path patterns and the adapter of the API behind them; ``*`` matches within
one path segment, ``**`` across segments; the first matching route wins, and a path no route
matches is read by ``default`` (the guard's own generic shape unless the file says otherwise)::

    default: generic
    routes:
      - path: /v1/images/edits
        adapter: openai-images
        operation: edit
      - path: /v1/flux-kontext-*
        adapter: bfl-flux
        operation: edit

Without the setting, :data:`BUILT_IN_ROUTES` apply: the documented paths of the APIs the
adapters know. Paths are normalised before matching (percent-decoding, ``//`` and ``..``),
as the upstream's router would see them, so an encoded path cannot pick a laxer adapter.
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from guard.api.gateway.adapters import Adapter, adapter_named
from guard.config import Settings
from guard.errors import ConfigurationError, GuardError


@dataclass(frozen=True)
class Route:
    """Requests to ``pattern`` are read by ``adapter``; ``operation`` is theirs unless a
    header or a declared field says otherwise."""

    pattern: str
    adapter: Adapter
    operation: str | None = None

    def matches(self, path: str) -> bool:
        return bool(_path_regex(self.pattern).fullmatch(path))


class _RouteFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    class Entry(BaseModel):
        model_config = ConfigDict(extra="forbid")
        path: str
        adapter: str
        operation: str | None = None

    default: str = "generic"
    routes: list[Entry] = []


BUILT_IN_ROUTES: tuple[tuple[str, str, str | None], ...] = (
    ("/v1/images/edits", "openai-images", "prompt_edit"),
    ("/v1/images/variations", "openai-images", "prompt_edit"),
    ("/v1/images/generations", "openai-images", "generate"),
    ("/v1/flux-kontext-*", "bfl-flux", "prompt_edit"),
    ("/v1/flux-*", "bfl-flux", None),
    (
        "/api/v1/services/aigc/multimodal-generation/generation",
        "dashscope-qwen-image-edit",
        "prompt_edit",
    ),
    ("/v1/predictions", "replicate", None),
    ("/v1/models/*/*/predictions", "replicate", None),
    ("/v1/deployments/*/*/predictions", "replicate", None),
    ("/v2beta/stable-image/**", "stability", None),
    ("/v1/generation/*/image-to-image", "stability", "prompt_edit"),
    ("/v1/generation/*/image-to-image/**", "stability", "prompt_edit"),
)


@dataclass(frozen=True)
class RouteMap:
    routes: tuple[Route, ...]
    default: Adapter

    def route_for(self, path: str) -> Route:
        """The route of a request path (its query string is ignored)."""
        normal = normalise_path(path)
        for route in self.routes:
            if route.matches(normal):
                return route
        return Route("**", self.default)

    @classmethod
    def built_in(cls) -> RouteMap:
        return cls(
            tuple(Route(p, adapter_named(a), op) for p, a, op in BUILT_IN_ROUTES),
            adapter_named("generic"),
        )

    @classmethod
    def load(cls, path: Path) -> RouteMap:
        """Read a route file; any mistake is a :class:`ConfigurationError` naming it."""
        where = f"GUARD_GATEWAY_ROUTES={path}"
        try:
            parsed = _RouteFile.model_validate(yaml.safe_load(path.read_text("utf-8")) or {})
            return cls(
                tuple(Route(e.path, adapter_named(e.adapter), e.operation) for e in parsed.routes),
                adapter_named(parsed.default),
            )
        except OSError as exc:
            raise ConfigurationError(f"{where} cannot be read: {exc.strerror}") from None
        except (yaml.YAMLError, ValidationError) as exc:
            raise ConfigurationError(f"{where} is not a valid route file: {exc}") from None
        except GuardError as exc:
            raise ConfigurationError(f"{where}: {exc.message}") from None

    @classmethod
    def from_settings(cls, settings: Settings) -> RouteMap:
        if settings.gateway_routes is None:
            return cls.built_in()
        return cls.load(settings.gateway_routes)


def normalise_path(path: str, *, encoded: bool = True) -> str:
    """The path an upstream router matches: no query, percent-decoded once (``encoded``:
    ``False`` for a path a server decoded already), ``.``/``..`` and repeated slashes
    resolved."""
    path = path.split("?", 1)[0].split("#", 1)[0]
    if encoded:
        path = urllib.parse.unquote(path)
    normal = posixpath.normpath("/" + path.lstrip("/"))
    return "/" + normal.lstrip("/")


def _path_regex(pattern: str) -> re.Pattern[str]:
    pieces = re.split(r"(\*\*|\*)", pattern)
    regex = "".join(
        ".*" if piece == "**" else "[^/]*" if piece == "*" else re.escape(piece) for piece in pieces
    )
    return re.compile(regex)
