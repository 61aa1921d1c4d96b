"""The fast half of idempotency: a Redis key per (route, event), `SET NX EX 24h`.

The key holds the claiming worker's token while a delivery is under way and "delivered" after
it. The durable half is the DeliveryRecord row written with the outcome, so a Redis restart
lets no duplicate through. Without Redis (the embedded default, one worker) only the row
guards, which is enough there. One round trip per dispatch batch, never one per event.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

import redis
from django.conf import settings

from controlplane.redis import get_redis

log = logging.getLogger(__name__)

DELIVERED = b"delivered"


def key(route_id: int, event_pk: int) -> str:
    return f"cp:idem:{route_id}:{event_pk}"


def claim(pairs: Iterable[tuple[int, int]], token: str) -> set[tuple[int, int]]:
    """Claims the keys; returns the (route, event) pairs already marked delivered.

    A key holding another token is a claim left by a worker that died mid-delivery: the
    database claim on the event is ours now, so we take the key over."""
    client = get_redis()
    pairs = list(pairs)
    if client is None or not pairs:
        return set()
    ttl = settings.IDEMPOTENCY_TTL_SECONDS
    pipe = client.pipeline(transaction=False)
    for route_id, event_pk in pairs:
        pipe.set(key(route_id, event_pk), token, nx=True, ex=ttl, get=True)
    try:
        previous = pipe.execute()
    except redis.RedisError as exc:
        # The delivery records in the database still guard; Redis only makes the check cheap.
        log.warning("idempotency keys unavailable, relying on delivery records: %s", exc)
        return set()
    delivered = {pair for pair, old in zip(pairs, previous, strict=True) if old == DELIVERED}
    stale = [
        pair for pair, old in zip(pairs, previous, strict=True) if old not in (None, DELIVERED)
    ]
    if stale:
        pipe = client.pipeline(transaction=False)
        for route_id, event_pk in stale:
            pipe.set(key(route_id, event_pk), token, ex=ttl)
        _execute(pipe)
    return delivered


def _execute(pipe) -> None:
    try:
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("idempotency keys not updated: %s", exc)


def settle(delivered: Iterable[tuple[int, int]], released: Iterable[tuple[int, int]]) -> None:
    """After the outcome is committed: mark delivered keys, free the others for a retry."""
    client = get_redis()
    if client is None:
        return
    ttl = settings.IDEMPOTENCY_TTL_SECONDS
    pipe = client.pipeline(transaction=False)
    for route_id, event_pk in delivered:
        pipe.set(key(route_id, event_pk), DELIVERED, ex=ttl)
    for route_id, event_pk in released:
        pipe.delete(key(route_id, event_pk))
    if len(pipe):
        _execute(pipe)
