"""The guard's own request shape (``generic``): what a generator written for the guard sends.

Documented in ``docs/service.md`` ("Gateway plugins", "Gateway adapters"); it is the shape
:mod:`guard.api.gateway.extract` read before adapters existed, plus a mask:

- JSON: ``{"image": "<base64 or data URL>", "mask": "...", "prompt": "...",
  "operation": "edit"}``;
- multipart form data or urlencoded: an ``image`` part (a file part, or base64 text), ``mask``,
  ``prompt`` and ``operation`` fields;
- a bare image body (``Content-Type: image/png`` or anything else that is an image).

Only those exact names are declared, each once. ``image[]``, ``images``, ``input_image``,
``init_image``, ``Image`` or ``input.image`` are other APIs' names: under this adapter an image
there is unclaimed and refuses the request (``unrecognised_image_field``), which is the point:
route such an API to its own adapter instead.

Responses: nothing is declared. An image anywhere in a JSON response is stamped in place; a
URL anywhere in it withholds the response (the guard cannot stamp what it does not hold).
"""

from __future__ import annotations

from guard.api.gateway.adapters.base import Adapter, Field, Role

ADAPTER = Adapter(
    name="generic",
    title="generic",
    json_fields=(
        Field("image", Role.INPUT),
        Field("mask", Role.MASK),
        Field("prompt", Role.PROMPT),
        Field("operation", Role.OPERATION),
    ),
    form_fields=(
        Field("image", Role.INPUT),
        Field("mask", Role.MASK),
        Field("prompt", Role.PROMPT),
        Field("operation", Role.OPERATION),
    ),
    raw_body=Role.INPUT,
)
