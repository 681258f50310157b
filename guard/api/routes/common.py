"""Helpers the routers share: JSON form parts, denial problems, documented error responses."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.responses import JSONResponse

from guard.api.problems import PROBLEM_MEDIA_TYPE, denial_code, denial_status, problem
from guard.api.schemas import Problem
from guard.errors import InvalidInput
from guard.policy import Decision

Model = TypeVar("Model", bound=BaseModel)


def _problem_doc(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "model": Problem,
        "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


Responses = dict[int | str, dict[str, Any]]

COMMON_ERRORS: Responses = {
    400: _problem_doc("The request is malformed (a body that cannot be parsed, a bad value)."),
    401: _problem_doc("No API key, or an unknown or revoked one."),
    403: _problem_doc("The key's role may not do this."),
    422: _problem_doc("The request does not match the API."),
    429: _problem_doc("Over the key's rate limit; see Retry-After."),
    503: _problem_doc("A component the answer depends on is unavailable (fail closed)."),
}
NOT_FOUND: Responses = {404: _problem_doc("No such object in this tenant.")}
CONFLICT: Responses = {409: _problem_doc("The change conflicts with the current state.")}
GONE: Responses = {410: _problem_doc("It existed, and was deleted when its retention ended.")}
UPLOAD_ERRORS: Responses = {
    400: _problem_doc("The upload is malformed."),
    413: _problem_doc("The body or image is over a size or pixel limit."),
    415: _problem_doc("The part is not an accepted image type."),
    422: _problem_doc("The image cannot be decoded, or the params do not match the API."),
}
DENIED: Responses = {
    403: _problem_doc(
        "Denied by policy, or the key's role may not do this; a denial's `type` ends with the "
        "reason code and the body carries the decision and its audit receipt(s)."
    )
}


def parse_json_body(raw: bytes, model: type[Model]) -> Model:
    """A JSON request body a handler reads itself, refused exactly as FastAPI refuses the
    bodies it parses (422 ``invalid_request`` listing each problem under ``body``)."""
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
        ) from exc


def parse_json_part(raw: str, model: type[Model], field: str) -> Model:
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or field}: {e['msg']}" for e in exc.errors()
        )
        raise InvalidInput(f"the '{field}' part is not valid: {problems}") from exc


def denial(
    decision: Decision, hidden: Callable[[str], bool] | None = None, **extensions: Any
) -> JSONResponse:
    """A denied decision as a problem (403, or 503 when the guard could not decide), with the
    caller's view of the decision in ``decision`` (``hidden``: subjects it may not see)."""
    body = decision.to_dict(hidden=hidden) if hidden else decision.to_dict()
    code = denial_code(decision)
    detail = next((r["message"] for r in body["reasons"] if r["code"] == code), "denied")
    return problem(
        denial_status(decision),
        code,
        detail,
        title="Denied by policy" if denial_status(decision) == 403 else "Guard unavailable",
        headers={"x-guard-decision": "deny", "x-guard-decision-id": decision.decision_id},
        decision=body,
        **extensions,
    )
