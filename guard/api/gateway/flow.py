"""The gateway's one flow, shared by ext_authz, ext_proc and ``GuardMiddleware``: read a
request by its route's adapter, check every image it carries, and scan and stamp what the
upstream answers.

    flow = GatewayFlow(guard, RouteMap.from_settings(guard.settings))
    checked = flow.check_request(method="POST", path="/v1/images/edits", headers=headers,
                                 body=body, requester="acme/app")
    if checked.allowed:
        ...forward, then:
        outcome = flow.respond(checked, status=200, headers=upstream_headers, body=upstream_body,
                               generator="gpt-image-1", generator_version="2025-04")

Both calls are synchronous and CPU-bound (faces are detected and embedded): front ends run
them in a worker thread, and the image work holds a place in the flow's admission (one per
process; :mod:`guard.api.admission`). Bad or unaccountable input raises an ``InvalidInput``
before anything is audited: every image is decoded before the first check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from guard.api.admission import Admission
from guard.api.gateway.body import parse_body
from guard.api.gateway.claims import FoundImage, claim_request
from guard.api.gateway.responses import ResponseOutcome, stamp_response
from guard.api.gateway.routes import Route, RouteMap
from guard.audit import Receipt
from guard.pipeline import Guard
from guard.policy import Decision
from guard.requests import CheckRequest


@dataclass(frozen=True)
class CheckedRequest:
    """A request's decisions: one per image it carries (in order, stopping at the first
    denial), or one for its prompt alone. It is allowed only if every one allows."""

    route: Route
    requester: str
    operation: str
    prompt: str
    images: tuple[FoundImage, ...]
    decisions: tuple[Decision, ...]
    receipts: tuple[Receipt, ...] = field(repr=False)

    @property
    def allowed(self) -> bool:
        return all(decision.allowed for decision in self.decisions)

    @property
    def decision(self) -> Decision:
        """The deciding decision: the denial, or the last of the allows."""
        return self.decisions[-1]

    @property
    def receipt(self) -> Receipt:
        return self.receipts[-1]

    @property
    def source_image(self) -> bytes | None:
        """The image the upstream edits (the first input), the output's parent ingredient."""
        return next((i.data for i in self.images if i.role.value == "input"), None)

    def allow_headers(self) -> dict[str, str]:
        """What an allowed request carries upstream (and Envoy copies to the client)."""
        return {
            "x-guard-decision": self.decision.verdict.value,
            "x-guard-decision-id": self.decision.decision_id,
            "x-guard-decision-ids": ",".join(d.decision_id for d in self.decisions),
            "x-guard-audit-index": str(self.receipt.leaf_index),
        }


class GatewayFlow:
    def __init__(
        self,
        guard: Guard,
        routes: RouteMap,
        *,
        admission: Admission | None = None,
        default_operation: str = "generate",
    ):
        self.guard = guard
        self.routes = routes
        self.admission = admission or Admission.from_settings(guard.settings)
        self.default_operation = default_operation

    def check_request(
        self,
        *,
        method: str,
        path: str,
        headers: Mapping[str, str],
        body: bytes,
        requester: str,
    ) -> CheckedRequest:
        """Check what a request to ``path`` (its query string included: images there are
        refused too) asks for. ``headers`` have lower-case names."""
        settings = self.guard.settings
        path, _, query = path.partition("?")
        route = self.routes.route_for(path)
        readings = parse_body(headers, body, max_bytes=settings.api_max_body_bytes)
        claimed = claim_request(
            route.adapter,
            readings,
            max_images=settings.gateway_max_images,
            query=query,
            headers=headers,
        )
        # A known API's path says what it does; the caller may not name a laxer operation.
        operation = (
            route.operation
            or headers.get("x-guard-operation")
            or claimed.operation
            or self.default_operation
        )
        images: tuple[bytes | None, ...] = tuple(i.data for i in claimed.images) or (None,)
        decisions: list[Decision] = []
        receipts: list[Receipt] = []
        with self.admission.admitted(*images):
            for found in claimed.images:  # refuse undecodable input before anything is audited
                self.guard.decode(found.data)
            for image in images:
                decision, receipt = self.guard.check_with_receipt(
                    CheckRequest(
                        requester=requester,
                        operation=operation,
                        image=image,
                        prompt=claimed.prompt,
                    )
                )
                decisions.append(decision)
                receipts.append(receipt)
                if not decision.allowed:
                    break
        return CheckedRequest(
            route=route,
            requester=requester,
            operation=operation,
            prompt=claimed.prompt,
            images=claimed.images,
            decisions=tuple(decisions),
            receipts=tuple(receipts),
        )

    def respond(
        self,
        checked: CheckedRequest,
        *,
        status: int,
        headers: Mapping[str, str],
        body: bytes,
        generator: str,
        generator_version: str = "unknown",
        hidden: Callable[[str], bool] | None = None,
    ) -> ResponseOutcome:
        """What the client gets instead of the upstream's answer: unchanged (no image in
        it), stamped (every image in it scanned, watermarked and signed in place) or
        withheld (502: an image was denied, or is out of reach — a URL, an unreadable body).
        ``hidden`` says which subjects the caller may not see in a withheld decision (another
        tenant's), as for denials."""
        if 300 <= status < 400 and "location" in headers:
            return ResponseOutcome.withholding(
                "output_not_stampable",
                f"the upstream redirected ({status}) to what the guard cannot check or stamp",
                input_decision_id=checked.decision.decision_id,
            )
        if not 200 <= status < 300:
            return ResponseOutcome.unchanged(status)
        return stamp_response(
            self.guard,
            self.admission,
            checked,
            status=status,
            headers=headers,
            body=body,
            generator=generator,
            generator_version=generator_version,
            hidden=hidden,
        )
