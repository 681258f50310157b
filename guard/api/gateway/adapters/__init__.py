"""Declared request adapters: one module per API family the gateway stands in front of.

Each module defines one ``ADAPTER`` (:class:`Adapter`, pure data: see
:mod:`guard.api.gateway.adapters.base` for the pattern syntax and the roles);
:data:`ADAPTERS` holds them by name and :func:`adapter_named` finds one for a setting.

- ``generic``: the guard's own shape (``image``, ``mask``, ``prompt``, ``operation``; a bare
  image body);
- ``openai-images``: OpenAI ``/v1/images/edits``, ``/variations``, ``/generations``;
- ``bfl-flux``: Black Forest Labs FLUX (Kontext, FLUX.2, 1.1 [pro], Fill, Expand, Canny,
  Depth);
- ``dashscope-qwen-image-edit``: Alibaba Cloud Model Studio, Qwen image editing;
- ``replicate``: Replicate predictions;
- ``stability``: Stability AI v2beta and v1 image endpoints.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from guard.api.gateway.adapters import bfl, dashscope, generic, openai, replicate, stability
from guard.api.gateway.adapters.base import Adapter, Field, Role
from guard.errors import ConfigurationError

ADAPTERS: Mapping[str, Adapter] = MappingProxyType(
    {
        module.ADAPTER.name: module.ADAPTER
        for module in (generic, openai, bfl, dashscope, replicate, stability)
    }
)
"""Every adapter, by name."""


def adapter_named(name: str) -> Adapter:
    """The adapter called ``name``; :class:`ConfigurationError` listing the known names if none
    is."""
    try:
        return ADAPTERS[name]
    except KeyError:
        known = ", ".join(sorted(ADAPTERS))
        raise ConfigurationError(
            f"there is no gateway adapter named {name!r}; the adapters are: {known}"
        ) from None


__all__ = ["ADAPTERS", "Adapter", "Field", "Role", "adapter_named"]
