"""``/v1/flags``: usage-monitoring flags on this tenant's keys (admins list and clear them;
clearing lifts the throttle)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from guard.api.auth import require, service_of
from guard.api.flags import UsageFlag
from guard.api.keys import ApiKey, Role
from guard.api.routes.common import COMMON_ERRORS, CONFLICT, NOT_FOUND
from guard.api.schemas import FlagOut

router = APIRouter(prefix="/v1/flags", tags=["usage"])
_admin = require(Role.ADMIN)


def _flag_body(flag: UsageFlag) -> dict[str, Any]:
    return {
        "id": flag.id,
        "key_id": flag.key_id,
        "rule": flag.rule,
        "detail": flag.detail,
        "created_at": flag.created_at.isoformat(),
        "cleared_at": flag.cleared_at.isoformat() if flag.cleared_at else None,
    }


@router.get("", response_model=list[FlagOut], responses=COMMON_ERRORS)
def list_flags(
    request: Request,
    key: Annotated[ApiKey, Depends(_admin)],
    include_cleared: Annotated[bool, Query()] = False,
) -> Any:
    flags = service_of(request).flags.list_flags(key.tenant, include_cleared=include_cleared)
    return [_flag_body(f) for f in flags]


@router.post(
    "/{flag_id}/clear",
    response_model=FlagOut,
    responses={**COMMON_ERRORS, **NOT_FOUND, **CONFLICT},
)
def clear_flag(request: Request, flag_id: str, key: Annotated[ApiKey, Depends(_admin)]) -> Any:
    return _flag_body(service_of(request).flags.clear(flag_id, key.tenant))
