"""Job webhooks' own rules, each with the attack it stops (guard/jobs/webhooks.py): a name that
resolves into the workers' network is not sent to, a receiver's verifier refuses a forged,
stale, replayed or garbled request, and the operator's origins setting allows only origins."""

from __future__ import annotations

import asyncio
import time

import pytest
from pydantic import ValidationError

from guard.config import Settings
from guard.config_service import origin_of
from guard.jobs import WebhookRejected, WebhookReplayed, WebhookVerifier
from guard.jobs.webhooks import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    WebhookNotAllowed,
    deliver,
    signed_delivery,
)

SECRET = "whsec_" + "ab" * 32


def test_a_name_that_resolves_to_a_private_address_is_not_sent_to() -> None:
    # "localhost" is an allowed origin's host here, as a tenant's own name pointed at
    # 127.0.0.1 or 169.254.169.254 would be: the address it resolves to decides.
    delivery = signed_delivery("https://localhost/hook", SECRET, "dlv_x", {"job": {}})
    with pytest.raises(WebhookNotAllowed, match="not public"):
        asyncio.run(deliver(delivery, ["https://localhost"], timeout_s=5))


def test_an_origin_outside_the_setting_is_refused_at_delivery_too() -> None:
    delivery = signed_delivery("https://hooks.example.com/x", SECRET, "dlv_x", {"job": {}})
    with pytest.raises(WebhookNotAllowed, match="GUARD_WEBHOOK_ORIGINS"):
        asyncio.run(deliver(delivery, [], timeout_s=5))


def test_no_answer_is_a_failed_try_not_an_error() -> None:
    # An address the operator allowed by number, with nothing listening: status 0.
    delivery = signed_delivery("http://127.0.0.1:9/hook", SECRET, "dlv_x", {"job": {}})
    status, detail = asyncio.run(deliver(delivery, ["http://127.0.0.1:9"], timeout_s=5))
    assert status == 0 and "Connect" in detail


def _signed(now: float) -> tuple[dict[str, str], bytes]:
    delivery = signed_delivery("https://h.example/x", SECRET, "dlv_1", {"job": {}}, now=now)
    return dict(delivery.headers), delivery.body


def test_the_verifier_refuses_forgeries_stale_requests_and_replays() -> None:
    now = time.time()
    headers, body = _signed(now)
    verifier = WebhookVerifier(SECRET)
    assert verifier.verify(headers, body, now=now)["delivery_id"] == "dlv_1"
    with pytest.raises(WebhookReplayed):
        verifier.verify(headers, body, now=now + 10)
    with pytest.raises(WebhookRejected, match="signature"):
        WebhookVerifier("whsec_other").verify(headers, body, now=now)
    with pytest.raises(WebhookRejected, match="replay window"):
        WebhookVerifier(SECRET).verify(headers, body, now=now + 301)
    garbled = {**headers, SIGNATURE_HEADER: f"t={int(now)},v1=\u00e9\u00e9"}
    with pytest.raises(WebhookRejected, match="signature"):  # not a TypeError (a 500)
        WebhookVerifier(SECRET).verify(garbled, body, now=now)
    with pytest.raises(WebhookRejected, match="differ"):
        WebhookVerifier(SECRET).verify({**headers, DELIVERY_HEADER: "dlv_2"}, body, now=now)


def test_a_replay_is_remembered_for_its_own_window_whatever_the_clocks() -> None:
    """The receiver's clock runs 60 s behind the sender's: the id is kept until the request's
    own timestamp leaves the window, not for a window from when it arrived."""
    sent = time.time()
    headers, body = _signed(sent)
    verifier = WebhookVerifier(SECRET)
    verifier.verify(headers, body, now=sent - 60)
    with pytest.raises(WebhookReplayed):
        verifier.verify(headers, body, now=sent + 280)


def test_the_origins_setting_allows_origins_only() -> None:
    assert origin_of("https://Hooks.Example.com") == "https://hooks.example.com:443"
    assert origin_of("http://127.0.0.1:8123/") == "http://127.0.0.1:8123"
    settings = Settings(webhook_origins="https://a.example, http://[::1]:9000")
    assert settings.webhook_origins == ["https://a.example:443", "http://[::1]:9000"]
    for bad in (
        "https://a.example/path",
        "https://user@a.example",
        "ftp://a.example",
        "https://a.example?x=1",
        "a.example",
        "https://a.example:99999",
    ):
        with pytest.raises(ValidationError):
            Settings(webhook_origins=[bad])
