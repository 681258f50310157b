"""What the upstream answered, made safe to leave: every image in it scanned and stamped in
place, or the whole answer withheld.

A bare image body is stamped. In a JSON body every string that is an image (base64 or a data
URL, wherever it sits: ``data[].b64_json``, ``image``, ``artifacts[].base64``, ``output``) is
scanned with ``Guard.stamp`` and replaced by the watermarked, signed image in the same
encoding; an image identical to one of the request's own (an echo of the input) is left as
it is. An answer the guard cannot make safe is withheld (502): an image it denies, an image
URL (it cannot stamp what it does not have), an image nested where it cannot be replaced, a
body it cannot read. A body with no image in it passes unchanged.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NoReturn

from guard.api.admission import Admission
from guard.api.gateway.adapters import Role
from guard.api.gateway.body import decompressed, parse_json
from guard.api.gateway.sniff import as_text, looks_like_image
from guard.api.gateway.strings import (
    MAX_DEPTH,
    byte_array,
    holds_image,
    names_image_file,
    read_string,
)
from guard.api.problems import PROBLEM_MEDIA_TYPE, denial_code
from guard.errors import GuardError, InvalidInput
from guard.media import output_format_of_media_type, sniff_mime_type
from guard.pipeline import Guard
from guard.policy import Decision
from guard.provenance import StampedImage
from guard.requests import Result, StampRequest

if TYPE_CHECKING:
    from guard.api.gateway.flow import CheckedRequest

Path = tuple[str | int, ...]
_TRANSPORT_HEADERS = frozenset(
    {"content-type", "content-length", "content-encoding", "transfer-encoding", "date", "server"}
)
REPLACED_HEADERS = ("content-length", "content-encoding", "etag", "content-md5", "digest")


@dataclass(frozen=True)
class ResponseOutcome:
    """``changed`` False: send the upstream's answer as it is. Otherwise send ``status``,
    ``body`` and the upstream's headers less ``remove_headers`` plus ``set_headers``."""

    status: int
    changed: bool = False
    withheld: bool = False  # the answer is replaced by a problem (``status``: 502 or 503)
    body: bytes = b""
    set_headers: Mapping[str, str] = field(default_factory=dict)
    remove_headers: tuple[str, ...] = ()
    decisions: tuple[Decision, ...] = ()

    @classmethod
    def unchanged(cls, status: int) -> ResponseOutcome:
        return cls(status)

    @classmethod
    def withholding(
        cls,
        code: str,
        detail: str,
        *,
        decision: Decision | None = None,
        hidden: Callable[[str], bool] | None = None,
        input_decision_id: str | None = None,
        status: int = 502,
    ) -> ResponseOutcome:
        problem: dict[str, object] = {
            "type": f"https://likeness-guard.dev/problems/{code}",
            "title": "Output withheld",
            "status": status,
            "detail": f"{detail}; the upstream's answer is withheld",
            "code": code,
        }
        headers = {"content-type": PROBLEM_MEDIA_TYPE}
        if decision is not None:
            problem["decision"] = decision.to_dict(hidden=hidden) if hidden else decision.to_dict()
            headers["x-guard-decision"] = decision.verdict.value
            headers["x-guard-decision-id"] = decision.decision_id
        if input_decision_id:
            problem["input_decision_id"] = input_decision_id
            headers["x-guard-input-decision-id"] = input_decision_id
        return cls(
            status,
            changed=True,
            withheld=True,
            body=json.dumps(problem).encode(),
            set_headers=headers,
            remove_headers=REPLACED_HEADERS,
            decisions=(decision,) if decision else (),
        )


class _Withhold(Exception):
    def __init__(self, outcome: ResponseOutcome) -> None:
        self.outcome = outcome


def stamp_response(
    guard: Guard,
    admission: Admission,
    checked: CheckedRequest,
    *,
    status: int,
    headers: Mapping[str, str],
    body: bytes,
    generator: str,
    generator_version: str,
    hidden: Callable[[str], bool] | None,
) -> ResponseOutcome:
    stamper = _Stamper(guard, admission, checked, generator, generator_version, hidden)
    try:
        return stamper.response(status, headers, body)
    except _Withhold as withholding:
        return withholding.outcome
    except GuardError as exc:
        unavailable = exc.http_status == 503
        return ResponseOutcome.withholding(
            "unavailable" if unavailable else "output_unreadable",
            f"the guard could not scan the upstream's answer: {exc.message}",
            input_decision_id=checked.decision.decision_id,
            status=503 if unavailable else 502,
        )


