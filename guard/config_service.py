"""The settings of the running service (part of :class:`guard.config.Settings`, which reads
them from ``GUARD_*`` variables and the TOML file like every other): the HTTP service, faults
and timeouts, the audit log's group commit, Redis, the gateway, edit jobs and their webhooks.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

import httpx
from pydantic import BaseModel, Field, field_validator
from pydantic_settings import NoDecode


def origin_of(text: str) -> str:
    """An origin as written in GUARD_WEBHOOK_ORIGINS (``scheme://host[:port]``), normalised to
    ``scheme://host:port``; :class:`ValueError` for anything else (a path, credentials, a
    query, another scheme): a setting that would allow more than it says is refused."""
    try:
        url = httpx.URL(text)
    except httpx.InvalidURL as exc:
        raise ValueError(f"{text!r} is not a URL: {exc}") from exc
    if url.scheme not in ("https", "http") or not url.host:
        raise ValueError(f"{text!r} is not an http(s) origin")
    if url.userinfo or url.query or url.fragment or url.path not in ("", "/"):
        raise ValueError(f"{text!r} must be scheme://host[:port] only")
    port = url.port or {"https": 443, "http": 80}[url.scheme]
    if not 0 < port < 65536:
        raise ValueError(f"{text!r} has no valid port")
    host = url.host.lower()
    return f"{url.scheme}://{f'[{host}]' if ':' in host else host}:{port}"


class ServiceSettings(BaseModel):
    """Fields of :class:`guard.config.Settings`; not used on its own."""

    # The HTTP service (`guard serve`).
    redis_url: str = Field(
        default="",
        description="Redis for rate limits and usage counters shared by all workers; empty "
        "means in-process counters (one worker, the embedded mode).",
    )
    api_rate_per_second: float = Field(default=10.0, gt=0.0, description="Per API key.")
    console_session_minutes: int = Field(
        default=30,
        ge=1,
        le=24 * 60,
        description="How long a compliance-console sign-in lasts (an auditor's or admin's key "
        "exchanged for a browser session); signing in again starts a new one.",
    )
    api_rate_burst: int = Field(default=20, ge=1)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="Addresses or networks (comma separated) of the reverse proxies whose "
        "X-Forwarded-For and X-Forwarded-Proto are believed: the client address that rate "
        "limits are kept by, and whether the browser's request was HTTPS. A proxy not listed "
        "here makes every client look like the proxy (one rate-limit bucket for all).",
    )
    api_max_body_bytes: int = Field(
        default=0,
        ge=0,
        description="Largest request body; 0 means twice GUARD_MAX_IMAGE_BYTES plus 1 MiB.",
    )

    # Faults and timeouts (docs/service.md, "Faults and timeouts"): how long a request may wait on
    # the database before it is answered 503 ``unavailable``, and on Redis before rate limiting
    # falls back to this worker's buckets. A row held locked elsewhere or a server that accepts
    # and never answers must cost a request at most these, never minutes.
    db_statement_timeout_s: float = Field(
        default=15.0, gt=0.0, description="Longest one SQL statement may run (PostgreSQL)."
    )
    db_lock_timeout_s: float = Field(
        default=5.0,
        gt=0.0,
        description="Longest a statement waits for a lock (PostgreSQL lock_timeout, SQLite "
        "busy timeout).",
    )
    db_connect_timeout_s: float = Field(
        default=5.0, gt=0.0, description="Longest a new PostgreSQL connection may take."
    )
    # The audit log's group commit (docs/audit.md, "Batched appends"): concurrent appends share
    # one transaction and one signed checkpoint. The cap bounds one transaction's size (and how
    # many requests one failed commit answers 503 at once); waiting trades latency per request
    # for fuller batches, and 0 (no waiting) already batches whatever arrives during a commit.
    audit_batch_max_entries: int = Field(
        default=256,
        ge=1,
        le=4096,
        description="Most audit entries one commit (and one signed checkpoint) takes; 1: one "
        "transaction per entry, without group commit.",
    )
    audit_batch_max_wait_ms: float = Field(
        default=0.0,
        ge=0.0,
        le=100.0,
        description="How long a batch's leader may wait for more entries before committing "
        "(0: never; batches still form while a commit is in flight).",
    )
    redis_socket_timeout_ms: int = Field(
        default=500, ge=1, description="Longest one Redis command may take."
    )
    redis_connect_timeout_ms: int = Field(
        default=500, ge=1, description="Longest a new Redis connection may take."
    )
    redis_retry_after_s: float = Field(
        default=5.0,
        ge=0.0,
        description="After Redis failed, how long rate limits use this worker's buckets "
        "before Redis is tried again.",
    )

    # The gateway (ext_authz, ext_proc, GuardMiddleware).
    gateway_routes: Path | None = Field(
        default=None,
        description="A YAML route map: which adapter reads which API path "
        "(docs/service.md, Gateway adapters); none: the built-in map of the known APIs.",
    )
    gateway_max_images: int = Field(
        default=8, ge=1, le=64, description="Images one gateway request may carry."
    )

    # Edit jobs (POST /v1/jobs, `guard worker`; docs/service.md "Edit jobs"). PostgreSQL only.
    job_max_attempts: int = Field(
        default=3,
        ge=1,
        le=10,
        description="Runs a job gets when its worker stops mid-run (killed, lost); then it fails.",
    )
    job_stalled_s: float = Field(
        default=30.0,
        ge=2.0,
        le=3600.0,
        description="A worker whose heartbeat is this old is taken for dead and its job run "
        "again; workers beat every quarter of it.",
    )
    job_result_hours: float = Field(
        default=24.0,
        gt=0.0,
        le=24.0 * 90,
        description="How long a finished job's stamped result is kept (then 410 result_expired).",
    )
    job_max_queued_per_tenant: int = Field(
        default=100,
        ge=1,
        description="Jobs one tenant may have queued or running at once (more: 429).",
    )
    webhook_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="The only origins job webhooks may be sent to (scheme://host[:port], comma "
        "separated); none: webhooks are refused.",
    )
    webhook_attempts: int = Field(
        default=6,
        ge=1,
        le=20,
        description="Deliveries a webhook gets (backoff 2, 4, 8, ... s) before it is given up.",
    )
    webhook_timeout_s: float = Field(default=10.0, gt=0.0, le=60.0)

    @field_validator("webhook_origins", "trusted_proxies", mode="before")
    @classmethod
    def _comma_separated(cls, value: object) -> object:
        # The environment gives one string: "https://a.example, https://b.example".
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("webhook_origins")
    @classmethod
    def _origins(cls, value: list[str]) -> list[str]:
        return [origin_of(origin) for origin in value]

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        # uvicorn takes a malformed entry as a literal that never matches (a proxy silently
        # untrusted); a setting that says more than it does is refused at load instead.
        for entry in value:
            try:
                ipaddress.ip_network(entry, strict=False)
            except ValueError as exc:
                raise ValueError(f"{entry!r} is not an IP address or network") from exc
        return value
