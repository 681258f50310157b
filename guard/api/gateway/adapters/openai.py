"""OpenAI Images API (``openai-images``): ``https://api.openai.com/v1/images/...``.

Requests
--------
``POST /v1/images/edits`` (GPT image models and ``dall-e-2``) takes either body:

- ``multipart/form-data`` (``CreateImageEditRequest``): ``image`` (one file, or several for
  GPT image models; the official SDKs send a list as repeated ``image[]`` parts, the curl
  examples write ``-F "image[]=@a.png" -F "image[]=@b.png"``), an optional ``mask`` file (a PNG
  whose transparent areas mark the edit; it applies to the first image), ``prompt``, and
  text parameters (``model``, ``n``, ``size``, ``quality``, ``background``,
  ``input_fidelity``, ``output_format``, ``output_compression``, ``response_format``,
  ``stream``, ``partial_images``, ``user``);
- ``application/json`` (``EditImageBodyJsonParam``): ``images`` is an array of
  ``ImageRefParam`` objects, each ``{"image_url": "<URL or base64 data URL>"}`` or
  ``{"file_id": "file-..."}`` (up to 16), ``mask`` is one ``ImageRefParam``, plus ``prompt``
  and the same text parameters. A data URL is checked; an ``https`` URL or a ``file_id``
  names an image the guard cannot see, so it refuses (``unverifiable_image_reference``):
  send the image itself.

``POST /v1/images/variations`` (``dall-e-2``): multipart, one ``image`` file, no prompt.
``POST /v1/images/generations``: JSON with ``prompt`` and text parameters, no image.

Responses
---------
``ImagesResponse``: ``{"created": ..., "data": [{"b64_json": "...", "revised_prompt":
"..."}], "usage": {...}}``. ``data[].b64_json`` is stamped in place; ``data[].url`` (``dall-e-2``
with ``response_format=url``, valid for 60 minutes) withholds the response, because the guard
cannot stamp an image it does not hold: ask for ``response_format=b64_json`` (GPT image models
always answer base64). With ``stream=true`` the answer is ``text/event-stream``; each event's
JSON (``image_edit.partial_image``, ``image_edit.completed``, ``image_generation.*``) carries
a top-level ``b64_json``, declared too so that an event read as JSON is stamped.

The operation is not in the body: it defaults to ``generate``; the route for ``/v1/images/edits``
and ``/v1/images/variations`` says ``edit``.

Verified against the OpenAI OpenAPI description (``openai/openai-openapi``: ``createImageEdit``
with both content types, ``EditImageBodyJsonParam``, ``ImageRefParam`` with exactly
``image_url`` and ``file_id``, ``ImagesResponse``) as mirrored by generated clients, and the
API reference for ``/images/edits`` (multipart ``image``/``mask``; the JSON form's ``images``
array). Not verified: whether the server also accepts several plain ``image`` parts (declared
repeatable anyway: every one is checked, so accepting them is safe).
"""

from __future__ import annotations

from guard.api.gateway.adapters.base import Adapter, Field, Role

ADAPTER = Adapter(
    name="openai-images",
    title="OpenAI Images",
    json_fields=(
        Field("images[].image_url", Role.INPUT),
        Field("images[].file_id", Role.INPUT),
        Field("mask.image_url", Role.MASK),
        Field("mask.file_id", Role.MASK),
        Field("prompt", Role.PROMPT),
    ),
    form_fields=(
        Field("image", Role.INPUT, repeatable=True),
        Field("image[]", Role.INPUT, repeatable=True),
        Field("mask", Role.MASK),
        Field("prompt", Role.PROMPT),
    ),
    response_fields=(
        Field("data[].b64_json", Role.OUTPUT),
        Field("data[].url", Role.OUTPUT),
        Field("b64_json", Role.OUTPUT),
    ),
)
