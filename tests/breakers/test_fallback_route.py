"""A route's fallback route: it receives the route's events while the route's breaker is open,
through its own breaker, and the events it served are marked so; a replay run re-delivers
exactly those to the route once it has recovered."""

from __future__ import annotations

import time

import pytest
from django.test import Client
from django.utils import timezone

from breakers.control import force_breaker
from breakers.dispatch import dispatch_events
from breakers.models import CircuitBreaker
from breakers.routes import RouteError, update_route
from controlplane.models import AuditEntry, Service
from replay import replay_runs
from replay.ingest import ingest_events
from replay.models import DeliveryAttempt, DeliveryRecord, Event, ReplayRun
from tests.conftest import event_body, make_route
from tests.http_target import Target
from tests.workers import wait_for

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


@pytest.fixture
def warmer():
    with Target() as t:
        yield t


def ingest(prefix: str, n: int) -> list[int]:
    ingest_events([event_body(f"{prefix}-{i}") for i in range(n)])
    return list(
        Event.objects.filter(event_id__startswith=prefix)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def due_now():
    Event.objects.filter(status__in=["pending", "deferred"]).update(next_attempt_at=timezone.now())


# Open for longer than the test runs: no probe reaches the primary meanwhile.
LONG_OPEN = {**QUICK, "open_wait_s": 60.0, "max_open_wait_s": 60.0}


def primary_with_fallback(checkout, operator, target, warmer, config=QUICK):
    fallback = make_route(
        checkout, operator, name="cache-warmer", event_type="warm.never", target=warmer.url
    )
    primary = make_route(checkout, operator, target=target.url, fallback_route=fallback)
    CircuitBreaker.objects.filter(route=primary).update(config=config)
    return primary, fallback


def test_while_the_breaker_is_open_the_fallback_serves_the_events_marked(
    checkout, operator, target, warmer, fast
):
    primary, fallback = primary_with_fallback(checkout, operator, target, warmer, LONG_OPEN)
    target.default_status = 503
    pks = ingest("t", 10)
    dispatch_events(pks)
    assert len(target.calls) == 3  # then the breaker opened
    served = Event.objects.filter(served_for=primary)
    assert served.count() == 7 and set(served.values_list("status", flat=True)) == {"delivered"}
    assert set(served.values_list("route_id", flat=True)) == {fallback.pk}
    assert sorted(c["event_id"] for c in warmer.calls) == sorted(
        served.values_list("event_id", flat=True)
    )
    assert DeliveryAttempt.objects.filter(outcome="fallback", route=fallback).count() == 7
    assert DeliveryRecord.objects.filter(route=fallback).count() == 7
    assert not DeliveryRecord.objects.filter(route=primary).exists()
    shown = operator.client().get(f"/api/v1/events/{served.first().pk}").json()
    assert (shown["served_for"], shown["route"]) == (primary.name, fallback.name)
    assert shown["attempts_log"][-1]["outcome"] == "fallback"
    # the three that failed on the primary are retried while it is open: the fallback serves them
    due_now()
    dispatch_events(pks)
    assert Event.objects.filter(served_for=primary, status="delivered").count() == 10
    assert len(target.calls) == 3


def test_a_failing_fallback_defers_the_event_for_its_primary(
    checkout, operator, target, warmer, fast
):
    primary, fallback = primary_with_fallback(checkout, operator, target, warmer, LONG_OPEN)
    target.default_status = 503
    warmer.default_status = 500
    dispatch_events(ingest("f", 5))
    assert len(target.calls) == 3 and len(warmer.calls) == 2
    deferred = Event.objects.filter(status="deferred")
    assert deferred.count() == 2 and set(deferred.values_list("route_id", flat=True)) == {
        primary.pk
    }
    assert not Event.objects.filter(served_for__isnull=False).exists()
    failed = DeliveryAttempt.objects.filter(route=fallback)
    assert set(failed.values_list("outcome", flat=True)) == {"failed"}


def test_without_a_fallback_an_open_breaker_still_defers(checkout, operator, target, fast):
    route = make_route(checkout, operator, target=target.url)
    CircuitBreaker.objects.filter(route=route).update(config=QUICK)
    target.default_status = 503
    dispatch_events(ingest("n", 5))
    assert Event.objects.filter(status="deferred").count() == 2
    assert DeliveryAttempt.objects.filter(outcome="fallback").count() == 0


def test_a_bad_fallback_is_refused_naming_the_field(checkout, operator, target):
    api = operator.client()
    other = Service.objects.create(slug="billing", name="Billing")
    foreign = make_route(other, operator, name="billing-route", target=target.url)
    warm = make_route(checkout, operator, name="warm", event_type="warm.x", target=target.url)
    body = {
        "service": "checkout",
        "name": "orders",
        "event_type": "order.*",
        "kind": "webhook",
        "target": target.url,
    }
    for fallback in ("billing-route", "no-such-route"):
        refused = api.post("/api/v1/routes", {**body, "fallback_route": fallback}, format="json")
        assert refused.status_code == 400, refused.json()
        assert "fallback_route" in refused.json()["errors"]
    created = api.post("/api/v1/routes", {**body, "fallback_route": "warm"}, format="json")
    assert created.status_code == 201 and created.json()["fallback_route"] == "warm"
    self_fallback = api.patch("/api/v1/routes/orders", {"fallback_route": "orders"}, format="json")
    assert self_fallback.status_code == 400 and "fallback_route" in self_fallback.json()["errors"]
    # one hop: the fallback takes no fallback of its own, and a fallback cannot be chained to
    chained = api.patch("/api/v1/routes/warm", {"fallback_route": "orders"}, format="json")
    assert chained.status_code == 400 and "fallback_route" in chained.json()["errors"]
    warm2 = make_route(checkout, operator, name="warm2", event_type="warm.y", target=target.url)
    update_route(warm2, actor=operator.user, fallback_route=warm)
    to_chain = api.patch("/api/v1/routes/orders", {"fallback_route": "warm2"}, format="json")
    assert to_chain.status_code == 400 and "fallback_route" in to_chain.json()["errors"]
    # the verb itself refuses, whatever door calls it
    with pytest.raises(RouteError) as refused_by_verb:
        update_route(warm, actor=operator.user, fallback_route=foreign)
    assert refused_by_verb.value.field == "fallback_route"
    assert AuditEntry.objects.filter(action="route.update", after__fallback_route__isnull=False)


def served_then_recovered(checkout, operator, target, warmer):
    """Primary down: its breaker opens and the fallback serves; then the primary is back."""
    primary, fallback = primary_with_fallback(checkout, operator, target, warmer, LONG_OPEN)
    target.default_status = 503
    pks = ingest("r", 8)
    dispatch_events(pks)
    due_now()
    dispatch_events(pks)
    assert Event.objects.filter(served_for=primary, status="delivered").count() == 8
    target.default_status = 200
    target.calls.clear()
    # The operator, seeing the downstream back, closes the breaker.
    breaker = CircuitBreaker.objects.get(route=primary)
    force_breaker(breaker, "forced_closed", actor=operator.user, reason="downstream is back")
    time.sleep(0.05)  # workers re-read the row (ROUTE_REFRESH_SECONDS)
    return primary, fallback


def browser(actor) -> Client:
    client = Client()
    client.force_login(actor.user)
    return client


def run_to_end(run: ReplayRun) -> ReplayRun:
    while replay_runs.work(run.pk, sleep=lambda s: None) == "continue":
        pass
    return ReplayRun.objects.get(pk=run.pk)


def deliver_copies(run: ReplayRun) -> None:
    for _ in range(3):
        due_now()
        dispatch_events(list(run.copies.values_list("pk", flat=True)))


def test_the_button_replays_exactly_what_the_fallback_served_once(
    checkout, operator, viewer, target, warmer, fast
):
    primary, _ = served_then_recovered(checkout, operator, target, warmer)
    ingest_events([event_body("live-one")])  # delivered normally: not the fallback's
    dispatch_events(list(Event.objects.filter(event_id="live-one").values_list("pk", flat=True)))
    target.calls.clear()
    page = browser(operator).get(f"/breakers/{primary.name}/")
    assert b"Replay what the fallback served" in page.content
    viewers_page = browser(viewer).get(f"/breakers/{primary.name}/")
    assert viewers_page.status_code == 200
    assert b"Replay what the fallback served" not in viewers_page.content
    url = f"/breakers/{primary.name}/replay-fallback"
    assert browser(viewer).post(url).status_code == 403
    clicked = browser(operator).post(url)
    assert clicked.status_code == 302
    run = ReplayRun.objects.get()
    assert run.source == "fallback" and run.route == primary and run.mode == "live"
    assert AuditEntry.objects.filter(action="replay.create", object_id=str(run.pk)).exists()
    run = run_to_end(run)
    assert (run.status, run.total, run.done, run.skipped) == ("done", 8, 8, 0)
    deliver_copies(run)
    served_ids = {f"r-{i}" for i in range(8)}
    assert {c["event_id"].split("~")[0] for c in target.calls} == served_ids
    assert len(target.calls) == 8  # each once
    assert all(c["headers"].get("X-Replay-Run") == str(run.pk) for c in target.calls)
    # a second click finds them all delivered on the primary since: nothing goes twice
    again = run_to_end(replay_runs.create_fallback_replay(actor=operator.user, route=primary))
    assert (again.total, again.done, again.skipped) == (8, 0, 8)
    assert len(target.calls) == 8


def test_the_api_starts_a_fallback_replay_and_names_bad_fields(
    checkout, operator, viewer, target, warmer, fast
):
    primary, _ = served_then_recovered(checkout, operator, target, warmer)
    api = operator.client()
    unknown = api.post("/api/v1/replays/fallback", {"route": "nope"}, format="json")
    assert unknown.status_code == 400 and "route" in unknown.json()["errors"]
    bad_rate = api.post(
        "/api/v1/replays/fallback", {"route": primary.name, "rate": 0}, format="json"
    )
    assert bad_rate.status_code == 400 and "rate" in bad_rate.json()["errors"]
    denied = viewer.client().post(
        "/api/v1/replays/fallback", {"route": primary.name}, format="json"
    )
    assert denied.status_code == 403
    started = api.post("/api/v1/replays/fallback", {"route": primary.name}, format="json")
    assert started.status_code == 202 and started.json()["source"] == "fallback"
    run = run_to_end(ReplayRun.objects.get(pk=started.json()["id"]))
    deliver_copies(run)
    assert wait_for(lambda: len(target.calls) == 8, 5)
    assert DeliveryRecord.objects.filter(route=primary, event__replay_run=run).count() == 8
