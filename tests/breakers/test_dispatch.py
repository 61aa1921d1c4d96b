"""Dispatch in this process against a real HTTP receiver and the real database and Redis."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from breakers.dispatch import dispatch_events
from breakers.route_table import route_table
from breakers.routes import update_route
from replay.dead_letters import dead_letters, redrive
from replay.ingest import ingest_events
from replay.models import DeliveryAttempt, DeliveryRecord, Event
from tests.conftest import event_body, make_route

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def ingest(*ids, **fields) -> list[int]:
    ingest_events([event_body(i, **fields) for i in ids])
    return list(Event.objects.filter(event_id__in=ids).order_by("pk").values_list("pk", flat=True))


def make_due(pks):
    Event.objects.filter(pk__in=pks).update(next_attempt_at=timezone.now())


def test_a_webhook_gets_the_event_signed(checkout, operator, target):
    route = make_route(checkout, operator, target=target.url)
    [pk] = ingest("w-1")
    assert dispatch_events([pk]) == 1
    event = Event.objects.get(pk=pk)
    assert (event.status, event.attempts) == ("delivered", 1)
    [call] = target.calls
    headers = call["headers"]
    assert (headers["X-Event-Id"], headers["X-Event-Type"], headers["X-Attempt"]) == (
        "w-1",
        "order.created",
        "1",
    )
    expected = hmac.new(route.secret.encode(), call["body"], hashlib.sha256).hexdigest()
    assert headers["X-Signature"] == f"sha256={expected}"
    assert json.loads(call["body"])["payload"] == {"n": 1}
    assert DeliveryRecord.objects.filter(route=route, event_id=pk).exists()


def test_a_server_error_is_retried_with_backoff_then_delivered(checkout, operator, target):
    make_route(checkout, operator, target=target.url)
    target.scripts["r-1"] = [503]
    [pk] = ingest("r-1")
    dispatch_events([pk])
    event = Event.objects.get(pk=pk)
    assert (event.status, event.attempts) == ("pending", 1)
    delay = (event.next_attempt_at - timezone.now()).total_seconds()
    assert -1 < delay <= 0.11
    assert "HTTP 503" in event.last_error
    dispatch_events([pk])
    event.refresh_from_db()
    assert (event.status, event.attempts) == ("delivered", 2)
    outcomes = list(event.attempt_log.order_by("number").values_list("number", "outcome"))
    assert outcomes == [(1, "failed"), (2, "delivered")]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (400, "dead"),
        (404, "dead"),
        (408, "pending"),
        (429, "pending"),
        (500, "pending"),
    ],
)
def test_status_codes_are_classified(checkout, operator, target, status, expected):
    make_route(checkout, operator, target=target.url)
    target.scripts["c"] = [status]
    [pk] = ingest("c")
    dispatch_events([pk])
    event = Event.objects.get(pk=pk)
    assert event.status == expected
    if expected == "dead":
        assert event.dead_reason == "permanent"


def test_after_max_attempts_the_event_is_a_dead_letter(checkout, operator, target):
    make_route(checkout, operator, target=target.url, max_attempts=2)
    target.default_status = 500
    [pk] = ingest("m")
    dispatch_events([pk])
    make_due([pk])
    dispatch_events([pk])
    event = Event.objects.get(pk=pk)
    assert (event.status, event.dead_reason, event.attempts) == ("dead", "max_attempts", 2)
    assert len(target.calls) == 2


def test_a_slow_receiver_times_out_and_is_retried(checkout, operator, target):
    make_route(checkout, operator, target=target.url, timeout_seconds=0.2)
    target.delay = 1.0
    [pk] = ingest("slow")
    dispatch_events([pk])
    attempt = DeliveryAttempt.objects.get(event_id=pk)
    assert attempt.outcome == "timeout" and attempt.duration_ms < 900
    assert Event.objects.get(pk=pk).status == "pending"


def test_an_unreachable_receiver_is_retried(checkout, operator):
    make_route(checkout, operator, target="http://127.0.0.1:9/hook")
    [pk] = ingest("down")
    dispatch_events([pk])
    event = Event.objects.get(pk=pk)
    assert event.status == "pending" and "connection error" in event.last_error


def test_the_same_event_dispatched_twice_calls_the_handler_once(checkout, operator, target):
    make_route(checkout, operator, target=target.url)
    [pk] = ingest("twice")
    assert dispatch_events([pk]) == 1
    assert dispatch_events([pk]) == 0
    assert target.calls_per_event() == {"twice": 1}


def test_an_event_recorded_delivered_is_never_sent_again(checkout, operator, target):
    """Even if its row is forced back to pending (a redelivery after a crash), the delivery
    record and the idempotency key stop a second call."""
    make_route(checkout, operator, target=target.url)
    [pk] = ingest("once")
    dispatch_events([pk])
    Event.objects.filter(pk=pk).update(status="pending", next_attempt_at=timezone.now())
    dispatch_events([pk])
    assert target.calls_per_event() == {"once": 1}
    event = Event.objects.get(pk=pk)
    assert event.status == "delivered"
    assert event.attempt_log.order_by("-pk").first().outcome == "duplicate"


def test_python_handlers_deliver_retry_and_dead_letter(checkout, operator, test_handlers):
    make_route(
        checkout,
        operator,
        name="rec",
        event_type="order.*",
        kind="python",
        target="tests.handlers.flaky",
    )
    make_route(
        checkout,
        operator,
        name="perm",
        event_type="refund.created",
        kind="python",
        target="tests.handlers.permanent",
    )
    [flaky] = ingest("p-1")
    [perm] = ingest("p-2", type="refund.created")
    dispatch_events([flaky, perm])
    assert Event.objects.get(pk=flaky).status == "pending"
    dead = Event.objects.get(pk=perm)
    assert (dead.status, dead.dead_reason) == ("dead", "permanent")
    assert "bad payload" in dead.last_error
    dispatch_events([flaky])
    assert Event.objects.get(pk=flaky).status == "delivered"
    assert test_handlers.CALLS[-1]["id"] == "p-1" and test_handlers.CALLS[-1]["attempt"] == 2


def test_a_python_handler_is_bounded_by_its_timeout(checkout, operator, test_handlers):
    make_route(checkout, operator, kind="python", target="tests.handlers.slow", timeout_seconds=0.3)
    [pk] = ingest("t")
    dispatch_events([pk])
    attempt = DeliveryAttempt.objects.get(event_id=pk)
    assert attempt.outcome == "timeout" and attempt.duration_ms < 1500


def test_an_event_without_a_route_is_a_dead_letter_until_redriven(
    checkout, operator, target, settings
):
    settings.ROUTE_REFRESH_SECONDS = 0.01
    [pk] = ingest("lost")
    dispatch_events([pk])
    event = Event.objects.get(pk=pk)
    assert (event.status, event.dead_reason) == ("dead", "no_route")
    make_route(checkout, operator, target=target.url)
    assert redrive(dead_letters(reason="no_route"), actor=operator.user) == [pk]
    import time

    time.sleep(0.02)
    dispatch_events([pk])
    assert Event.objects.get(pk=pk).status == "delivered"


def test_an_exact_route_beats_a_pattern(checkout, operator, target, test_handlers):
    make_route(checkout, operator, name="all", event_type="order.*", target=target.url)
    make_route(
        checkout,
        operator,
        name="exact",
        event_type="order.created",
        kind="python",
        target="tests.handlers.record",
    )
    [pk] = ingest("x")
    dispatch_events([pk])
    assert Event.objects.get(pk=pk).route.name == "exact"
    assert target.calls == []


def test_a_route_edit_reaches_the_route_table_without_restart(checkout, operator, settings):
    settings.ROUTE_REFRESH_SECONDS = 0.05
    route = make_route(checkout, operator, target="http://127.0.0.1:1/a")
    route_table()
    update_route(route, actor=operator.user, target="http://127.0.0.1:1/b")
    import time

    time.sleep(0.06)
    assert route_table().match(checkout.pk, "order.created").target.endswith("/b")


def test_attempts_older_than_the_retention_are_purged(checkout, operator, target):
    from replay.log import purge_attempts

    make_route(checkout, operator, target=target.url)
    [pk] = ingest("old")
    dispatch_events([pk])
    DeliveryAttempt.objects.update(started_at=timezone.now() - timedelta(days=30))
    assert purge_attempts(14) == 1
