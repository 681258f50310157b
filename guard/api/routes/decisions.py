"""``/v1/checks``, ``/v1/edits``, ``/v1/stamps`` and ``/v1/verify``: the guard's own work.

Each takes multipart form data: image parts plus a ``params`` part holding JSON. A check without
an image (a prompt only) may instead send those params as an ``application/json`` body. An allowed
answer is 200 with the decision, its audit receipt(s) and, for edits and stamps, the stamped
image inline (base64) with its provenance. A denial is a problem (403; 503 when the guard could
not decide) carrying the decision and receipts. Uploads are checked (size, type, decodability)
before anything is decided or written.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload
from starlette.responses import JSONResponse

from guard.api.auth import ALL_ROLES, WRITERS, require, service_of
from guard.api.json_text import lone_surrogate_in
from guard.api.keys import ApiKey
from guard.api.routes.common import (
    COMMON_ERRORS,
    DENIED,
    NOT_FOUND,
    UPLOAD_ERRORS,
    Model,
    Responses,
    denial,
    parse_json_body,
    parse_json_part,
)
from guard.api.schemas import (
    CheckOut,
    CheckParams,
    EditParams,
    ReleaseOut,
    StampParams,
    VerifyOut,
)
from guard.api.service import Service
from guard.api.uploads import image_bytes
from guard.api.views import (
    hidden_from,
    image_body,
    outcome_body,
    own_subject,
    receipt_body,
)
from guard.audit import Receipt
from guard.errors import InvalidInput, UnprocessableInput, UnsupportedMedia
from guard.policy import Decision
from guard.requests import CheckRequest, EditRequest, Result, StampRequest

router = APIRouter(prefix="/v1", tags=["decisions"])
_ERRORS: Responses = {**COMMON_ERRORS, **UPLOAD_ERRORS, **DENIED}

ParamsPart = Annotated[str, Form(description="JSON; see the schema named in the summary.")]
ImagePart = Annotated[UploadFile, File(description="JPEG, PNG, WebP, GIF, BMP or TIFF.")]


def params_part(raw: str, model: type[Model]) -> Model:
    """A ``params`` part (JSON). Strings holding a lone surrogate (``"\\ud800"``) are no text:
    422 ``invalid_text``, as for a JSON body, before the part is read into ``model``."""
    if lone_surrogate_in(raw):
        raise UnprocessableInput(
            "a string in the 'params' part holds a lone surrogate, which is not text",
            code="invalid_text",
        )
    return parse_json_part(raw, model, "params")


def _release(
    result: Result, service: Service, key: ApiKey, **extra: Any
) -> dict[str, Any] | JSONResponse:
    """The response to an edit or stamp. Runs in the threadpool: the tenant's view of the
    decisions reads the registry."""
    hidden = hidden_from(service.guard.registry, key.tenant)
    receipts = [receipt_body(r) for r in result.receipts]
    if result.image is None or result.provenance is None:
        return denial(
            result.decision,
            hidden,
            input_decision=result.input_decision.to_dict(hidden=hidden),
            receipts=receipts,
        )
    return {**outcome_body(result, hidden), "image": image_body(result.provenance), **extra}


# Both bodies a check takes, written out: FastAPI derives a request body from the handler's
# parameters, and a handler cannot declare a JSON body and form parts at once.
_CHECK_FORM = {
    "type": "object",
    "required": ["params"],
    "additionalProperties": False,
    "properties": {
        "params": {"type": "string", "description": "JSON: the fields of CheckParams."},
        "image": {
            "type": "string",
            "contentMediaType": "application/octet-stream",
            "description": "Optional input image: JPEG, PNG, WebP, GIF, BMP or TIFF.",
        },
    },
}
CHECK_BODY = {
    "required": True,
    "content": {
        "application/json": {"schema": CheckParams.model_json_schema()},
        "multipart/form-data": {"schema": _CHECK_FORM},
    },
}


async def check_input(request: Request) -> tuple[CheckParams, bytes | None]:
    """A check's params and optional image, from a JSON body (params only) or form data (a
    ``params`` part holding JSON, an optional ``image`` part). Anything else is 415; unknown
    fields or parts are refused, not ignored, so a misspelt field cannot pass unnoticed."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media_type == "application/json":
        return parse_json_body(await request.body(), CheckParams), None
    if media_type not in ("multipart/form-data", "application/x-www-form-urlencoded"):
        raise UnsupportedMedia(
            f"a check is sent as application/json or multipart/form-data, not "
            f"{media_type or 'an untyped body'}"
        )
    async with request.form() as form:
        unknown = sorted(set(form.keys()) - {"params", "image"})
        if unknown:
            raise InvalidInput(f"unknown form parts {unknown}; a check takes 'params' and 'image'")
        params, image = form.get("params"), form.get("image")
        if not isinstance(params, str):
            raise InvalidInput("the 'params' part (JSON: operation, prompt) is missing")
        parsed = params_part(params, CheckParams)
        if isinstance(image, StarletteUpload):
            return parsed, await image_bytes(image, "image")
        if image:  # a text part where a file belongs
            raise InvalidInput("the 'image' part must be a file")
        return parsed, None


