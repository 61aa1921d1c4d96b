"""Prometheus metrics and OpenTelemetry spans of deliveries."""

from __future__ import annotations

from opentelemetry import trace
from prometheus_client import Counter, Histogram

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
