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

import asyncio
import hashlib
import hmac
import ipaddress
import json
import re
import socket
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from guard.config_service import origin_of
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


class WebhookNotAllowed(UnprocessableInput):
    """A webhook URL outside what the operator allows, or whose name resolves to an address
    that is not public."""

    code = "webhook_not_allowed"


def _origin(url: httpx.URL) -> str:
    return origin_of(f"{url.scheme}://{url.netloc.decode('ascii')}")


_CONTROL = re.compile(r"[\x00-\x20\x7f]")


def check_webhook_url(url: str, allowed_origins: Iterable[str]) -> str:
    """``url`` (as the client that sends it reads it) if its origin is one the operator
    allows; else :class:`UnprocessableInput` (``invalid_webhook``, ``webhook_not_allowed``)
    naming ``GUARD_WEBHOOK_ORIGINS``."""
    if _CONTROL.search(url):
        raise UnprocessableInput(
            "webhook_url must not contain spaces or control characters", code="invalid_webhook"
        )
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise UnprocessableInput(
            f"webhook_url is not a URL: {exc}", code="invalid_webhook"
        ) from exc
    if parsed.scheme not in ("https", "http") or not parsed.host:
        raise UnprocessableInput(
            "webhook_url must be an absolute http(s) URL", code="invalid_webhook"
        )
    if parsed.userinfo:
        raise UnprocessableInput("webhook_url must not carry credentials", code="invalid_webhook")
    if _origin(parsed) not in {origin_of(origin) for origin in allowed_origins}:
        raise WebhookNotAllowed(
            f"webhooks may go only to the origins this deployment allows "
            f"(GUARD_WEBHOOK_ORIGINS); {_origin(parsed)} is not one of them"
        )
    return str(parsed)


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


def _public_address(host: str, port: int) -> str:
    """The address to connect to for ``host``: itself if it is an address (the operator
    allowed exactly that origin), else what its name resolves to, every one of which must be
    public (a tenant controls its own DNS: its name must not lead into the workers' network)."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    addresses = sorted({str(info[4][0]) for info in infos})
    private = [a for a in addresses if not ipaddress.ip_address(a).is_global]
    if not addresses or private:
        raise WebhookNotAllowed(
            f"the webhook host {host} resolves to an address that is not public "
            f"({', '.join(private) or 'none'}); it is not sent"
        )
    return addresses[0]


async def deliver(
    delivery: Delivery, allowed_origins: Iterable[str], *, timeout_s: float
) -> tuple[int, str]:
    """Send ``delivery`` to the address its host resolves to now (checked as public, then
    connected to: no second lookup can lead elsewhere), within ``timeout_s`` in all. Returns
    the status (0 when there was no answer) and what happened; the answer's body is never
    read. No redirects are followed, no proxy settings apply. :class:`WebhookNotAllowed` when
    the URL or its address is not allowed (not worth retrying)."""
    url = httpx.URL(check_webhook_url(delivery.url, allowed_origins))
    host, port = url.host, url.port or (443 if url.scheme == "https" else 80)
    try:
        async with asyncio.timeout(timeout_s):
            address = await asyncio.to_thread(_public_address, host, port)
            headers = {**delivery.headers, "host": url.netloc.decode("ascii")}
            extensions = {"sni_hostname": host} if url.scheme == "https" else {}
            async with (
                httpx.AsyncClient(
                    timeout=timeout_s, follow_redirects=False, trust_env=False
                ) as client,
                client.stream(
                    "POST",
                    url.copy_with(host=address),
                    content=delivery.body,
                    headers=headers,
                    extensions=extensions,
                ) as response,
            ):
                return response.status_code, f"HTTP {response.status_code}"
    except (httpx.HTTPError, OSError, TimeoutError) as exc:
        return 0, f"{type(exc).__name__}: {exc}"[:300]


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
        expected = sign(self._secret, body, timestamp=timestamp).encode()
        given = f"t={timestamp},v1={fields.get('v1', '')}".encode("utf-8", "replace")
        if not hmac.compare_digest(expected, given):
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
            # An id is remembered until its own timestamp leaves the window: by then a replay
            # of it is refused for its age, whatever the two clocks say.
            self._seen = {d: until for d, until in self._seen.items() if until >= now}
            if delivery in self._seen:
                raise WebhookReplayed(f"delivery {delivery} was received already (a replay)")
            self._seen[delivery] = timestamp + self._tolerance_s
        return payload
