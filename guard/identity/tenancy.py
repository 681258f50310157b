"""Tenants: a requester id is ``<tenant>`` or ``<tenant>/<app>``; everything a tenant owns is
found through these two rules, so there is one definition of "belongs to this tenant"."""

from __future__ import annotations


def tenant_of(requester: str) -> str:
    """The tenant part of a requester id (``tenant/app``); the whole id when it has none."""
    return requester.split("/", 1)[0]


def in_tenant(requester: str, tenant: str) -> bool:
    """Whether a requester id lies in ``tenant`` (is ``tenant`` or ``tenant/...``)."""
    return tenant_of(requester) == tenant
