"""Authentication and roles, as FastAPI dependencies.

A key goes in ``Authorization: Bearer lg_…`` or ``x-guard-api-key: lg_…`` (the Envoy endpoint
reads only the latter, so a client's own ``Authorization`` header for the upstream API is never
mistaken for a guard key). Unknown or revoked key → 401; a role not allowed here → 403.
"""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from guard.api.keys import ApiKey, Role
from guard.api.service import Service
from guard.errors import Forbidden, Unauthenticated

bearer = HTTPBearer(auto_error=False, description="An API key from `guard keys create`.")
key_header = APIKeyHeader(
    name="x-guard-api-key", auto_error=False, description="An API key from `guard keys create`."
)

# The roles of a tenant's keys; the operator (no tenant) is named only where it may act.
ALL_ROLES = (Role.ADMIN, Role.INTEGRATOR, Role.AUDITOR)
WRITERS = (Role.ADMIN, Role.INTEGRATOR)
READERS = (Role.ADMIN, Role.AUDITOR)
OPERATOR = (Role.OPERATOR,)


def service_of(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


def _authorised(request: Request, token: str | None, roles: tuple[Role, ...]) -> ApiKey:
    if not token:
        raise Unauthenticated(
            "send an API key as 'Authorization: Bearer lg_…' or 'x-guard-api-key: lg_…' "
            "(create one with `guard keys create`)"
        )
    key = service_of(request).authenticate(token)
    if key.role not in roles:
        raise Forbidden(
            f"the {key.role.value} role may not do this; it needs one of "
            f"{', '.join(r.value for r in roles)}"
        )
    return key


def require(*roles: Role) -> Callable[..., ApiKey]:
    """A dependency that yields the calling key if its role is one of ``roles``."""

    def dependency(
        request: Request,
        credentials: HTTPAuthorizationCredentials | None = Security(bearer),  # noqa: B008
        header_key: str | None = Security(key_header),
    ) -> ApiKey:
        token = header_key or (credentials.credentials if credentials else None)
        return _authorised(request, token, roles)

    return dependency


def require_gateway_key(*roles: Role) -> Callable[..., ApiKey]:
    """Like :func:`require`, reading only ``x-guard-api-key`` (for the Envoy endpoint)."""

    def dependency(
        request: Request,
        header_key: str | None = Security(key_header),
    ) -> ApiKey:
        return _authorised(request, header_key, roles)

    return dependency
