"""A small image-generation app (the classic editor behind ``POST /generate``) wrapped in
``GuardMiddleware``: the guard checks each request before the app sees it and stamps the image
the app returns.

    .venv/bin/uvicorn examples.gateway.asgi_app:guarded_app --factory --port 8081
    curl -F image=@photo.jpg -F operation=relight http://127.0.0.1:8081/generate -o out.png

The generation app knows nothing about consent, watermarks or C2PA; wrapping it is the whole
integration. Settings come from ``GUARD_*`` variables (run ``guard init`` first).
"""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from guard.api import GuardMiddleware
from guard.editors import ClassicEditor
from guard.faces import FaceEngine
from guard.media import decode_image, encode_image
from guard.pipeline import Guard


def generation_app(face_engine: FaceEngine) -> Starlette:
    """The app being wrapped: edits the uploaded photo and answers with a PNG."""
    editor = ClassicEditor()

    async def generate(request: Request) -> Response:
        form = await request.form()
        upload = form.get("image")
        operation = str(form.get("operation") or "relight")
        if not isinstance(upload, UploadFile) or operation not in editor.operations:
            return JSONResponse(
                {"error": f"send an image and one of {sorted(editor.operations)}"},
                status_code=400,
            )
        rgb = decode_image(await upload.read()).rgb
        edited = editor.edit(rgb, face_engine.detect_and_embed(rgb), operation, {})
        return Response(encode_image(edited, "png"), media_type="image/png")

    async def health(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[Route("/generate", generate, methods=["POST"]), Route("/health", health)]
    )


def wrap(guard: Guard, *, requester: str = "acme/studio") -> GuardMiddleware:
    return GuardMiddleware(
        generation_app(guard.face_engine),
        guard=guard,
        requester=requester,
        generator="acme-classic-studio",
        generator_version="1.0",
        paths={"/generate"},
        default_operation="relight",
    )


def guarded_app() -> GuardMiddleware:
    """Uvicorn factory."""
    return wrap(Guard())
