"""Tenant and requester names: the one rule every key, subject and grant goes through. A name
that could pass for the operator ("*"), another tenant, or a path is refused."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guard.errors import InvalidInput
from guard.identity import check_requester, check_tenant, in_tenant, tenant_of


@pytest.mark.parametrize("tenant", ["acme", "a", "tenant-b", "x.y_z", "9lives"])
def test_valid_tenants(tenant: str) -> None:
    assert check_tenant(tenant) == tenant


@pytest.mark.parametrize("tenant", ["", "*", "ACME", "acme/app", " acme", "-acme", "a" * 65])
def test_invalid_tenants_are_refused(tenant: str) -> None:
    with pytest.raises(InvalidInput):
        check_tenant(tenant)


@pytest.mark.parametrize("requester", ["acme", "acme/app", "acme/Photo-App.v2"])
def test_valid_requesters(requester: str) -> None:
    assert check_requester(requester, "acme") == requester


@pytest.mark.parametrize(
    "requester",
    [
        "acme/../evil",
        "acme/..",
        "acme/a/b",
        "acme/",
        "globex/app",
        "acmeco",
        "*",
        "acme/" + "a" * 129,
    ],
)
def test_invalid_requesters_are_refused(requester: str) -> None:
    with pytest.raises(InvalidInput):
        check_requester(requester, "acme")


@given(st.text(max_size=80), st.text(max_size=80))
def test_an_accepted_requester_always_lies_in_its_tenant(tenant: str, requester: str) -> None:
    """Whatever the strings, a name both rules accept belongs to exactly that tenant."""
    try:
        check_tenant(tenant)
        check_requester(requester, tenant)
    except InvalidInput:
        return
    assert in_tenant(requester, tenant) and tenant_of(requester) == tenant
