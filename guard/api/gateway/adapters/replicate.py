"""Replicate predictions (``replicate``): ``https://api.replicate.com``.

Requests (JSON)
---------------
``POST /v1/predictions`` (``{"version": "<model version id>", "input": {...}}``),
``POST /v1/models/{owner}/{name}/predictions`` and
``POST /v1/deployments/{owner}/{name}/predictions`` (``{"input": {...}}``), each with optional
``webhook`` (a link), ``webhook_events_filter`` and ``stream``. ``input`` is the model's own
schema, so the adapter names the image fields of the image models it is meant for:

- ``input.prompt``: the prompt;
- ``input.image`` (``qwen/qwen-image-edit``, ``black-forest-labs/flux-fill-pro``,
  ``stability-ai/sdxl``, ``ideogram-ai/*``), ``input.input_image``
  (``black-forest-labs/flux-kontext-pro|max``), ``input.input_images[]``
  (``black-forest-labs/flux-2-pro|max|flex``), ``input.image_input[]`` (``google/nano-banana``,
  ``bytedance/seedream-4``) and ``input.init_image`` (older Stable Diffusion img2img):
  input images;
- ``input.mask``: a mask (``flux-fill-pro``, ``sdxl`` inpainting, ``ideogram``);
- ``input.control_image`` (``black-forest-labs/flux-canny-pro|depth-pro``),
  ``input.image_prompt`` (``black-forest-labs/flux-1.1-pro`` Redux) and
  ``input.reference_images[]`` (``runwayml/gen4-image``): reference images.

A file input is an ``https`` URL or a ``data:`` URL; only the data URL can be checked, so any
URL in an image field refuses (``unverifiable_image_reference``), as does a file uploaded with
``POST /v1/files`` and referenced by its URL. An image in any other ``input`` member refuses
too (``unrecognised_image_field``): a model whose image field is not listed here needs it
added, with its role.

Responses
---------
The prediction object: ``{"id", "model", "version", "input": {...}, "output": ..., "status",
"error", "logs", "metrics", "created_at", "urls": {"get", "cancel", "stream", "web"}}``.
``output`` is a file URL or a list of them (``https://replicate.delivery/...``): declared as
the output, so a finished prediction with URL output is withheld (the guard cannot stamp what
it does not hold); a ``data:`` URL there is stamped in place. ``urls.*`` are links. Note that
``input`` is echoed back: an image echoed there (as the data URL it was sent as) is stamped
like any image in a response, and a URL echoed there withholds the response.

The operation is not in the body (``generate`` by default); a route can say ``edit``.

Verified against Replicate's HTTP API reference and webhook docs (prediction body: ``version``,
``input``, ``webhook``, ``webhook_events_filter``; prediction object and ``urls``) and the
models' published input schemas on replicate.com (``flux-1.1-pro``: ``image_prompt``;
``nano-banana``: ``image_input`` array; ``flux-kontext-*``: ``input_image``; ``flux-2-pro``:
``input_images``). Not verified: whether the synchronous mode (``Prefer: wait``) can answer
``output`` as data URLs rather than ``replicate.delivery`` URLs, and the exact schema of every
model named above (a model's schema is its own and can change with a new version).
"""

from __future__ import annotations

from guard.api.gateway.adapters.base import Adapter, Field, Role

ADAPTER = Adapter(
    name="replicate",
    title="Replicate predictions",
    json_fields=(
        Field("input.prompt", Role.PROMPT),
        Field("input.image", Role.INPUT),
        Field("input.input_image", Role.INPUT),
        Field("input.input_images[]", Role.INPUT),
        Field("input.image_input[]", Role.INPUT),
        Field("input.init_image", Role.INPUT),
        Field("input.mask", Role.MASK),
        Field("input.control_image", Role.REFERENCE),
        Field("input.image_prompt", Role.REFERENCE),
        Field("input.reference_images[]", Role.REFERENCE),
        Field("webhook", Role.LINK),
    ),
    response_fields=(
        Field("output", Role.OUTPUT),
        Field("output[]", Role.OUTPUT),
        Field("urls.*", Role.LINK),
    ),
)
