"""Bulkheads (layer 1 of the breakers, with the timeout): a route may have at most
`max_concurrent_calls` calls in flight, and an event waits at most `max_wait_ms` for a slot
before it is deferred (Resilience4j's maxConcurrentCalls and maxWaitDuration).

With Redis the limit is cluster-wide: each call holds a lease in a sorted set scored by its
expiry, so the slots of a worker that died come back when its leases expire (the route's
timeout plus a margin). Without Redis (the embedded single worker) the count is per process.
A route with max_concurrent_calls = 0 has no bulkhead and costs nothing here.
"""

from __future__ import annotations

import threading
import uuid
from typing import Protocol

from django.conf import settings

LEASE_MARGIN_S = 5.0
KEY = "cp:bulkhead:{}"

# Drop expired leases, then take one if there is room. Redis' own clock, so machines whose
# clocks disagree still agree on expiry.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  redis.call('EXPIRE', KEYS[1], math.ceil(tonumber(ARGV[2])) + 1)
  return 1
end
return 0
"""


class Bulkhead(Protocol):
    def try_acquire(self, name: str, limit: int, ttl_s: float) -> str | None: ...
    def release(self, name: str, lease: str) -> None: ...
    def in_use(self, name: str) -> int: ...


class LocalBulkhead:
    """Per-process counts: right for the embedded default's one dispatching process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._used: dict[str, int] = {}

    def try_acquire(self, name: str, limit: int, ttl_s: float) -> str | None:
        with self._lock:
            used = self._used.get(name, 0)
            if used >= limit:
                return None
            self._used[name] = used + 1
        return "local"

    def release(self, name: str, lease: str) -> None:
        with self._lock:
            self._used[name] = max(self._used.get(name, 0) - 1, 0)

    def in_use(self, name: str) -> int:
        return self._used.get(name, 0)


class RedisBulkhead:
    """Cluster-wide: one round trip to take a slot, one to give it back."""

    def __init__(self, client) -> None:
        self._client = client
        self._acquire = client.register_script(_ACQUIRE)

    def try_acquire(self, name: str, limit: int, ttl_s: float) -> str | None:
        lease = uuid.uuid4().hex
        if self._acquire(keys=[KEY.format(name)], args=[limit, ttl_s, lease]):
            return lease
        return None

    def release(self, name: str, lease: str) -> None:
        self._client.zrem(KEY.format(name), lease)

    def in_use(self, name: str) -> int:
        return int(self._client.zcard(KEY.format(name)))


def lease_ttl(timeout_s: float) -> float:
    """How long a slot stays taken if its holder dies without giving it back."""
    return timeout_s + LEASE_MARGIN_S


def make_bulkhead() -> Bulkhead:
    if settings.REDIS_URL:
        from controlplane.redis import get_redis

        client = get_redis()
        if client is not None:
            return RedisBulkhead(client)
    return LocalBulkhead()