@router.post(
    "/checks",
    response_model=CheckOut,
    responses=_ERRORS,
    summary="Pre-generation gate (CheckParams as JSON, or multipart with an image)",
    openapi_extra={"requestBody": CHECK_BODY},
)
async def create_check(request: Request, key: Annotated[ApiKey, Depends(require(*WRITERS))]) -> Any:
    """May this key's requester do ``operation`` to this image and/or prompt? Nothing is
    edited; the decision is audited. A prompt-only check may send ``CheckParams`` as a JSON
    body; one with an image sends multipart form data (``params`` as JSON, ``image``)."""
    parsed, data = await check_input(request)
    service = service_of(request)
    decision, receipt = await run_in_threadpool(
        service.admission.run,
        (data,),
        service.guard.check_with_receipt,
        CheckRequest(
            requester=key.requester, operation=parsed.operation, image=data, prompt=parsed.prompt
        ),
    )
    await run_in_threadpool(service.observe, key, decision)
    return await run_in_threadpool(_checked, decision, receipt, service, key)


def _checked(
    decision: Decision, receipt: Receipt, service: Service, key: ApiKey
) -> dict[str, Any] | JSONResponse:
    hidden = hidden_from(service.guard.registry, key.tenant)
    if not decision.allowed:
        return denial(decision, hidden, receipt=receipt_body(receipt))
    return {"decision": decision.to_dict(hidden=hidden), "receipt": receipt_body(receipt)}


def edit_request(service: Service, parsed: EditParams, key: ApiKey, data: bytes) -> EditRequest:
    """The edit ``parsed`` asks for, as ``key``'s requester; a named subject that is not the
    key's tenant's is 404 before anything is decided (an edit now, or a job)."""
    for subject_id in parsed.subject_ids:
        own_subject(service.guard.registry, subject_id, key.tenant)
    return EditRequest(
        image=data,
        operation=parsed.operation,
        requester=key.requester,
        prompt=parsed.prompt,
        params=parsed.params,
        output_format=parsed.output_format,
    )


@router.post(
    "/edits",
    response_model=ReleaseOut,
    responses={**_ERRORS, **NOT_FOUND},
    summary="Gate, edit, scan and stamp (params: EditParams)",
)
async def create_edit(
    request: Request,
    key: Annotated[ApiKey, Depends(require(*WRITERS))],
    params: ParamsPart,
    image: ImagePart,
) -> Any:
    """Run an edit through the whole guard. The stamped image comes back inline
    (``image.data_base64``) in the same response; it is not kept by the service."""
    parsed = params_part(params, EditParams)
    data = await image_bytes(image, "image")
    service = service_of(request)
    edit = await run_in_threadpool(edit_request, service, parsed, key, data)
    result = await run_in_threadpool(service.edit, edit)
    await run_in_threadpool(service.observe, key, result.input_decision)
    matched = {
        str(reason.evidence.get("subject_id"))
        for face in result.input_decision.faces
        for reason in face.reasons
    }
    undetected = [s for s in parsed.subject_ids if s not in matched]
    return await run_in_threadpool(
        _release, result, service, key, undetected_subject_ids=undetected
    )


@router.post(
    "/stamps",
    response_model=ReleaseOut,
    responses=_ERRORS,
    summary="Scan and stamp an image another generator made (params: StampParams)",
)
async def create_stamp(
    request: Request,
    key: Annotated[ApiKey, Depends(require(*WRITERS))],
    params: ParamsPart,
    image: ImagePart,
    source_image: Annotated[
        UploadFile | None, File(description="The generator's input, if any (parent ingredient).")
    ] = None,
) -> Any:
    """The post-generation half of a gateway: the output is scanned under the policy's output
    rules; if allowed it is watermarked, signed and audited, and comes back inline."""
    parsed = params_part(params, StampParams)
    data = await image_bytes(image, "image")
    source = await image_bytes(source_image, "source_image") if source_image else None
    service = service_of(request)
    result = await run_in_threadpool(
        service.admission.run,
        (data, source),
        service.guard.stamp,
        StampRequest(
            image=data,
            requester=key.requester,
            generator=parsed.generator,
            generator_version=parsed.generator_version,
            operation=parsed.operation,
            prompt=parsed.prompt,
            source_image=source,
            output_format=parsed.output_format,
        ),
    )
    await run_in_threadpool(service.observe, key, result.decision)
    return await run_in_threadpool(_release, result, service, key)


@router.post(
    "/verify",
    response_model=VerifyOut,
    responses={**COMMON_ERRORS, **UPLOAD_ERRORS},
    summary="Provenance verification report",
)
async def verify(
    request: Request,
    key: Annotated[ApiKey, Depends(require(*ALL_ROLES))],
    image: ImagePart,
) -> Any:
    """Is this image an output of this guard, unaltered, and under which decision? Reads the
    C2PA manifest, else recovers it by watermark or fingerprint (``outcome``). A fingerprint
    leads only to stamps of the calling key's tenant (another tenant's stamp reads as nobody's),
    and never for a picture with too little in it to identify (flat colours, gradients, tiny
    images)."""
    data = await image_bytes(image, "image")
    service = service_of(request)
    guard = service.guard
    # Through Provenance rather than Guard.verify, which answers for the whole deployment (the
    # library, the CLI): here the scope is the calling key's tenant (only tenants' roles may
    # call this route, so there is always one).
    report = await run_in_threadpool(
        service.admission.run,
        (data,),
        partial(guard.provenance.verify, tenant=key.tenant),
        data,
        guard.decode,
    )
    return report.to_dict()
