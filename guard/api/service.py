"""Everything one service process holds: the guard, API keys, limits, flags and metrics, and
the two things every authenticated request goes through (authentication with rate limiting,
usage monitoring after each decision)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from guard.api.admission import Admission
from guard.api.flags import FlagStore
from guard.api.gateway.flow import GatewayFlow
from guard.api.gateway.routes import RouteMap
from guard.api.keys import ApiKey, ApiKeyStore
from guard.api.limits import Limits, open_limits
from guard.api.metrics import ServiceMetrics
from guard.api.views import outcome_view
from guard.audit import usage_flag_entry
from guard.config import Settings
from guard.errors import RateLimited, Unavailable
from guard.jobs import EditJobs
from guard.pipeline import Guard
from guard.policy import Decision, MonitoringRules
from guard.requests import EditRequest, Result
from guard.safety import UsageMonitor
from guard.secrets import KeyedHasher

log = logging.getLogger("guard.api")


@dataclass
class Service:
    settings: Settings
    guard: Guard
    metrics: ServiceMetrics
    limits: Limits
    keys: ApiKeyStore
    flags: FlagStore
    gateway: GatewayFlow
    _monitor: UsageMonitor | None = None
    _monitor_hasher: KeyedHasher | None = None
    _jobs: EditJobs | None = None

    @classmethod
    def build(cls, settings: Settings, guard: Guard | None = None) -> Service:
        metrics = ServiceMetrics()
        guard = guard or Guard(settings, sinks=[metrics], observer=metrics)
        return cls(
            settings=settings,
            guard=guard,
            metrics=metrics,
            limits=open_limits(settings),
            keys=ApiKeyStore(guard.db),
            flags=FlagStore(guard.db),
            gateway=GatewayFlow(guard, RouteMap.from_settings(settings)),
        )

    @property
    def admission(self) -> Admission:
        """This worker's one admission, shared by every route and the gateway flow."""
        return self.gateway.admission

    @property
    def jobs(self) -> EditJobs:
        """Edit jobs (``/v1/jobs``), each finished one kept in its tenant's view."""
        if self._jobs is None:
            guard = self.guard
            self._jobs = EditJobs(
                guard,
                view=outcome_view(lambda: guard.registry),
                key_active=lambda key_id: self.keys.active(key_id) is not None,
            )
        return self._jobs

    def edit(self, request: EditRequest) -> Result:
        """``Guard.edit`` (holding an admission place), reporting its steps as
        ``guard_edit_progress`` in /metrics."""
        try:
            with self.admission.admitted(request.image):
                return self.guard.edit(request, progress=self.metrics.report_edit_progress)
        finally:
            self.metrics.report_edit_progress(0, 0)

    def monitoring_rules(self) -> MonitoringRules:
        try:
            return self.guard.policies.current().monitoring
        except Unavailable:
            return MonitoringRules()

    def authenticate(self, token: str) -> ApiKey:
        """The key behind ``token``, after taking one token from its bucket (a flagged key's
        bucket refills ``throttle_factor`` times slower)."""
        key = self.keys.authenticate(token)
        rate = self.settings.api_rate_per_second
        if self.flags.is_flagged(key.id):
            rate *= self.monitoring_rules().throttle_factor
        wait = self.limits.take(key.id, rate=rate, burst=self.settings.api_rate_burst)
        if wait > 0:
            self.metrics.rate_limited.inc()
            raise RateLimited(
                f"API key {key.id} is over its rate limit ({rate:g}/s, burst "
                f"{self.settings.api_rate_burst}); retry in {wait:.1f} s",
                retry_after=wait,
            )
        return key

    def observe(self, key: ApiKey, decision: Decision) -> None:
        """Usage monitoring: count the decision, flag and audit the key if a limit is crossed."""
        hasher = self.guard.keys.hasher()  # as it is now: a rotated HMAC key is picked up
        if self._monitor is None or self._monitor_hasher is not hasher:
            self._monitor, self._monitor_hasher = UsageMonitor(self.limits, hasher), hasher
        alerts = self._monitor.observe(key.id, decision, self.monitoring_rules(), now=time.time())
        for alert in alerts:
            flag = self.flags.raise_flag(key, alert)
            if flag is None:
                continue
            log.warning("usage flag %s on key %s: %s", alert.rule, key.id, alert.detail)
            self.metrics.usage_flags.labels(alert.rule).inc()
            self.guard.audit.append(
                usage_flag_entry(
                    tenant=key.tenant, key_id=key.id, rule=alert.rule, detail=alert.detail
                )
            )
