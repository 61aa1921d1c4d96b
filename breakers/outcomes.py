"""The one outcome hook. Every attempt and every final outcome of a delivery passes through
`record`, and everything that follows from an outcome starts here: the event log, the
idempotency keys, retries, metrics, the breakers and the error-budget ledger."""

from __future__ import annotations

import logging
from collections import defaultdict
from functools import partial

from django.db import transaction
from django.utils import timezone

from breakers.engine import Outcome as EngineOutcome
from breakers.telemetry import DELIVERY_SECONDS, INGEST_TO_DELIVERED_SECONDS, OUTCOMES
from budgets.ledger import record_outcomes
from replay import idempotency
from replay.enqueue import enqueue_dispatch
from replay.log import Outcome, apply_outcomes
from replay.models import DeliveryAttempt, Event

log = logging.getLogger(__name__)
S = Event.Status
NOT_CALLED = {
    DeliveryAttempt.Outcome.BREAKER_OPEN,
    DeliveryAttempt.Outcome.DUPLICATE,
    DeliveryAttempt.Outcome.NO_ROUTE,
    DeliveryAttempt.Outcome.BULKHEAD_FULL,
}


ENGINE_OUTCOMES = {
    "delivered": EngineOutcome.SUCCESS,
    "failed": EngineOutcome.FAILURE,
    "timeout": EngineOutcome.TIMEOUT,
    "permanent": EngineOutcome.REJECTED_PERMANENT,
}


def on_attempt(breaker, permit, result, duration_ms: float) -> None:
    """Right after each handler call: the route's breaker hears of it at once, so the calls
    after it in the same batch are already guarded by what it showed."""
    breaker.record(permit, ENGINE_OUTCOMES[result.outcome], duration_ms / 1000)


def record(outcomes: list[Outcome], *, token: str, node) -> list[Outcome]:
    """After each batch: everything durable, then what follows from it."""
    applied = apply_outcomes(outcomes, token=token, node=node.name)
    delivered_pairs = [
        (o.route_id, o.event.pk)
        for o in applied
        if o.status == S.DELIVERED and o.route_id is not None
    ]
    released_pairs = [
        (o.route_id, o.event.pk)
        for o in applied
        if o.status != S.DELIVERED and o.route_id is not None
    ]
    idempotency.settle(delivered_pairs, released_pairs)
    _schedule_again(applied)
    _observe(applied)
    _feed_ledger(applied)
    node.delivered += len(delivered_pairs)
    return applied


def _schedule_again(applied: list[Outcome]) -> None:
    """Retries and deferrals each get a task at their own time; the relay covers a lost one."""
    by_delay: dict[float, list[tuple[int, str]]] = defaultdict(list)
    for o in applied:
        if o.status in (S.PENDING, S.DEFERRED) and o.next_attempt_at is not None:
            delay = max((o.next_attempt_at - o.started_at).total_seconds(), 0.0)
            by_delay[round(delay, 2)].append((o.event.pk, o.event.priority))
    for delay, events in by_delay.items():
        transaction.on_commit(partial(enqueue_dispatch, events, countdown=delay))


def _feed_ledger(applied: list[Outcome]) -> None:
    """Final outcomes feed the services' SLOs: delivered is good (its latency is receipt to
    delivery, what the service's users wait for), dead is bad. Retries and deferrals are not
    outcomes yet; a duplicate was counted when it was delivered."""
    now = timezone.now()
    final = []
    for o in applied:
        if o.attempt_outcome == DeliveryAttempt.Outcome.DUPLICATE:
            continue
        if o.status == S.DELIVERED:
            latency_ms = (o.started_at - o.event.received_at).total_seconds() * 1000 + o.duration_ms
            final.append((o.event.service_id, now, True, max(latency_ms, 0.0)))
        elif o.status == S.DEAD:
            final.append((o.event.service_id, now, False, o.duration_ms))
    if not final:
        return
    try:
        record_outcomes(final)
    except Exception:  # the outcome itself is committed; losing SLI counts is logged, not fatal
        log.exception("could not record %d outcomes in the SLI ledger", len(final))


def _observe(applied: list[Outcome]) -> None:
    for o in applied:
        route = o.event.route.name if o.event.route_id and o.event.route else str(o.route_id or "-")
        OUTCOMES.labels(route, o.event.priority, o.attempt_outcome).inc()
        if o.attempt_outcome not in NOT_CALLED:
            DELIVERY_SECONDS.labels(route, o.event.priority).observe(o.duration_ms / 1000)
        if o.status == S.DELIVERED and o.attempt_outcome == DeliveryAttempt.Outcome.DELIVERED:
            lag = (o.started_at - o.event.received_at).total_seconds() + o.duration_ms / 1000
            INGEST_TO_DELIVERED_SECONDS.labels(o.event.priority).observe(max(lag, 0.0))
