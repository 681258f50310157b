"""Stability AI REST API (``stability``): ``https://api.stability.ai``.

Requests
--------
v2beta, ``multipart/form-data`` (every image is a file part):

- ``/v2beta/stable-image/generate/sd3``, ``/core``, ``/ultra``: ``prompt``, and for
  image-to-image (sd3 ``mode=image-to-image``, ultra) ``image`` with ``strength``;
- ``/v2beta/stable-image/edit/inpaint``: ``image``, ``mask``, ``prompt``; ``/erase``:
  ``image``, ``mask``; ``/outpaint``: ``image``, ``left``/``right``/``up``/``down``,
  ``prompt``; ``/remove-background``: ``image``; ``/search-and-replace``: ``image``,
  ``prompt`` and ``search_prompt`` (what to replace: a prompt too); ``/search-and-recolor``:
  ``image``, ``prompt`` and ``select_prompt`` (what to recolour);
  ``/replace-background-and-relight`` (asynchronous): ``subject_image`` (the input),
  ``background_reference`` and ``light_reference`` (references), ``background_prompt`` and
  ``foreground_prompt`` (prompts);
- ``/v2beta/stable-image/control/sketch``, ``/structure``: ``image`` (the control image),
  ``prompt``; ``/style``: ``image`` (the style source), ``prompt``; ``/style-transfer``:
  ``init_image`` (the input) and ``style_image`` (a reference), optional ``prompt``;
- ``/v2beta/stable-image/upscale/fast``, ``/conservative``, ``/creative``: ``image`` (and
  ``prompt`` for the last two).

``image`` is declared an input everywhere, including where it is a control or style source:
it is checked the same way. ``negative_prompt`` (what to avoid) is text, not a prompt, and so
are the numeric and enum parameters (``seed``, ``output_format``, ``strength``,
``grow_mask``, ``style_preset``, ...).

v1 (legacy), ``/v1/generation/{engine_id}/image-to-image`` and ``.../image-to-image/masking``,
``multipart/form-data``: ``init_image``, ``mask_image`` (with ``mask_source=MASK_IMAGE_WHITE``
or ``MASK_IMAGE_BLACK``), ``text_prompts[0][text]`` (prompts, with ``text_prompts[0][weight]``),
``image_strength``, ``cfg_scale``, ``samples``, ``steps``; ``.../text-to-image`` takes JSON
with ``text_prompts: [{"text", "weight"}]`` and no image.

Responses
---------
With ``Accept: application/json`` a v2beta answer is ``{"image": "<base64>", "finish_reason",
"seed"}`` and a v1 answer ``{"artifacts": [{"base64", "seed", "finishReason"}]}``: both
images are stamped in place. With ``Accept: image/*`` the answer is the image itself (the
gateway stamps a binary image response). Asynchronous endpoints answer ``{"id": ...}`` and the
result is fetched with ``GET /v2beta/results/{id}`` (the same two answer shapes).

The operation is not in the body (``generate`` by default); the routes for ``edit/*``,
``control/*``, ``upscale/*`` and image-to-image say ``edit``.

Verified against the Stability REST API reference as mirrored in public schema collections
and the Comfy Router schemas generated from it (``control/style-transfer``: ``init_image``,
``style_image``; ``edit/replace-background-and-relight``: ``subject_image``,
``background_reference``, ``light_reference``; ``control/style``: ``image``), and Stability's
own ``rest-api-support`` examples for v1 (``init_image``, ``text_prompts``). Not verified
against the live service: ``select_prompt`` on search-and-recolor and the exact v1 masking
field set (from memory of the v1 reference and client libraries).
"""

from __future__ import annotations

from guard.api.gateway.adapters.base import Adapter, Field, Role

ADAPTER = Adapter(
    name="stability",
    title="Stability AI",
    json_fields=(Field("text_prompts[].text", Role.PROMPT),),
    form_fields=(
        Field("image", Role.INPUT),
        Field("mask", Role.MASK),
        Field("prompt", Role.PROMPT),
        Field("search_prompt", Role.PROMPT),
        Field("select_prompt", Role.PROMPT),
        Field("subject_image", Role.INPUT),
        Field("background_reference", Role.REFERENCE),
        Field("light_reference", Role.REFERENCE),
        Field("background_prompt", Role.PROMPT),
        Field("foreground_prompt", Role.PROMPT),
        Field("init_image", Role.INPUT),
        Field("style_image", Role.REFERENCE),
        Field("mask_image", Role.MASK),
        Field("text_prompts[*][text]", Role.PROMPT),
    ),
    response_fields=(
        Field("image", Role.OUTPUT),
        Field("artifacts[].base64", Role.OUTPUT),
    ),
)
