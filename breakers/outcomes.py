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
from replay.log import Outcome, Released, apply_outcomes, next_of_keys, release_claim
from replay.models import DeliveryAttempt, Event

log = logging.getLogger(__name__)
S = Event.Status
NOT_CALLED = {
    DeliveryAttempt.Outcome.BREAKER_OPEN,
    DeliveryAttempt.Outcome.DUPLICATE,
    DeliveryAttempt.Outcome.NO_ROUTE,
    DeliveryAttempt.Outcome.BULKHEAD_FULL,
    DeliveryAttempt.Outcome.SCHEMA_REJECTED,
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
    """After each batch: everything durable, then what follows from it.

    The outcomes and their SLI ledger counts commit together or not at all: a worker killed
    (or a database error) between the two would otherwise lose the counts for good, and a gate
    would allow what it should deny. If the transaction fails, these events (only these: others
    of the same claim may still be in flight) are given back, delivered again (at least once)
    and counted then, and the error is raised for the caller to log."""
    try:
        with transaction.atomic():
            applied = apply_outcomes(outcomes, token=token, node=node.name)
            _release_keys(
                {
                    (o.event.service_id, o.event.ordering_key)
                    for o in applied
                    if o.event.ordering_key and o.status in (S.DELIVERED, S.DEAD)
                }
            )
            _feed_ledger(applied)  # last: its bucket rows are the hot ones, locked until commit
    except Exception:
        log.exception("could not record the outcomes of %d events; giving them back", len(outcomes))
        _give_back(token, [o.event.pk for o in outcomes])
        raise
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
    # A fallback delivery settles the fallback's pair; the primary's claim is given back.
    released_pairs += [(o.served_for, o.event.pk) for o in applied if o.served_for is not None]
    idempotency.settle(delivered_pairs, released_pairs)
    _schedule_again(applied)
    _observe(applied)
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


def _release_keys(keys: set[tuple[int, str]]) -> None:
    """A keyed event reached a final state (delivered or dead): the next event of its key is
    enqueued as soon as this commits, not left for the relay."""
    now = timezone.now()
    by_delay: dict[float, list[tuple[int, str]]] = defaultdict(list)
    for pk, priority, due in next_of_keys(keys):
        by_delay[round(max((due - now).total_seconds(), 0.0), 2)].append((pk, priority))
    for delay, events in by_delay.items():
        transaction.on_commit(partial(enqueue_dispatch, events, countdown=delay or None))


def _feed_ledger(applied: list[Outcome]) -> None:
    """Final outcomes feed the services' SLOs: delivered is good (its latency is receipt to
    delivery, what the service's users wait for), dead is bad. Retries and deferrals are not
    outcomes yet; a duplicate was counted when it was delivered."""
    now = timezone.now()
    final = []
    for o in applied:
        if o.attempt_outcome == DeliveryAttempt.Outcome.DUPLICATE:
            continue
        if o.event.is_replay:  # replays neither earn nor spend budget (docs/budgets.md)
            continue
        if o.status == S.DELIVERED:
            latency_ms = (o.started_at - o.event.received_at).total_seconds() * 1000 + o.duration_ms
            final.append((o.event.service_id, now, True, max(latency_ms, 0.0)))
        elif o.status == S.DEAD:
            final.append((o.event.service_id, now, False, o.duration_ms))
    if final:
        record_outcomes(final)  # an error here rolls the outcomes back with it


def _give_back(token: str, pks: list[int]) -> None:
    """Best effort: if the database is down this fails too, and the claim expires instead."""
    try:
        with transaction.atomic():
            settle_released(release_claim(token, pks, reason="outcome not recorded"))
    except Exception:
        log.exception("could not give back claim %s; it is released when it expires", token)


def settle_released(released: Released) -> None:
    """What follows from given-back claims, inside their transaction: the events due again
    are enqueued after commit (not left for the relay's grace), and the ones that became dead
    letters (redelivery cap) are final outcomes, so they count as bad in the SLI ledger."""
    if released.dead_services:
        now = timezone.now()
        record_outcomes([(service_id, now, False, 0.0) for service_id in released.dead_services])
    if released.pending:
        transaction.on_commit(partial(enqueue_dispatch, released.pending))
    _release_keys(released.dead_keys)


def _observe(applied: list[Outcome]) -> None:
    for o in applied:
        route = o.event.route.name if o.event.route_id and o.event.route else str(o.route_id or "-")
        OUTCOMES.labels(route, o.event.priority, o.attempt_outcome).inc()
        if o.attempt_outcome not in NOT_CALLED:
            DELIVERY_SECONDS.labels(route, o.event.priority).observe(o.duration_ms / 1000)
        if o.status == S.DELIVERED and o.attempt_outcome == DeliveryAttempt.Outcome.DELIVERED:
            lag = (o.started_at - o.event.received_at).total_seconds() + o.duration_ms / 1000
            INGEST_TO_DELIVERED_SECONDS.labels(o.event.priority).observe(max(lag, 0.0))
