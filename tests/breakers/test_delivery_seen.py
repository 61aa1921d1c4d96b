"""Seen, not guessed: the Workers page shows what waits in the event log per priority class,
the board shows in flight against the bulkhead, and the bulkhead is set through every door."""

from __future__ import annotations

import pytest
from django.test import Client
from django.utils import timezone

from breakers.models import Route, WorkerNode
from breakers.nodes import backlog
from replay.ingest import ingest_events
from tests.conftest import event_body, make_route

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def logged_in(actor) -> Client:
    client = Client()
    client.force_login(actor.user)
    return client


def test_the_workers_page_shows_the_backlog_when_no_worker_runs(viewer, operator, checkout):
    make_route(checkout, operator, target="http://127.0.0.1:9/hook")
    ingest_events([event_body(f"w-{i}", priority="HIGH") for i in range(30)])
    ingest_events([event_body(f"l-{i}", priority="LOW") for i in range(5)])
    rows = {row["priority"]: row for row in backlog()}
    assert rows["HIGH"]["waiting"] == 30 and rows["LOW"]["waiting"] == 5
    assert rows["CRITICAL"]["waiting"] == 0
    assert rows["HIGH"]["oldest_s"] >= 0
    page = logged_in(viewer).get("/nodes/").content.decode()
    assert "No healthy worker while 35 events wait" in page


def test_the_board_shows_in_flight_against_the_bulkhead(viewer, operator, checkout):
    make_route(checkout, operator, target="http://127.0.0.1:9/hook", max_concurrent_calls=8)
    WorkerNode.objects.create(
        name="h:1",
        hostname="h",
        pid=1,
        last_heartbeat=timezone.now(),
        in_flight=3,
        in_flight_by_route={"checkout-route": 3},
    )
    WorkerNode.objects.create(
        name="h:2", hostname="h", pid=2, last_heartbeat=timezone.now(), in_flight_by_route={}
    )
    page = logged_in(viewer).get("/breakers/").content.decode()
    assert "3 / 8" in page
    nodes = logged_in(viewer).get("/nodes/").content.decode()
    assert "checkout-route</code> 3" in nodes
    assert "No healthy worker" not in nodes


def test_the_bulkhead_is_set_through_the_api_and_bad_values_name_the_field(operator, checkout):
    api = operator.client()
    body = {
        "name": "bh",
        "service": "checkout",
        "event_type": "*",
        "kind": "webhook",
        "target": "http://127.0.0.1:9/hook",
    }
    bad = api.post("/api/v1/routes", {**body, "max_concurrent_calls": -1}, format="json")
    assert bad.status_code == 400 and "max_concurrent_calls" in bad.json()["errors"]
    bad = api.post("/api/v1/routes", {**body, "max_wait_ms": "soon"}, format="json")
    assert bad.status_code == 400 and "max_wait_ms" in bad.json()["errors"]
    ok = api.post(
        "/api/v1/routes", {**body, "max_concurrent_calls": 12, "max_wait_ms": 200}, format="json"
    )
    assert ok.status_code == 201, ok.json()
    route = Route.objects.get(name="bh")
    assert (route.max_concurrent_calls, route.max_wait_ms) == (12, 200)


def test_the_route_form_takes_a_bulkhead_and_leaves_it_off_when_empty(operator, checkout):
    client = logged_in(operator)
    form = {
        "service": checkout.pk,
        "event_type": "order.*",
        "kind": "webhook",
        "target": "http://127.0.0.1:9/hook",
        "timeout_seconds": 2,
        "max_attempts": 3,
        "enabled": "on",
        "when_open": "defer",
    }
    client.post("/routes/", {**form, "name": "with", "max_concurrent_calls": 4})
    client.post("/routes/", {**form, "name": "without"})
    assert Route.objects.get(name="with").max_concurrent_calls == 4
    assert Route.objects.get(name="without").max_concurrent_calls == 0
