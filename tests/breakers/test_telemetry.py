"""Each delivery is a span with the event's attributes, and outcomes are counted."""

from __future__ import annotations

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import REGISTRY

from breakers.dispatch import dispatch_events
from replay.ingest import ingest_events
from replay.models import Event
from tests.conftest import event_body, make_route

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


@pytest.fixture
def spans():
    exporter = InMemorySpanExporter()
    provider = trace.get_tracer_provider()
    if not hasattr(provider, "add_span_processor"):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    exporter.clear()


def test_a_delivery_is_a_span_with_semantic_attributes(checkout, operator, target, spans):
    make_route(checkout, operator, target=target.url)
    target.scripts["s-2"] = [500]
    ingest_events([event_body("s-1", priority="HIGH"), event_body("s-2")])
    dispatch_events(list(Event.objects.values_list("pk", flat=True)))
    deliveries = {
        s.attributes["messaging.message.id"]: s
        for s in spans.get_finished_spans()
        if s.name.startswith("deliver ")
    }
    ok, failed = deliveries["s-1"], deliveries["s-2"]
    assert ok.attributes["controlplane.service"] == "checkout"
    assert ok.attributes["controlplane.event.type"] == "order.created"
    assert ok.attributes["controlplane.event.priority"] == "HIGH"
    assert ok.attributes["controlplane.route"] == "checkout-route"
    assert ok.attributes["controlplane.attempt"] == 1
    assert ok.attributes["controlplane.replay"] is False
    assert ok.attributes["controlplane.outcome"] == "delivered"
    assert failed.status.status_code.name == "ERROR"


def test_outcomes_are_counted_per_route_and_class(checkout, operator, target):
    make_route(checkout, operator, target=target.url)
    labels = {"route": "checkout-route", "priority": "LOW", "outcome": "delivered"}
    before = REGISTRY.get_sample_value("controlplane_delivery_outcomes_total", labels) or 0
    ingest_events([event_body("m-1", priority="LOW")])
    dispatch_events(list(Event.objects.values_list("pk", flat=True)))
    after = REGISTRY.get_sample_value("controlplane_delivery_outcomes_total", labels)
    assert after == before + 1
    count = REGISTRY.get_sample_value(
        "controlplane_delivery_seconds_count", {"route": "checkout-route", "priority": "LOW"}
    )
    assert count and count >= 1


def test_a_transition_is_a_span_event_and_a_metric(checkout, operator, target, spans, settings):
    from breakers.models import CircuitBreaker

    settings.ROUTE_REFRESH_SECONDS = 0.01
    route = make_route(checkout, operator, target=target.url)
    CircuitBreaker.objects.filter(route=route).update(config={"consecutive_failures": 2})
    target.default_status = 503
    before = (
        REGISTRY.get_sample_value(
            "controlplane_breaker_transitions_total",
            {"breaker": "checkout-route", "from_state": "closed", "to_state": "open"},
        )
        or 0
    )
    ingest_events([event_body(f"o-{i}") for i in range(4)])
    dispatch_events(list(Event.objects.values_list("pk", flat=True)))

    def transition_events():
        return [
            e
            for s in spans.get_finished_spans()
            for e in s.events
            if e.name == "circuit_state_transition"
        ]

    import time

    deadline = time.monotonic() + 5
    while not transition_events() and time.monotonic() < deadline:
        time.sleep(0.05)  # with Redis the trip is made by the store's flush thread
    [event] = transition_events()
    assert event.attributes["circuit.breaker.name"] == "checkout-route"
    assert (event.attributes["state.from"], event.attributes["state.to"]) == ("CLOSED", "OPEN")
    after = REGISTRY.get_sample_value(
        "controlplane_breaker_transitions_total",
        {"breaker": "checkout-route", "from_state": "closed", "to_state": "open"},
    )
    assert after == before + 1
    assert (
        REGISTRY.get_sample_value("controlplane_breaker_state", {"breaker": "checkout-route"}) == 2
    )
