"""Delivering a batch of events: claim, route, guard against duplicates, and hand the calls to
the delivery pool (breakers/pool.py), which calls the handlers concurrently, each within its
timeout, and passes the outcomes to the outcome hook in batches."""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone

from breakers import outcomes
from breakers.bulkhead import lease_ttl, make_bulkhead
from breakers.engine import BreakerOpen
from breakers.handlers import CallResult, event_envelope
from breakers.models import Route
from breakers.nodes import current_node
from breakers.pool import RANK, Job, deferred_by_bulkhead, delivery_pool, traced_call
from breakers.registry import breaker_for
from breakers.route_table import route_table
from breakers.telemetry import BREAKER_REJECTED, BULKHEAD_REJECTED
from replay import idempotency
from replay.log import Outcome, claim_events, new_claim_token
from replay.models import DeliveryAttempt, DeliveryRecord, Event
from replay.retries import retry_delay

log = logging.getLogger(__name__)
S = Event.Status
A = DeliveryAttempt.Outcome


def dispatch_events(pks: list[int], *, concurrent: bool = False) -> int:
    """Claims what it can of these events and delivers them; returns how many it claimed.

    concurrent (what the worker's task does): hand the calls to this process's delivery pool
    and return once they are queued; the pool writes their outcomes in batches as the calls
    finish (breakers/pool.py). Otherwise the calls run one after another on this thread and
    the outcomes are written before it returns (tools and tests that need them at once)."""
    node = current_node()
    token = new_claim_token()
    events = claim_events(pks, token=token, node=node.name)
    if not events:
        return 0
    table = route_table()
    routed = [(event, _route_for(table, event)) for event in events]
    pairs = [(route.pk, event.pk) for event, route in routed if route is not None]
    done = idempotency.claim(pairs, token) | _recorded(pairs)
    jobs: list[Job] = []
    settled: list[Outcome] = []
    for event, route in routed:
        job_or_outcome = _prepare(event, route, done, token)
        if isinstance(job_or_outcome, Job):
            jobs.append(job_or_outcome)
        else:
            settled.append(job_or_outcome)
    if concurrent:
        delivery_pool().submit(jobs, settled, token, node)
    else:
        node.in_flight += len(events)
        try:
            outcomes.record(settled + [_call_inline(job) for job in jobs], token=token, node=node)
        finally:
            node.in_flight -= len(events)
    return len(events)


def _call_inline(job: Job) -> Outcome:
    """One call on this thread: the breaker hears of it before the next one is asked for."""
    route = job.route
    job.started_at = timezone.now()
    lease = None
    if route.max_concurrent_calls:
        lease = bulkhead_for_inline().try_acquire(
            route.name, route.max_concurrent_calls, lease_ttl(route.timeout_seconds)
        )
        if lease is None:
            BULKHEAD_REJECTED.labels(route.name).inc()
            return deferred_by_bulkhead(job)
    try:
        try:
            permit = job.breaker.acquire()
        except BreakerOpen as exc:
            return rejected(job.event, route, job.breaker, exc, job.started_at)
        started = time.perf_counter()
        result = traced_call(job, own_deadline=True)
        duration_ms = (time.perf_counter() - started) * 1000
        outcomes.on_attempt(job.breaker, permit, result, duration_ms)
        return classify(job, result, duration_ms)
    finally:
        if lease is not None:
            bulkhead_for_inline().release(route.name, lease)


def _route_for(table, event: Event) -> Route | None:
    # A replay run may name an alternate route; its copies come pinned to it (route_id).
    if event.replay_run_id is not None and event.route_id is not None:
        routes = table.by_service.get(event.service_id, ())
        return next((r for r in routes if r.pk == event.route_id), None)
    return table.match(event.service_id, event.type)


_inline_bulkhead = None


def bulkhead_for_inline():
    global _inline_bulkhead
    if _inline_bulkhead is None:
        _inline_bulkhead = make_bulkhead()
    return _inline_bulkhead


def _prepare(event: Event, route: Route | None, done: set[tuple[int, int]], token: str):
    """What needs no call is settled here; the rest becomes a Job for the pool."""
    now = timezone.now()
    if route is None:
        return Outcome(
            event,
            None,
            now,
            0.0,
            A.NO_ROUTE,
            S.DEAD,
            dead_reason="no_route",
            error=f"no enabled route for {event.type!r}",
            counts_as_attempt=False,
        )
    event.route = route
    if (route.pk, event.pk) in done:
        return Outcome(event, route.pk, now, 0.0, A.DUPLICATE, S.DELIVERED, counts_as_attempt=False)
    breaker = breaker_for(route)  # may read breaker rows: on this thread, not the call threads
    attempt = event.attempts + 1
    return Job(
        event=event,
        route=route,
        breaker=breaker,
        token=token,
        attempt=attempt,
        envelope=event_envelope(event, attempt),
        rank=RANK.get(event.priority, 2),
    )


def _recorded(pairs: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """The durable guard: (route, event) pairs already delivered, in one query."""
    if not pairs:
        return set()
    found = DeliveryRecord.objects.filter(event_id__in=[e for _, e in pairs]).values_list(
        "route_id", "event_id"
    )
    return set(found) & set(pairs)


def rejected(event, route, breaker, exc: BreakerOpen, now) -> Outcome:
    """The breaker is open: the handler is not called. The event waits for the breaker (or is
    dead-lettered, if the route says so); it is never lost."""
    BREAKER_REJECTED.labels(route.name).inc()
    error = f"breaker {route.name} is {exc.state.value.lower()}"
    if route.when_open == "dead_letter":
        return Outcome(
            event,
            route.pk,
            now,
            0.0,
            A.BREAKER_OPEN,
            S.DEAD,
            error=error,
            dead_reason="breaker_open",
            counts_as_attempt=False,
        )
    wait = exc.retry_after if exc.retry_after is not None else breaker.config.open_wait_s
    wait += random.uniform(0, 0.2)  # spread the deferred events over the reopening
    return Outcome(
        event,
        route.pk,
        now,
        0.0,
        A.BREAKER_OPEN,
        S.DEFERRED,
        error=error,
        next_attempt_at=now + timedelta(seconds=wait),
        counts_as_attempt=False,
    )


def classify(job, result: CallResult, duration_ms: float) -> Outcome:
    """The event's next status after a call: delivered, retry later, or dead."""
    event, route, attempt, started_at = job.event, job.route, job.attempt, job.started_at
    if result.outcome == "delivered":
        return Outcome(event, route.pk, started_at, duration_ms, A.DELIVERED, S.DELIVERED)
    if result.outcome == "permanent":
        return Outcome(
            event,
            route.pk,
            started_at,
            duration_ms,
            A.PERMANENT,
            S.DEAD,
            error=result.error,
            dead_reason="permanent",
        )
    kind = A.TIMEOUT if result.outcome == "timeout" else A.FAILED
    if attempt >= route.max_attempts:
        return Outcome(
            event,
            route.pk,
            started_at,
            duration_ms,
            kind,
            S.DEAD,
            error=result.error,
            dead_reason="max_attempts",
        )
    delay = retry_delay(attempt, base=settings.RETRY_BASE_SECONDS, cap=settings.RETRY_CAP_SECONDS)
    return Outcome(
        event,
        route.pk,
        started_at,
        duration_ms,
        kind,
        S.PENDING,
        error=result.error,
        next_attempt_at=started_at + timedelta(seconds=delay),
    )
