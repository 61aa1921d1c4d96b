"""Prometheus metrics and OpenTelemetry spans of deliveries."""

from __future__ import annotations

from opentelemetry import trace
from prometheus_client import Counter, Gauge, Histogram

from breakers.engine import State

tracer = trace.get_tracer("controlplane.dispatch")

DELIVERY_SECONDS = Histogram(
    "controlplane_delivery_seconds",
    "Duration of handler calls, by route and priority class.",
    ["route", "priority"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
INGEST_TO_DELIVERED_SECONDS = Histogram(
    "controlplane_ingest_to_delivered_seconds",
    "From the event's receipt to its delivery, by priority class.",
    ["priority"],
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
OUTCOMES = Counter(
    "controlplane_delivery_outcomes_total",
    "Attempt outcomes, by route, priority class and outcome.",
    ["route", "priority", "outcome"],
)

# --- the delivery pool and bulkheads (per process; summed over live processes) ---------------

IN_FLIGHT = Gauge(
    "controlplane_delivery_in_flight",
    "Handler calls in flight, by route.",
    ["route"],
    multiprocess_mode="livesum",
)
POOL_QUEUED = Gauge(
    "controlplane_delivery_queued",
    "Claimed events queued in the worker processes' delivery pools, by priority class.",
    ["priority"],
    multiprocess_mode="livesum",
)
STRAGGLERS = Gauge(
    "controlplane_delivery_stragglers",
    "Handler calls abandoned at their deadline whose threads are still running.",
    multiprocess_mode="livesum",
)
BULKHEAD_WAITS = Counter(
    "controlplane_bulkhead_full_total",
    "Calls that found their route's bulkhead full and waited for a slot.",
    ["route"],
)
BULKHEAD_REJECTED = Counter(
    "controlplane_bulkhead_rejected_total",
    "Events deferred because their route's bulkhead stayed full past max_wait_ms.",
    ["route"],
)
INGEST_SHED = Counter(
    "controlplane_ingest_shed_total",
    "Events shed at ingest (not acknowledged, not written), by service, priority and reason "
    "(rate_limited, overloaded).",
    ["service", "priority", "reason"],
)
PENDING = Gauge(
    "controlplane_events_backlog",
    "Events waiting in the event log (pending, deferred or dispatched), by priority class.",
    ["priority"],
    multiprocess_mode="mostrecent",
)
OLDEST_PENDING_SECONDS = Gauge(
    "controlplane_events_oldest_pending_seconds",
    "Age of the oldest event waiting in the event log, by priority class.",
    ["priority"],
    multiprocess_mode="mostrecent",
)


def delivery_attributes(event, route_name: str, attempt: int) -> dict:
    """Semantic attributes so that one filter finds every delivery of one kind."""
    return {
        "messaging.system": "controlplane",
        "messaging.operation.type": "process",
        "messaging.message.id": event.event_id,
        "controlplane.service": event.service.slug,
        "controlplane.event.type": event.type,
        "controlplane.event.priority": event.priority,
        "controlplane.route": route_name,
        "controlplane.attempt": attempt,
        "controlplane.replay": event.is_replay,
    }


# --- breakers (layer 5) ------------------------------------------------------------------------

# Numbered for the gauge (part of the metric's contract: dashboards map the numbers back).
STATE_VALUES = {
    State.CLOSED.slug: 0,
    State.HALF_OPEN.slug: 1,
    State.OPEN.slug: 2,
    State.FORCED_OPEN.slug: 3,
    State.FORCED_CLOSED.slug: 4,
    State.DISABLED.slug: 5,
}
BREAKER_STATE = Gauge(
    "controlplane_breaker_state",
    "Breaker state: 0 closed, 1 half-open, 2 open, 3 forced open, 4 forced closed, 5 disabled.",
    ["breaker"],
    multiprocess_mode="mostrecent",
)
BREAKER_TRANSITIONS = Counter(
    "controlplane_breaker_transitions_total",
    "Breaker state transitions, counted by the process that made them.",
    ["breaker", "from_state", "to_state"],
)
BREAKER_REJECTED = Counter(
    "controlplane_breaker_rejected_calls_total",
    "Calls not made because the breaker was open.",
    ["breaker"],
)


def observe_transition(t, *, local: bool) -> None:
    BREAKER_STATE.labels(t.name).set(STATE_VALUES.get(t.to_state.slug, -1))
    if not local:
        return
    BREAKER_TRANSITIONS.labels(t.name, t.from_state.slug, t.to_state.slug).inc()
    attributes = {
        "circuit.breaker.name": t.name,
        "state.from": t.from_state.value,
        "state.to": t.to_state.value,
        "circuit.breaker.reason": t.reason,
        "circuit.breaker.failure_rate": t.failure_rate,
        "circuit.breaker.calls": t.calls,
    }
    span = trace.get_current_span()
    if span.is_recording():
        span.add_event("circuit_state_transition", attributes)
    else:
        with tracer.start_as_current_span("circuit_breaker transition") as own:
            own.add_event("circuit_state_transition", attributes)
