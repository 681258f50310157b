"""Black Forest Labs API (``bfl-flux``): ``https://api.bfl.ai/v1/...`` (also the regional
``api.eu.bfl.ai`` / ``api.us.bfl.ai``). Every generation endpoint takes a JSON body, answers at
once with a task to poll, and the result is fetched later.

Requests (JSON; every image is base64 or an ``http(s)`` URL, and a URL refuses:
``unverifiable_image_reference``)
-------------------------------------------------------------------------------------------
- FLUX.1 Kontext ``/v1/flux-kontext-pro``, ``/v1/flux-kontext-max`` (``FluxKontextProInputs``):
  ``prompt``, ``input_image`` and the experimental multi-reference ``input_image_2`` …
  ``input_image_4``;
- FLUX.2 ``/v1/flux-2-pro``, ``/v1/flux-2-max``, ``/v1/flux-2-flex``, ``/v1/flux-2-klein-4b``,
  ``/v1/flux-2-klein-9b``: ``prompt``, ``input_image``, ``input_image_2`` … ``input_image_8``
  (up to 8 references through the API, 4 for [klein]). Declared as ``input_image`` and
  ``input_image_*``;
- FLUX 1.1 [pro] ``/v1/flux-pro-1.1`` and ``/v1/flux-pro-1.1-ultra`` (``FluxUltraInput``):
  ``prompt`` and ``image_prompt`` (an image to remix, Redux-style; a reference);
- Fill ``/v1/flux-pro-1.0-fill`` (``FluxProFillInputs``): ``image`` (may carry an alpha mask),
  ``mask``, ``prompt``; Expand ``/v1/flux-pro-1.0-expand``: ``image``, ``top``/``bottom``/
  ``left``/``right``, ``prompt``;
- Canny ``/v1/flux-pro-1.0-canny`` and Depth ``/v1/flux-pro-1.0-depth`` (``CannyInputs``,
  ``DepthInputs``): ``control_image`` and ``preprocessed_image`` (a ready edge or depth map):
  both references;
- every endpoint: ``webhook_url`` (a link, not an image) and ``webhook_secret`` (text), plus
  text and number parameters (``seed``, ``aspect_ratio``, ``output_format``,
  ``safety_tolerance``, ``prompt_upsampling``, ``steps``, ``guidance``, ...).

Responses
---------
The POST answers ``{"id": ..., "polling_url": "https://api.bfl.ai/v1/get_result?id=..."}``
(``AsyncResponse``; also ``cost``, ``input_mp``, ``output_mp``), or with a webhook
``{"id": ..., "status": ..., "webhook_url": ...}`` (``AsyncWebhookResponse``): both URLs are
links. The poll ``GET /v1/get_result?id=...`` answers ``{"id", "status": "Ready", "result":
{"sample": "<signed URL, valid 10 minutes>", "prompt", "seed", ...}}``: ``result.sample`` is
the image, as a URL, so a ready result is withheld (the guard cannot stamp what it does not
hold). BFL offers no base64 result; put the guard in front of whatever downloads the sample,
or use the guard's own edit endpoint. The webhook BFL posts to ``webhook_url`` carries the same
``result`` but does not pass through this gateway.

The operation is not in the body (``generate`` by default); the routes for Kontext, FLUX.2
with an input image, Fill and Expand say ``edit``.

Verified against BFL's OpenAPI description (``https://api.bfl.ai/openapi.json``, as copied into
public MCP tool docs: ``/v1/flux-kontext-pro``, ``/v1/flux-pro-1.0-fill``, ``-expand``,
``-canny``, ``/v1/flux-pro-1.1-ultra`` request and response schemas) and BFL's docs and help
pages (FLUX.2 multi-reference: up to 8 images through the API). Not verified: the exact
``input_image_N`` ceiling of each FLUX.2 model (the wildcard covers any N), and the full
``get_result`` schema beyond ``result.sample`` (``preview``/``details`` are not documented as
carrying images; an image or URL there would be stamped or withhold the response).
"""

from __future__ import annotations

from guard.api.gateway.adapters.base import Adapter, Field, Role

ADAPTER = Adapter(
    name="bfl-flux",
    title="Black Forest Labs FLUX",
    json_fields=(
        Field("prompt", Role.PROMPT),
        Field("input_image", Role.INPUT),
        Field("input_image_*", Role.INPUT),
        Field("image", Role.INPUT),
        Field("mask", Role.MASK),
        Field("control_image", Role.REFERENCE),
        Field("preprocessed_image", Role.REFERENCE),
        Field("image_prompt", Role.REFERENCE),
        Field("webhook_url", Role.LINK),
    ),
    response_fields=(
        Field("polling_url", Role.LINK),
        Field("webhook_url", Role.LINK),
        Field("result.sample", Role.OUTPUT),
    ),
)
