"""Alibaba Cloud Model Studio / DashScope, Qwen image editing (``dashscope-qwen-image-edit``):
``POST /api/v1/services/aigc/multimodal-generation/generation`` on
``dashscope-intl.aliyuncs.com`` (Singapore) or ``dashscope.aliyuncs.com`` (Beijing), with the
models ``qwen-image-edit``, ``qwen-image-edit-plus``, ``qwen-image-edit-max`` and their dated
versions (and the ``qwen-image-2.0`` family, which edits through the same call).

Request (JSON)
--------------
::

    {"model": "qwen-image-edit-plus",
     "input": {"messages": [{"role": "user", "content": [
         {"image": "<URL, data:image/...;base64,... or oss:// temporary URL>"},
         {"image": "..."},
         {"text": "Make the girl from Image 1 wear the black dress from Image 2"}]}]},
     "parameters": {"n": 2, "negative_prompt": " ", "prompt_extend": true,
                    "watermark": false, "size": "1536*1024", "seed": 42}}

Each content item holds one ``image`` (1 to 3 input images in the single user message) or
one ``text`` (the instruction, the prompt). ``model``, ``input.messages[].role`` and every
``parameters`` member are text or numbers; ``parameters.negative_prompt`` is what the output
should avoid, not an instruction, so it is not a prompt. An image given as a public URL or an
``oss://`` temporary URL refuses (``unverifiable_image_reference``): send it as a base64 data
URL.

Response
--------
``{"output": {"choices": [{"finish_reason": "stop", "message": {"role": "assistant",
"content": [{"image": "https://dashscope-result-....oss-....aliyuncs.com/...png?Expires=..."}]}}]},
"usage": {"width", "height", "image_count"}, "request_id": ...}``. The images are signed URLs
(valid 24 hours) and DashScope offers no base64 answer, so a successful response is withheld.

The operation is not in the body (``generate`` by default); the route says ``edit``.

Verified against the Model Studio "Qwen image editing API reference" (alibabacloud.com
help, ``qwen-image-edit-api``) and the Qwen Cloud API reference for
``/services/aigc/multimodal-generation/generation``: request and response examples above.
Not verified: whether a ``text`` item may precede the images or several user messages are
accepted (the patterns do not depend on either).
"""

from __future__ import annotations

from guard.api.gateway.adapters.base import Adapter, Field, Role

ADAPTER = Adapter(
    name="dashscope-qwen-image-edit",
    title="DashScope Qwen-Image-Edit",
    json_fields=(
        Field("input.messages[].content[].image", Role.INPUT),
        Field("input.messages[].content[].text", Role.PROMPT),
    ),
    response_fields=(Field("output.choices[].message.content[].image", Role.OUTPUT),),
)
