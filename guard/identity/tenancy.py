"""Tenants: a requester id is ``<tenant>`` or ``<tenant>/<app>``; everything a tenant owns is
found through these two rules, so there is one definition of "belongs to this tenant"."""

from __future__ import annotations

import re

from guard.errors import InvalidInput

# "*" (the operator's keys) and "/" (the requester separator) can never be part of a tenant.
TENANT_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


def check_tenant(tenant: str) -> str:
    """``tenant`` if it is a valid tenant name, else :class:`InvalidInput`."""
    if not TENANT_NAME.match(tenant):
        raise InvalidInput(
            f"tenant {tenant!r} must be 1-64 lowercase letters, digits, '.', '_' or '-'"
        )
    return tenant


_APP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_requester(requester: str, tenant: str) -> str:
    """``requester`` if it is ``tenant`` or ``tenant/<app>`` (one plain name: letters, digits,
    '.', '_', '-'), else :class:`InvalidInput` (a grantee is a requester too)."""
    app = requester[len(tenant) + 1 :] if requester.startswith(f"{tenant}/") else None
    if requester != tenant and (app is None or not _APP.match(app) or app in {".", ".."}):
        raise InvalidInput(
            f"requester {requester[:80]!r} must be '{tenant}' or '{tenant}/<app>' (app: up to "
            "128 letters, digits, '.', '_' or '-')"
        )
    return requester


def tenant_of(requester: str) -> str:
    """The tenant part of a requester id (``tenant/app``); the whole id when it has none."""
    return requester.split("/", 1)[0]


def in_tenant(requester: str, tenant: str) -> bool:
    """Whether a requester id lies in ``tenant`` (is ``tenant`` or ``tenant/...``)."""
    return tenant_of(requester) == tenant
