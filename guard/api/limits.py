"""Per-key token buckets and usage counters: in Redis (shared by every worker) or in-process.

Both backends offer the same two things: :meth:`take` (one token from a key's bucket, or how
long to wait) and the :class:`~guard.safety.UsageCounters` protocol. Redis does each in one
round trip (a Lua script using the server's clock, so workers on several hosts agree).

If a configured Redis stops answering, the limiter falls back to in-process buckets and says so
in the log and in ``/readyz``: rate limiting degrades to per-worker, it never lets a request
through unchecked and never turns into an outage of the guard itself. A Redis that accepts and
never answers costs one socket timeout (``GUARD_REDIS_SOCKET_TIMEOUT_MS``), once per retry
interval (``GUARD_REDIS_RETRY_AFTER_S``), not once per command: in between, calls go straight
to the fallback.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from guard.config import Settings

log = logging.getLogger("guard.api")

_BUCKET = """
local now_parts = redis.call('TIME')
local now = tonumber(now_parts[1]) + tonumber(now_parts[2]) / 1e6
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(state[1])
local ts = tonumber(state[2])
if tokens == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + math.max(0, now - ts) * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = (1 - tokens) / rate end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return tostring(wait)
"""


class Limits(Protocol):
    backend: str

    def take(self, key: str, *, rate: float, burst: int) -> float:
        """Take one token from ``key``'s bucket: 0.0 when allowed, else seconds to wait."""
        ...

    def increment(self, name: str, ttl_seconds: int) -> int: ...

    def add_distinct(self, name: str, member: str, ttl_seconds: int) -> int: ...

    def healthy(self) -> bool: ...


class LocalLimits:
    """In-process buckets and counters (one worker; the embedded mode)."""

    backend = "in-process"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}
        self._counters: dict[str, tuple[float, int]] = {}
        self._sets: dict[str, tuple[float, set[str]]] = {}

    def take(self, key: str, *, rate: float, burst: int) -> float:
        with self._lock:
            now = self._clock()
            tokens, last = self._buckets.get(key, (float(burst), now))
            tokens = min(float(burst), tokens + max(0.0, now - last) * rate)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / rate
            self._buckets[key] = (tokens, now)
            return wait

    def increment(self, name: str, ttl_seconds: int) -> int:
        with self._lock:
            now = self._clock()
            self._expire(now)
            expires, count = self._counters.get(name, (now + ttl_seconds, 0))
            self._counters[name] = (expires, count + 1)
            return count + 1

    def add_distinct(self, name: str, member: str, ttl_seconds: int) -> int:
        with self._lock:
            now = self._clock()
            self._expire(now)
            _, members = self._sets.setdefault(name, (now + ttl_seconds, set()))
            members.add(member)
            return len(members)

    def _expire(self, now: float) -> None:
        for table in (self._counters, self._sets):
            for name in [n for n, (expires, _) in table.items() if expires <= now]:
                del table[name]

    def healthy(self) -> bool:
        return True


class RedisLimits:
    """Buckets and counters in Redis, with an in-process fallback while Redis is down.

    After a failure the fallback serves every call for ``retry_after_s``; then one caller tries
    Redis again (the others keep the fallback meanwhile), so a stalled Redis costs at most one
    timeout per interval instead of one per command. :meth:`healthy` (``/readyz``) always asks
    Redis, so readiness tells the state as it is now.
    """

    backend = "redis"

    def __init__(
        self,
        url: str,
        *,
        socket_timeout_ms: int = 500,
        connect_timeout_ms: int = 500,
        retry_after_s: float = 5.0,
        fallback: LocalLimits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self._redis = redis.Redis.from_url(
            url,
            socket_timeout=socket_timeout_ms / 1000,
            socket_connect_timeout=connect_timeout_ms / 1000,
            # redis-py retries a failed connection 3 times with up to seconds of backoff by
            # default; the fallback is the retry here, so one failure costs one timeout.
            retry=Retry(NoBackoff(), 0),
        )
        self._bucket = self._redis.register_script(_BUCKET)
        self._fallback = fallback or LocalLimits()
        self._errors = (redis.RedisError, OSError)
        self._clock = clock
        self._retry_after_s = retry_after_s
        self._state = threading.Lock()
        self._retry_at: float | None = None  # None: Redis is up
        self._url = url

    def _use_redis(self) -> bool:
        with self._state:
            if self._retry_at is None:
                return True
            now = self._clock()
            if now < self._retry_at:
                return False
            # This caller tries Redis; the others keep the fallback until it has answered.
            self._retry_at = now + self._retry_after_s
            return True

    def _failed(self, exc: Exception) -> None:
        with self._state:
            if self._retry_at is None:
                log.warning(
                    "Redis at %s is not answering (%s); rate limits fall back to this worker",
                    self._url,
                    exc,
                )
            self._retry_at = self._clock() + self._retry_after_s

    def _recovered(self) -> None:
        with self._state:
            if self._retry_at is not None:
                log.warning("Redis at %s answers again; rate limits are shared again", self._url)
                self._retry_at = None

    def take(self, key: str, *, rate: float, burst: int) -> float:
        if not self._use_redis():
            return self._fallback.take(key, rate=rate, burst=burst)
        try:
            wait = float(self._bucket(keys=[f"guard:bucket:{key}"], args=[rate, burst]))
        except self._errors as exc:
            self._failed(exc)
            return self._fallback.take(key, rate=rate, burst=burst)
        self._recovered()
        return wait

    def increment(self, name: str, ttl_seconds: int) -> int:
        if not self._use_redis():
            return self._fallback.increment(name, ttl_seconds)
        try:
            pipe = self._redis.pipeline()
            pipe.incr(f"guard:{name}")
            pipe.expire(f"guard:{name}", ttl_seconds, nx=True)
            count, _ = pipe.execute()
        except self._errors as exc:
            self._failed(exc)
            return self._fallback.increment(name, ttl_seconds)
        self._recovered()
        return int(count)

    def add_distinct(self, name: str, member: str, ttl_seconds: int) -> int:
        if not self._use_redis():
            return self._fallback.add_distinct(name, member, ttl_seconds)
        try:
            pipe = self._redis.pipeline()
            pipe.sadd(f"guard:{name}", member)
            pipe.expire(f"guard:{name}", ttl_seconds, nx=True)
            pipe.scard(f"guard:{name}")
            _, _, size = pipe.execute()
        except self._errors as exc:
            self._failed(exc)
            return self._fallback.add_distinct(name, member, ttl_seconds)
        self._recovered()
        return int(size)

    def healthy(self) -> bool:
        try:
            self._redis.ping()
        except self._errors as exc:
            self._failed(exc)
            return False
        self._recovered()
        return True


def open_limits(settings: Settings) -> Limits:
    """Redis limits when ``GUARD_REDIS_URL`` is set (with its timeouts), else in-process."""
    if not settings.redis_url:
        return LocalLimits()
    return RedisLimits(
        settings.redis_url,
        socket_timeout_ms=settings.redis_socket_timeout_ms,
        connect_timeout_ms=settings.redis_connect_timeout_ms,
        retry_after_s=settings.redis_retry_after_s,
    )


def retry_after_header(wait: float) -> str:
    return str(max(1, math.ceil(wait)))
