"""Job webhooks: a signed POST to the tenant's URL when its job finishes.

Signing (Stripe's scheme, so receivers know it)::

    Guard-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>
    Guard-Delivery:  <delivery id>   (also in the body; one per job)

The secret is the tenant's own (``GET /v1/jobs/webhook-secret``), derived from the deployment's
HMAC key, so nothing secret is stored per job and it changes when that key is rotated.
:class:`WebhookVerifier` is what a receiver runs: it refuses a bad signature, a timestamp
outside the replay window and a delivery id it has seen inside it (a replayed request).

Webhooks go only to origins the operator allows (``GUARD_WEBHOOK_ORIGINS``): a tenant must not
make the guard's workers call arbitrary addresses (its database, a cloud metadata service).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from guard.errors import GuardError, UnprocessableInput
from guard.secrets import KeyedHasher

SIGNATURE_HEADER = "Guard-Signature"
DELIVERY_HEADER = "Guard-Delivery"
DEFAULT_TOLERANCE_S = 300.0


class WebhookRejected(GuardError):
    """A webhook request a receiver must not act on (the message says why)."""

    code = "webhook_rejected"
    http_status = 400


class WebhookReplayed(WebhookRejected):
    """A delivery received before: authentic, but already acted on. A receiver answers it 2xx
    (the guard retries a delivery whose answer it did not get) and does nothing again."""

    code = "webhook_replayed"


def webhook_secret(hasher: KeyedHasher, tenant: str) -> str:
    """The tenant's webhook signing secret (stable until the HMAC key is rotated)."""
    return "whsec_" + hasher.ref("job-webhook-secret", tenant)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme, 0)
    return f"{parts.scheme}://{(parts.hostname or '').lower()}:{port}"


def check_webhook_url(url: str, allowed_origins: Iterable[str]) -> str:
    """``url`` if its origin is one the operator allows; else :class:`UnprocessableInput`
    (``webhook_not_allowed``) naming ``GUARD_WEBHOOK_ORIGINS``."""
    allowed = {_origin(origin) for origin in allowed_origins}
    try:
        parts = urlsplit(url)
        origin = _origin(url)
    except ValueError as exc:
        raise UnprocessableInput(
            f"webhook_url is not a URL: {exc}", code="invalid_webhook"
        ) from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise UnprocessableInput(
            "webhook_url must be an absolute http(s) URL", code="invalid_webhook"
        )
    if parts.username or parts.password:
        raise UnprocessableInput("webhook_url must not carry credentials", code="invalid_webhook")
    if origin not in allowed:
        raise UnprocessableInput(
            f"webhooks may go only to the origins this deployment allows "
            f"(GUARD_WEBHOOK_ORIGINS); {origin} is not one of them",
            code="webhook_not_allowed",
        )
    return url


def sign(secret: str, body: bytes, *, timestamp: int) -> str:
    """The ``Guard-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


@dataclass(frozen=True)
class Delivery:
    """One webhook request, signed and ready to send."""

    url: str
    body: bytes
    headers: Mapping[str, str]


def signed_delivery(
    url: str, secret: str, delivery_id: str, payload: Mapping[str, Any], *, now: float | None = None
) -> Delivery:
    body = json.dumps({"delivery_id": delivery_id, **payload}, sort_keys=True).encode()
    timestamp = int(now if now is not None else time.time())
    headers = {
        "content-type": "application/json",
        SIGNATURE_HEADER: sign(secret, body, timestamp=timestamp),
        DELIVERY_HEADER: delivery_id,
        "user-agent": "likeness-guard-webhooks",
    }
    return Delivery(url, body, headers)


def send(delivery: Delivery, *, timeout_s: float) -> int:
    """POST the delivery; returns the status code. No redirects are followed (a redirect
    could lead outside the allowed origins) and no proxy settings from the environment apply."""
    with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client:
        return client.post(
            delivery.url, content=delivery.body, headers=dict(delivery.headers)
        ).status_code


class WebhookVerifier:
    """What a receiver runs on each request: signature, timestamp within ``tolerance_s`` of
    now, and a delivery id not seen within that window. Thread-safe; keeps only the ids of
    the last window (one process: a receiver with several processes shares them itself)."""

    def __init__(self, secret: str, *, tolerance_s: float = DEFAULT_TOLERANCE_S) -> None:
        self._secret = secret
        self._tolerance_s = tolerance_s
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def verify(
        self, headers: Mapping[str, str], body: bytes, *, now: float | None = None
    ) -> dict[str, Any]:
        """The payload, or :class:`WebhookRejected` saying why not."""
        lowered = {k.lower(): v for k, v in headers.items()}
        now = time.time() if now is None else now
        fields = dict(
            part.split("=", 1)
            for part in lowered.get(SIGNATURE_HEADER.lower(), "").split(",")
            if "=" in part
        )
        try:
            timestamp = int(fields["t"])
        except (KeyError, ValueError) as exc:
            raise WebhookRejected("no valid Guard-Signature header") from exc
        expected = sign(self._secret, body, timestamp=timestamp)
        if not hmac.compare_digest(expected, f"t={timestamp},v1={fields.get('v1', '')}"):
            raise WebhookRejected("the signature does not match the body")
        if abs(now - timestamp) > self._tolerance_s:
            raise WebhookRejected(
                f"the timestamp is {now - timestamp:.0f} s from now, outside the "
                f"{self._tolerance_s:.0f} s replay window"
            )
        payload: dict[str, Any] = json.loads(body)
        delivery = str(payload.get("delivery_id", ""))
        if delivery != lowered.get(DELIVERY_HEADER.lower()):
            raise WebhookRejected("the delivery id in the body and in the header differ")
        with self._lock:
            self._seen = {d: t for d, t in self._seen.items() if now - t <= self._tolerance_s}
            if delivery in self._seen:
                raise WebhookReplayed(f"delivery {delivery} was received already (a replay)")
            self._seen[delivery] = now
        return payload
