"""``/v1/blocklist``: the public-figure blocklist (global to the deployment: only the operator
reads and changes it; every tenant key gets 403). Changes are saved as a new generation,
atomically; every worker picks the new generation up on its next decision, and the next decision
audits it in force."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from guard.api.auth import OPERATOR, require, service_of
from guard.api.keys import ApiKey
from guard.api.routes.common import (
    COMMON_ERRORS,
    CONFLICT,
    NOT_FOUND,
    UPLOAD_ERRORS,
    parse_json_part,
)
from guard.api.schemas import BlocklistOut, FigureOut, RebuildOut
from guard.api.service import Service
from guard.api.uploads import image_bytes
from guard.api.views import figure_body
from guard.errors import Conflict
from guard.identity import build_from_folder, reference_face

router = APIRouter(prefix="/v1/blocklist", tags=["blocklist"])
_operator = require(*OPERATOR)


class FigureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    figure_id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$", examples=["tom-hanks"])
    name: str = Field(min_length=1, max_length=200)
    aliases: list[str] = []


@router.get("", response_model=BlocklistOut, responses=COMMON_ERRORS)
def get_blocklist(request: Request, _key: Annotated[ApiKey, Depends(_operator)]) -> Any:
    blocklist = service_of(request).guard.blocklists.current()
    return {
        "generation": blocklist.generation,
        "engine": blocklist.engine_name,
        "figures": [figure_body(f) for f in blocklist.list_figures()],
    }


def _actor(key: ApiKey) -> str:
    return f"key:{key.id}"


def _add(service: Service, figure: FigureIn, photos: list[bytes], key: ApiKey) -> Any:
    guard = service.guard
    embeddings = [
        reference_face(guard.faces_in(data), f"photo {index}").embedding
        for index, data in enumerate(photos)
    ]
    added = guard.blocklists.update(
        lambda blocklist: blocklist.add_figure(
            figure.figure_id, figure.name, embeddings, aliases=figure.aliases
        ),
        actor=_actor(key),
    )
    return figure_body(added)


@router.post(
    "/figures",
    status_code=201,
    response_model=FigureOut,
    responses={**COMMON_ERRORS, **UPLOAD_ERRORS},
    summary="Add a figure or more reference photos (params: FigureIn)",
)
async def add_figure(
    request: Request,
    key: Annotated[ApiKey, Depends(_operator)],
    params: Annotated[str, Form(description="JSON: figure_id, name, aliases.")],
    images: Annotated[list[UploadFile], File(description="Reference photos of the figure.")],
) -> Any:
    figure = parse_json_part(params, FigureIn, "params")
    photos = [await image_bytes(image, "images") for image in images]
    service = service_of(request)
    return await run_in_threadpool(
        service.admission.run, photos, _add, service, figure, photos, key
    )


def _remove(service: Service, figure_id: str, key: ApiKey) -> Any:
    removed = service.guard.blocklists.update(
        lambda blocklist: blocklist.remove_figure(figure_id), actor=_actor(key)
    )
    return figure_body(removed)


@router.delete(
    "/figures/{figure_id}", response_model=FigureOut, responses={**COMMON_ERRORS, **NOT_FOUND}
)
def remove_figure(
    request: Request, figure_id: str, key: Annotated[ApiKey, Depends(_operator)]
) -> Any:
    return _remove(service_of(request), figure_id, key)


@router.post("/rebuild", response_model=RebuildOut, responses={**COMMON_ERRORS, **CONFLICT})
def rebuild(request: Request, key: Annotated[ApiKey, Depends(_operator)]) -> Any:
    """Rebuild the whole blocklist from ``GUARD_BLOCKLIST_SOURCE_DIR``
    (``<figure-id>/<photo>`` files, optional ``figure.json``). Runs in the request: large
    folders take a while (about 0.3 s per photo here)."""
    service = service_of(request)
    source = service.settings.blocklist_source_dir
    if source is None:
        raise Conflict(
            "this deployment has no GUARD_BLOCKLIST_SOURCE_DIR to rebuild the blocklist from"
        )
    blocklist, problems = build_from_folder(source, service.guard.face_engine)
    service.guard.blocklists.replace(blocklist, actor=_actor(key))
    return {
        "generation": blocklist.generation,
        "figures": len(blocklist),
        "problems": [f"{p.figure_id}/{p.photo}: {p.message}" for p in problems],
    }
