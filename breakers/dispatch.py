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
from breakers.schema_table import SchemaTable, schema_table
from breakers.schema_tolerance import SchemaViolation, tolerate
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
    schemas = schema_table()
    routed = [(event, _route_for(table, event)) for event in events]
    pairs = [(route.pk, event.pk) for event, route in routed if route is not None]
    done = idempotency.claim(pairs, token) | _recorded(pairs)
    jobs: list[Job] = []
    settled: list[Outcome] = []
    for event, route in routed:
        job_or_outcome = _prepare(event, route, done, token, table, schemas)
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
            settled = when_open(job, exc)
        else:
            started = time.perf_counter()
            result = traced_call(job, own_deadline=True)
            duration_ms = (time.perf_counter() - started) * 1000
            outcomes.on_attempt(job.breaker, permit, result, duration_ms)
            return classify(job, result, duration_ms)
    finally:
        if lease is not None:
            bulkhead_for_inline().release(route.name, lease)
    # The primary's breaker is open and it has a fallback: one more call, the fallback's own.
    return _call_inline(settled) if isinstance(settled, Job) else settled


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


def _prepare(
    event: Event,
    route: Route | None,
    done: set[tuple[int, int]],
    token: str,
    table=None,
    schemas: SchemaTable | None = None,
):
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
    tolerated = None
    types = schemas.by_service.get(event.service_id) if schemas is not None else None
    if types:  # else the service has no schema: one lookup, the payload goes as sent
        versions = types.get(event.type)
        if versions:
            try:
                tolerated = tolerate(versions, event.schema_version, event.payload)
            except SchemaViolation as exc:
                return schema_rejected(event, route, exc, now)
    breaker = breaker_for(route)  # may read breaker rows: on this thread, not the call threads
    attempt = event.attempts + 1
    job = Job(
        event=event,
        route=route,
        breaker=breaker,
        token=token,
        attempt=attempt,
        envelope=event_envelope(event, attempt),
        rank=RANK.get(event.priority, 2),
    )
    if tolerated is not None:
        # The envelope is this job's own: the stored event keeps what the producer sent.
        job.envelope["payload"], notes = tolerated
        job.note = "; ".join(notes)
    fallback = _fallback_of(table, route)
    if fallback is not None:
        # Built here with its breaker (which may read rows): the call threads only switch to it.
        job.fallback = Job(
            event=event,
            route=fallback,
            breaker=breaker_for(fallback),
            token=token,
            attempt=attempt,
            envelope=job.envelope,
            rank=job.rank,
            served_for=route,
            note=job.note,
        )
    return job


def schema_rejected(event: Event, route: Route, exc: SchemaViolation, now) -> Outcome:
    """The payload does not fit its schema: a dead letter without a call. Not the downstream's
    failure (its breaker does not hear of it) and not retried (no retry fixes a payload): an
    operator fixes the schema or the producer, then redrives it."""
    return Outcome(
        event,
        route.pk,
        now,
        0.0,
        A.SCHEMA_REJECTED,
        S.DEAD,
        dead_reason="schema",
        error=f"schema: {exc.field}: {exc.why}",
        counts_as_attempt=False,
    )


def _fallback_of(table, route: Route) -> Route | None:
    """The route's fallback if it is set and enabled (the table holds enabled routes only)."""
    if table is None or route.fallback_route_id is None:
        return None
    routes = table.by_service.get(route.service_id, ())
    return next((r for r in routes if r.pk == route.fallback_route_id), None)


def when_open(job: Job, exc: BreakerOpen) -> Job | Outcome:
    """The job's breaker refused the call. A primary with a fallback: the fallback's job, to
    run through the fallback's own bulkhead, breaker and timeout. A fallback refused in turn:
    the event waits for its primary as if there were no fallback. Otherwise `rejected`."""
    if job.fallback is not None:
        BREAKER_REJECTED.labels(job.route.name).inc()
        job.fallback.primary_wait = _open_wait(job.breaker, exc)
        return job.fallback
    if job.served_for is not None:
        BREAKER_REJECTED.labels(job.route.name).inc()
        error = f"fallback {job.route.name}: breaker is {exc.state.value.lower()}"
        return _fallback_failed(job, A.BREAKER_OPEN, error, 0.0, counted=False)
    return rejected(job.event, job.route, job.breaker, exc, job.started_at)


def _open_wait(breaker, exc: BreakerOpen) -> float:
    wait = exc.retry_after if exc.retry_after is not None else breaker.config.open_wait_s
    return wait + random.uniform(0, 0.2)  # spread the deferred events over the reopening


def _fallback_failed(job: Job, kind: str, error: str, duration_ms: float, *, counted: bool):
    """The fallback could not serve the event: it is deferred for its primary (whose breaker
    is open), never dead-lettered by the fallback; the attempt row names the fallback."""
    now = job.started_at or timezone.now()
    primary = job.served_for
    return Outcome(
        job.event,
        primary.pk,
        now,
        duration_ms,
        kind,
        S.DEFERRED,
        error=f"breaker {primary.name} is open; {error}",
        next_attempt_at=now + timedelta(seconds=job.primary_wait),
        counts_as_attempt=counted,
        attempt_route_id=job.route.pk,
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
    wait = _open_wait(breaker, exc)
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
    """The event's next status after a call: delivered, retry later, or dead; the attempt
    carries what schema tolerance did to the payload that was sent."""
    outcome = _classify(job, result, duration_ms)
    outcome.note = job.note
    return outcome


def _classify(job, result: CallResult, duration_ms: float) -> Outcome:
    event, route, attempt, started_at = job.event, job.route, job.attempt, job.started_at
    if job.served_for is not None:  # a fallback's call: served, or back to wait for the primary
        if result.outcome == "delivered":
            return Outcome(
                event,
                route.pk,
                started_at,
                duration_ms,
                A.FALLBACK,
                S.DELIVERED,
                served_for=job.served_for.pk,
            )
        kind = {"timeout": A.TIMEOUT, "permanent": A.PERMANENT}.get(result.outcome, A.FAILED)
        return _fallback_failed(
            job, kind, f"fallback {route.name}: {result.error}", duration_ms, counted=True
        )
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
