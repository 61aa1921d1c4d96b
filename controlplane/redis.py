"""One Redis client per process for the pieces that talk to Redis directly (idempotency keys,
breaker state). None on the embedded default, which has no Redis."""

from __future__ import annotations

import os

import redis
from django.conf import settings

_client: redis.Redis | None = None
_pid: int | None = None


def get_redis() -> redis.Redis | None:
    global _client, _pid
    if not settings.REDIS_URL:
        return None
    if _client is None or _pid != os.getpid():  # a forked worker child needs its own sockets
        _client = redis.Redis.from_url(
            settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
        )
        _pid = os.getpid()
    return _client
