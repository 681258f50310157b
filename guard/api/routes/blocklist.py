"""``/v1/blocklist``: the public-figure blocklist (global to the deployment: only the operator
reads and changes it; every tenant key gets 403). Changes are saved in the database as a new
generation, atomically; every worker of every host picks it up within ``GUARD_BLOCKLIST_POLL_S``
(this one at once), and the next decision audits it in force.

Each answer carries ``ETag: "<generation>"``. A change may send it back as ``If-Match``: when the
blocklist moved on since, the change is refused with 409 and nothing is saved (so two operators
editing at once cannot overwrite each other unseen). Two changes made at once from the same
generation, with or without ``If-Match``, never both save: the later one gets 409."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Header, Request, Response, UploadFile
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
from guard.errors import Conflict, InvalidInput
from guard.identity import Blocklist, PublicFigure, build_from_folder, reference_face

router = APIRouter(prefix="/v1/blocklist", tags=["blocklist"])
_operator = require(*OPERATOR)
_GENERATION_TAG = re.compile(r'"(\d{1,18})"')
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='The ETag of the blocklist this change was based on (`"<generation>"`, as '
        "GET /v1/blocklist gives it): refused with 409 when the blocklist moved on since.",
    ),
]


def expected_generation(if_match: str | None) -> int | None:
    """The generation an ``If-Match`` header names (None without one); 400 when malformed.
    Only one strong tag is meaningful here: the blocklist is at one generation."""
    if if_match is None:
        return None
    match = _GENERATION_TAG.fullmatch(if_match.strip())
    if match is None:
        raise InvalidInput(
            f"If-Match {if_match[:40]!r} is not a blocklist ETag: send the ETag of "
            'GET /v1/blocklist as it is, e.g. If-Match: "12"'
        )
    return int(match.group(1))


def _tag(response: Response, generation: int) -> None:
    response.headers["ETag"] = f'"{generation}"'


class FigureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    figure_id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{0,127}$", examples=["tom-hanks"])
    name: str = Field(min_length=1, max_length=200)
    aliases: list[str] = []


@router.get("", response_model=BlocklistOut, responses=COMMON_ERRORS)
def get_blocklist(
    request: Request, response: Response, _key: Annotated[ApiKey, Depends(_operator)]
) -> Any:
    # Read fresh from the database: an operator about to edit must see (and tag) the newest
    # generation, not this worker's replica of up to GUARD_BLOCKLIST_POLL_S ago.
    blocklist = service_of(request).guard.blocklists.load()
    _tag(response, blocklist.generation)
    return {
        "generation": blocklist.generation,
        "engine": blocklist.engine_name,
        "figures": [figure_body(f) for f in blocklist.list_figures()],
    }


def _actor(key: ApiKey) -> str:
    return f"key:{key.id}"


def _changed(
    service: Service,
    change: Callable[[Blocklist], PublicFigure],
    key: ApiKey,
    expected: int | None,
) -> tuple[Any, int]:
    """Apply ``change``; the changed figure's body and the generation it was saved as."""
    saved: list[Blocklist] = []

    def edit(blocklist: Blocklist) -> PublicFigure:
        saved.append(blocklist)  # the store sets its generation when it is saved
        return change(blocklist)

    figure = service.guard.blocklists.update(edit, actor=_actor(key), expected=expected)
    return figure_body(figure), saved[0].generation


def _add(
    service: Service, figure: FigureIn, photos: list[bytes], key: ApiKey, expected: int | None
) -> tuple[Any, int]:
    guard = service.guard
    embeddings = [
        reference_face(guard.faces_in(data), f"photo {index}").embedding
        for index, data in enumerate(photos)
    ]
    return _changed(
        service,
        lambda blocklist: blocklist.add_figure(
            figure.figure_id, figure.name, embeddings, aliases=figure.aliases
        ),
        key,
        expected,
    )


@router.post(
    "/figures",
    status_code=201,
    response_model=FigureOut,
    responses={**COMMON_ERRORS, **UPLOAD_ERRORS, **CONFLICT},
    summary="Add a figure or more reference photos (params: FigureIn)",
)
async def add_figure(
    request: Request,
    response: Response,
    key: Annotated[ApiKey, Depends(_operator)],
    params: Annotated[str, Form(description="JSON: figure_id, name, aliases.")],
    images: Annotated[list[UploadFile], File(description="Reference photos of the figure.")],
    if_match: IfMatch = None,
) -> Any:
    expected = expected_generation(if_match)
    figure = parse_json_part(params, FigureIn, "params")
    photos = [await image_bytes(image, "images") for image in images]
    service = service_of(request)
    body, generation = await run_in_threadpool(
        service.admission.run, photos, _add, service, figure, photos, key, expected
    )
    _tag(response, generation)
    return body


@router.delete(
    "/figures/{figure_id}",
    response_model=FigureOut,
    responses={**COMMON_ERRORS, **NOT_FOUND, **CONFLICT},
)
def remove_figure(
    request: Request,
    response: Response,
    figure_id: str,
    key: Annotated[ApiKey, Depends(_operator)],
    if_match: IfMatch = None,
) -> Any:
    expected = expected_generation(if_match)
    body, generation = _changed(
        service_of(request), lambda blocklist: blocklist.remove_figure(figure_id), key, expected
    )
    _tag(response, generation)
    return body


@router.post("/rebuild", response_model=RebuildOut, responses={**COMMON_ERRORS, **CONFLICT})
def rebuild(
    request: Request,
    response: Response,
    key: Annotated[ApiKey, Depends(_operator)],
    if_match: IfMatch = None,
) -> Any:
    """Rebuild the whole blocklist from ``GUARD_BLOCKLIST_SOURCE_DIR``
    (``<figure-id>/<photo>`` files, optional ``figure.json``). Runs in the request: large
    folders take a while (about 0.3 s per photo here). With ``If-Match``, refused (409) when
    the blocklist moved on since that generation."""
    expected = expected_generation(if_match)
    service = service_of(request)
    source = service.settings.blocklist_source_dir
    if source is None:
        raise Conflict(
            "this deployment has no GUARD_BLOCKLIST_SOURCE_DIR to rebuild the blocklist from"
        )
    blocklist, problems = build_from_folder(source, service.guard.face_engine)
    service.guard.blocklists.replace(blocklist, actor=_actor(key), expected=expected)
    _tag(response, blocklist.generation)
    return {
        "generation": blocklist.generation,
        "figures": len(blocklist),
        "problems": [f"{p.figure_id}/{p.photo}: {p.message}" for p in problems],
    }