class _Stamper:
    def __init__(
        self,
        guard: Guard,
        admission: Admission,
        checked: CheckedRequest,
        generator: str,
        generator_version: str,
        hidden: Callable[[str], bool] | None,
    ) -> None:
        self.guard = guard
        self.admission = admission
        self.hidden = hidden
        self.checked = checked
        self.generator = generator
        self.generator_version = generator_version
        self.results: list[Result] = []
        self.inputs = {image.data for image in checked.images}

    def response(self, status: int, headers: Mapping[str, str], body: bytes) -> ResponseOutcome:
        for name, value in headers.items():
            if name in _TRANSPORT_HEADERS:
                continue
            if read_string(value).kind == "image" or any(
                names_image_file(token) for token in value.replace(",", " ").split()
            ):
                self.withhold(
                    "output_not_stampable",
                    f"the upstream's {name[:64]!r} header carries or points at an image",
                )
        max_bytes = self.guard.settings.api_max_body_bytes
        try:
            body = decompressed(headers.get("content-encoding", ""), body, max_bytes=max_bytes)
        except InvalidInput as exc:
            self.withhold("output_unreadable", exc.message)
        if not body.strip():
            return ResponseOutcome.unchanged(status)
        media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if looks_like_image(body):
            stamped = self.stamp(body, "the upstream's image")
            mime = _provenance(self.results[-1]).mime_type
            return self.changed(status, stamped, content_type=mime)
        if (
            media_type == "application/json"
            or media_type.endswith("+json")
            or (body.lstrip()[:1] in (b"{", b"["))
        ):
            try:
                document = parse_json(body)
            except InvalidInput as exc:
                self.withhold("output_unreadable", f"its JSON cannot be read ({exc.message})")
            replaced = self.json(document, ())
            if not self.results:
                return ResponseOutcome.unchanged(status)
            out = json.dumps(replaced, ensure_ascii=False, separators=(",", ":")).encode()
            return self.changed(status, out, content_type=headers.get("content-type"))
        text = as_text(body)
        if text is None:
            self.withhold(
                "output_not_stampable",
                f"the upstream answered {media_type or 'unlabelled'} binary that is no image "
                "the guard can stamp",
            )
        if read_string(text).kind == "image" or any(map(names_image_file, text.split())):
            self.withhold(
                "output_not_stampable",
                f"the upstream's {media_type or 'unlabelled'} answer carries an image the guard "
                "cannot replace in place (a stream or markup); ask for JSON or the image itself",
            )
        return ResponseOutcome.unchanged(status)

    def json(self, value: object, path: Path) -> object:
        where = "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path).lstrip(".")
        if len(path) > MAX_DEPTH:
            self.withhold("output_unreadable", f"its JSON nests deeper than {MAX_DEPTH}")
        if isinstance(value, dict):
            if any(read_string(key).kind == "image" for key in value):
                self.withhold("output_not_stampable", f"a key at {where} is an image")
            return {key: self.json(item, (*path, key)) for key, item in value.items()}
        if isinstance(value, list):
            if byte_array(value) is not None:
                self.withhold("output_not_stampable", f"{where} is an image as an array of bytes")
            return [self.json(item, (*path, index)) for index, item in enumerate(value)]
        if not isinstance(value, str) or not value.strip():
            return value
        declared = self.checked.route.adapter.response_role(path)
        read = read_string(value)
        if read.kind == "image":
            if read.image in self.inputs:
                return value  # the request's own image, echoed back
            stamped = self.stamp(read.image, f"the image at {where}")
            mime = _provenance(self.results[-1]).mime_type
            encoded = base64.b64encode(stamped).decode("ascii")
            return f"data:{mime};base64,{encoded}" if value.lstrip()[:5] == "data:" else encoded
        if names_image_file(value) or (
            read.kind == "url" and not (declared and declared.role is Role.LINK)
        ):
            self.withhold(
                "output_not_stampable",
                f"the upstream answered a URL at {where or 'the top level'}; the guard can only "
                "watermark and sign images it is given, so ask the API for base64 output",
            )
        if read.kind == "json" and holds_image(read.nested):
            self.withhold(
                "output_not_stampable",
                f"the upstream nested an image inside the JSON string at {where}",
            )
        return value

    def stamp(self, data: bytes, what: str) -> bytes:
        checked = self.checked
        if len(self.results) >= self.guard.settings.gateway_max_images:
            self.withhold(
                "too_many_images",
                f"the upstream answered more than {self.guard.settings.gateway_max_images} images",
            )
        mime = sniff_mime_type(data)
        request = StampRequest(
            image=data,
            requester=checked.requester,
            generator=self.generator,
            generator_version=self.generator_version,
            operation=checked.operation,
            prompt=checked.prompt,
            source_image=checked.source_image,
            output_format=output_format_of_media_type(mime) if mime else None,
        )
        # The request was admitted when it was checked: its answer waits its turn rather than
        # be refused after the upstream did the work. The source is weighed too: the stamp
        # decodes it again for the manifest's parent ingredient.
        with self.admission.admitted(data, checked.source_image, queue_full_ok=True):
            result = self.guard.stamp(request)
        if result.image is None or result.provenance is None:
            self.withhold(
                denial_code(result.decision),
                f"the guard denied {what}",
                decision=result.decision,
            )
        self.results.append(result)
        return result.image

    def changed(self, status: int, body: bytes, *, content_type: str | None) -> ResponseOutcome:
        results = self.results
        last = results[-1].decision
        headers = {
            "x-guard-decision": last.verdict.value,
            "x-guard-decision-id": ",".join(r.decision.decision_id for r in results),
            "x-guard-input-decision-id": self.checked.decision.decision_id,
            "x-guard-watermark-record": ",".join(_provenance(r).record_id for r in results),
            "x-guard-manifest-label": ",".join(_provenance(r).manifest_label for r in results),
        }
        if content_type:
            headers["content-type"] = content_type
        return ResponseOutcome(
            status,
            changed=True,
            body=body,
            set_headers=headers,
            remove_headers=REPLACED_HEADERS,
            decisions=tuple(r.decision for r in results),
        )

    def withhold(self, code: str, detail: str, *, decision: Decision | None = None) -> NoReturn:
        raise _Withhold(
            ResponseOutcome.withholding(
                code,
                detail,
                decision=decision,
                hidden=self.hidden,
                input_decision_id=self.checked.decision.decision_id,
            )
        )


def _provenance(result: Result) -> StampedImage:
    assert result.provenance is not None  # only allowed results are kept
    return result.provenance
