"""Delivering a batch of events: claim, route, guard against duplicates, call each handler
within its timeout, and pass every outcome to the outcome hook."""

from __future__ import annotations

import logging
import random
import time
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from opentelemetry.trace import SpanKind, Status, StatusCode

from breakers import outcomes
from breakers.engine import BreakerOpen
from breakers.guard import breaker_for
from breakers.handlers import CallResult, call_handler, event_envelope
from breakers.models import Route
from breakers.nodes import current_node
from breakers.routing import route_table
from breakers.telemetry import BREAKER_REJECTED, delivery_attributes, tracer
from replay import idempotency
from replay.log import Outcome, claim_events, new_claim_token
from replay.models import DeliveryAttempt, DeliveryRecord, Event
from replay.retries import retry_delay

log = logging.getLogger(__name__)
S = Event.Status
A = DeliveryAttempt.Outcome


def dispatch_events(pks: list[int]) -> int:
    """Delivers what it can claim of these events; returns how many it claimed."""
    node = current_node()
    token = new_claim_token()
    events = claim_events(pks, token=token, node=node.name)
    if not events:
        return 0
    node.in_flight += len(events)
    try:
        table = route_table()
        routed = [(event, _route_for(table, event)) for event in events]
        pairs = [(route.pk, event.pk) for event, route in routed if route is not None]
        done = idempotency.claim(pairs, token) | _recorded(pairs)
        results = [_deliver(event, route, done) for event, route in routed]
        outcomes.record(results, token=token, node=node)
    finally:
        node.in_flight -= len(events)
    return len(events)


def _route_for(table, event: Event) -> Route | None:
    # A replay run may name an alternate route; its copies come pinned to it (route_id).
    if event.replay_run_id is not None and event.route_id is not None:
        routes = table.by_service.get(event.service_id, ())
        return next((r for r in routes if r.pk == event.route_id), None)
    return table.match(event.service_id, event.type)


def _recorded(pairs: list[tuple[int, int]]) -> set[tuple[int, int]]:
    """The durable guard: (route, event) pairs already delivered, in one query."""
    if not pairs:
        return set()
    found = DeliveryRecord.objects.filter(event_id__in=[e for _, e in pairs]).values_list(
        "route_id", "event_id"
    )
    return set(found) & set(pairs)


def _deliver(event: Event, route: Route | None, done: set[tuple[int, int]]) -> Outcome:
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
    breaker = breaker_for(route)
    try:
        permit = breaker.acquire()
    except BreakerOpen as exc:
        return _rejected(event, route, breaker, exc, now)
    attempt = event.attempts + 1
    with tracer.start_as_current_span(
        f"deliver {event.type}",
        kind=SpanKind.CONSUMER,
        attributes=delivery_attributes(event, route.name, attempt),
    ) as span:
        started = time.perf_counter()
        try:
            result = call_handler(route, event_envelope(event, attempt))
        except Exception as exc:  # a bug in a handler path must not lose the batch
            log.exception("handler call crashed for event %s", event.pk)
            result = CallResult("failed", f"{type(exc).__name__}: {exc}")
        duration_ms = (time.perf_counter() - started) * 1000
        outcomes.on_attempt(breaker, permit, result, duration_ms)
        span.set_attribute("controlplane.outcome", result.outcome)
        if result.outcome != "delivered":
            span.set_status(Status(StatusCode.ERROR, result.error[:200]))
    return _classify(event, route, attempt, result, now, duration_ms)


def _rejected(event, route, breaker, exc: BreakerOpen, now) -> Outcome:
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


def _classify(event, route, attempt, result: CallResult, started_at, duration_ms) -> Outcome:
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
