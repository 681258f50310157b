"""Prometheus metrics: requests, decisions by verdict and reason, stage latencies.

One :class:`ServiceMetrics` per app (its own registry, so tests and several apps in one process
do not collide). It is the pipeline's :class:`~guard.requests.DecisionSink` and
:class:`~guard.requests.StageObserver`, and an ASGI middleware for request counts. With several
uvicorn workers each worker serves its own figures; set ``PROMETHEUS_MULTIPROC_DIR`` to a fresh
folder before ``guard serve`` to have ``/metrics`` add up every worker's.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from guard.requests import DecisionEvent

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class ServiceMetrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "guard_http_requests",
            "HTTP requests by route template, method and status.",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "guard_http_request_seconds",
            "HTTP request latency by route template.",
            ["route"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "guard_decisions",
            "Decisions by stage and verdict.",
            ["stage", "verdict"],
            registry=self.registry,
        )
        self.reasons = Counter(
            "guard_decision_reasons",
            "Reason codes given in decisions.",
            ["reason"],
            registry=self.registry,
        )
        self.stage_seconds = Histogram(
            "guard_stage_seconds",
            "Pipeline stage latency (faces, match, edit, output_scan, stamp, audit).",
            ["stage"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "guard_rate_limited", "Requests refused with 429.", registry=self.registry
        )
        self.usage_flags = Counter(
            "guard_usage_flags", "Usage-monitoring flags raised.", ["rule"], registry=self.registry
        )
        self.edit_progress = Gauge(
            "guard_edit_progress",
            "Fraction of its steps the edit running in this worker has done (0: none running).",
            registry=self.registry,
            multiprocess_mode="liveall",
        )

    # DecisionSink
    def record(self, event: DecisionEvent) -> None:
        decision = event.decision
        self.decisions.labels(decision.stage, decision.verdict.value).inc()
        for code in decision.reason_codes:
            self.reasons.labels(code).inc()

    def report_edit_progress(self, done: int, total: int) -> None:
        self.edit_progress.set(done / total if total else 0.0)

    # StageObserver
    def observe_stage(self, stage: str, seconds: float) -> None:
        self.stage_seconds.labels(stage).observe(seconds)

    def exposition(self) -> bytes:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            merged = CollectorRegistry()
            MultiProcessCollector(merged)  # type: ignore[no-untyped-call]
            return generate_latest(merged)
        return generate_latest(self.registry)


class RequestMetricsMiddleware:
    """Counts every HTTP request by its route template (``/v1/subjects/{subject_id}``), not
    its raw path, so ids do not explode the label space."""

    def __init__(self, app: ASGIApp, metrics: ServiceMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route: Any = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.requests.labels(template, scope["method"], str(status)).inc()
            self.metrics.request_seconds.labels(template).observe(time.perf_counter() - start)
