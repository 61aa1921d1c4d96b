"""The breaker layers in the pipeline: a failing route trips, its events wait (never lost),
a probe closes it; operators force states and edit thresholds through the API."""

from __future__ import annotations

import time

import pytest
from django.utils import timezone

from breakers.dispatch import dispatch_events
from breakers.dynamic import recompute
from breakers.models import BreakerTransition, CircuitBreaker
from breakers.registry import effective_config
from controlplane.models import AuditEntry
from replay.ingest import ingest_events
from replay.models import DeliveryAttempt, Event
from tests.conftest import event_body, make_route
from tests.workers import wait_for

# Transitions are written by the breaker store's own thread: it must see committed rows.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.smoke]

QUICK = {
    "consecutive_failures": 3,
    "open_wait_s": 0.3,
    "max_open_wait_s": 0.3,
    "half_open_probe_interval_s": 0.0,
}


@pytest.fixture
def fast(settings):
    settings.ROUTE_REFRESH_SECONDS = 0.01


def ingest(prefix: str, n: int) -> list[int]:
    ingest_events([event_body(f"{prefix}-{i}") for i in range(n)])
    return list(
        Event.objects.filter(event_id__startswith=prefix)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def due_now():
    Event.objects.filter(status__in=["pending", "deferred"]).update(next_attempt_at=timezone.now())


def test_a_failing_route_trips_defers_and_recovers_through_a_probe(
    checkout, operator, target, fast
):
    route = make_route(checkout, operator, target=target.url)
    CircuitBreaker.objects.filter(route=route).update(config=QUICK)
    target.default_status = 503
    pks = ingest("t", 10)
    dispatch_events(pks)
    # A failure is flushed at once, so the trip is decided before the next call.
    called = len(target.calls)
    assert called == 3
    statuses = list(Event.objects.order_by("pk").values_list("status", flat=True))
    assert statuses == ["pending"] * called + ["deferred"] * (10 - called)
    assert DeliveryAttempt.objects.filter(outcome="breaker_open").count() == 10 - called
    # transitions are written by the store's thread: give it a moment under load
    assert wait_for(lambda: BreakerTransition.objects.filter(to_state="open").exists(), 5)
    opened = BreakerTransition.objects.get(to_state="open")
    assert opened.from_state == "closed" and opened.failures >= 3
    assert wait_for(lambda: CircuitBreaker.objects.get(route=route).state == "open", 5)

    target.default_status = 200
    time.sleep(0.35)
    due_now()
    dispatch_events(pks)
    due_now()
    dispatch_events(pks)
    assert Event.objects.filter(status="delivered").count() == 10
    assert wait_for(lambda: BreakerTransition.objects.filter(to_state="closed").exists(), 5)
    states = list(BreakerTransition.objects.order_by("at", "pk").values_list("to_state", flat=True))
    assert states == ["open", "half_open", "closed"]


def test_a_route_may_dead_letter_while_open(checkout, operator, target, fast):
    route = make_route(checkout, operator, target=target.url, when_open="dead_letter")
    CircuitBreaker.objects.filter(route=route).update(config=QUICK)
    target.default_status = 500
    dispatch_events(ingest("d", 5))
    reasons = set(Event.objects.filter(status="dead").values_list("dead_reason", flat=True))
    assert reasons == {"breaker_open"}


def test_force_open_and_back_through_the_api(checkout, operator, viewer, target, fast):
    make_route(checkout, operator, target=target.url)
    api = operator.client()
    missing = api.post(
        "/api/v1/breakers/checkout-route/force", {"mode": "forced_open"}, format="json"
    )
    assert missing.status_code == 400 and "reason" in missing.json()["errors"]
    assert (
        viewer.client()
        .post(
            "/api/v1/breakers/checkout-route/force",
            {"mode": "forced_open", "reason": "x"},
            format="json",
        )
        .status_code
        == 403
    )
    forced = api.post(
        "/api/v1/breakers/checkout-route/force",
        {"mode": "forced_open", "reason": "downstream maintenance"},
        format="json",
    )
    assert forced.status_code == 200 and forced.json()["forced_state"] == "forced_open"
    assert AuditEntry.objects.get(action="breaker.force").reason == "downstream maintenance"

    pks = ingest("f", 2)
    dispatch_events(pks)
    assert target.calls == [] and Event.objects.filter(status="deferred").count() == 2

    api.post(
        "/api/v1/breakers/checkout-route/force",
        {"mode": "automatic", "reason": "maintenance over"},
        format="json",
    )
    time.sleep(0.02)
    due_now()
    dispatch_events(pks)
    assert Event.objects.filter(status="delivered").count() == 2
    transitions = viewer.client().get("/api/v1/breakers/checkout-route/transitions").json()
    assert [t["to_state"] for t in transitions["results"]][:2] == ["closed", "forced_open"]


def test_thresholds_are_validated_and_applied(checkout, operator):
    make_route(checkout, operator, target="http://127.0.0.1:1/x")
    api = operator.client()
    bad = api.patch(
        "/api/v1/breakers/checkout-route",
        {"config": {"window_size": 5, "minimum_calls": 10}},
        format="json",
    )
    assert bad.status_code == 400, bad.content
    assert bad.json()["errors"]["config"]
    unknown = api.patch("/api/v1/breakers/checkout-route", {"config": {"colour": 1}}, format="json")
    assert "colour" in unknown.json()["errors"]["config"]
    ok = api.patch(
        "/api/v1/breakers/checkout-route", {"config": {"consecutive_failures": 9}}, format="json"
    )
    assert ok.status_code == 200 and ok.json()["config"]["consecutive_failures"] == 9
    assert AuditEntry.objects.filter(action="breaker.thresholds").exists()


def test_a_dynamic_threshold_follows_its_samples_or_a_push(checkout, operator):
    route = make_route(checkout, operator, target="http://127.0.0.1:1/x")
    api = operator.client()
    refused = api.post("/api/v1/breakers/checkout-route/threshold", {"value": 1.5}, format="json")
    assert refused.status_code == 400 and "dynamic_field" in refused.json()["errors"]
    api.patch(
        "/api/v1/breakers/checkout-route",
        {"dynamic_field": "slow_call_duration_s", "dynamic_k": 2},
        format="json",
    )
    [pk] = ingest("s", 1)
    now = timezone.now()
    DeliveryAttempt.objects.bulk_create(
        [
            DeliveryAttempt(
                event_id=pk,
                route=route,
                number=i,
                started_at=now,
                duration_ms=ms,
                outcome="delivered",
            )
            for i, ms in enumerate([100, 200] * 10)
        ]
    )
    breaker = CircuitBreaker.objects.get(route=route)
    assert recompute(breaker) == pytest.approx(0.15 + 2 * 0.05)
    breaker.refresh_from_db()
    assert breaker.dynamic_source == "samples"
    assert effective_config(breaker).slow_call_duration_s == pytest.approx(0.25)
    pushed = api.post(
        "/api/v1/breakers/checkout-route/threshold", {"value": 1.5}, format="json"
    ).json()
    assert pushed["dynamic"]["value"] == 1.5 and pushed["dynamic"]["source"] == "push"
    assert pushed["config"]["slow_call_duration_s"] == 1.5


def test_the_breaker_list_shows_recent_figures(checkout, operator, viewer, target):
    make_route(checkout, operator, target=target.url)
    target.scripts["b-0"] = [500]
    dispatch_events(ingest("b", 4))
    [row] = viewer.client().get("/api/v1/breakers").json()["results"]
    assert row["name"] == "checkout-route" and row["state"] == "closed"
    assert row["recent"]["calls"] == 4 and row["recent"]["failure_rate"] == 25.0
