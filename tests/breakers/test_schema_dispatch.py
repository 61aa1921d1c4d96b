"""Schema tolerance at dispatch, in this process, against a real HTTP receiver and the real
database and Redis: a refused payload is a dead letter without a call, a tolerated one reaches
the handler as tolerated and signed as sent, and the stored event keeps what was produced."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from breakers import control
from breakers.dispatch import dispatch_events
from breakers.registry import breaker_for
from breakers.schemas import create_schema, update_schema
from replay.dead_letters import dead_letters, redrive
from replay.ingest import ingest_events
from replay.models import DeliveryAttempt, Event
from tests.conftest import event_body, make_route

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

ORDER = {
    "amount": {"type": "integer", "required": True},
    "currency": {"type": "string", "default": "EUR"},
    "at": {"type": "timestamp"},
}


@pytest.fixture(autouse=True)
def _fast_refresh(settings):
    settings.ROUTE_REFRESH_SECONDS = 0.1  # a table loaded by one test is not seen by the next


def ingest(*bodies) -> list[int]:
    ingest_events(list(bodies))
    ids = [b["id"] for b in bodies]
    return list(Event.objects.filter(event_id__in=ids).order_by("pk").values_list("pk", flat=True))


def order(event_id: str, payload: dict, **fields) -> dict:
    return event_body(event_id, payload=payload, **fields)


def schema(service, operator, mode: str, version: int = 1, fields=None):
    return create_schema(
        actor=operator.user,
        service=service,
        event_type="order.created",
        version=version,
        mode=mode,
        fields=ORDER if fields is None else fields,
    )


def test_a_strict_refusal_is_a_dead_letter_without_a_call(checkout, operator, target):
    route = make_route(checkout, operator, target=target.url)
    schema(checkout, operator, "strict")
    [pk] = ingest(order("s-1", {"amount": 5, "coupon": "X"}))
    assert dispatch_events([pk]) == 1
    event = Event.objects.get(pk=pk)
    assert (event.status, event.dead_reason, event.attempts) == ("dead", "schema", 0)
    assert event.last_error == "schema: coupon: unknown field 'coupon' (strict)"
    [attempt] = DeliveryAttempt.objects.filter(event_id=pk)
    assert (attempt.outcome, attempt.route_id) == ("schema_rejected", route.pk)
    assert "coupon" in attempt.error
    assert target.calls == []
    assert event.payload == {"amount": 5, "coupon": "X"}


def test_schema_refusals_do_not_feed_the_breaker(checkout, operator, target):
    route = make_route(checkout, operator, target=target.url)
    control.update_thresholds(route.breaker, {"consecutive_failures": 1}, actor=operator.user)
    schema(checkout, operator, "strict")
    bad = ingest(*[order(f"b-{i}", {"amount": "many"}) for i in range(3)])
    dispatch_events(bad)
    assert set(Event.objects.filter(pk__in=bad).values_list("dead_reason", flat=True)) == {"schema"}
    [good] = ingest(order("g-1", {"amount": 3}))
    dispatch_events([good])
    assert Event.objects.get(pk=good).status == "delivered"
    assert breaker_for(route).snapshot.state.name == "CLOSED"
    assert [c["event_id"] for c in target.calls] == ["g-1"]


def test_a_coerced_payload_arrives_coerced_and_signed_as_sent(checkout, operator, target):
    route = make_route(checkout, operator, target=target.url)
    schema(checkout, operator, "coercive")
    sent = {"amount": "42", "at": "2026-11-28T13:00:00+01:00", "note": "kept"}
    [pk] = ingest(order("c-1", sent))
    dispatch_events([pk])
    event = Event.objects.get(pk=pk)
    assert event.status == "delivered"
    assert event.payload == sent  # the log keeps what the producer sent
    [call] = target.calls
    expected = hmac.new(route.secret.encode(), call["body"], hashlib.sha256).hexdigest()
    assert call["headers"]["X-Signature"] == f"sha256={expected}"
    assert json.loads(call["body"])["payload"] == {
        "amount": 42,
        "at": "2026-11-28T12:00:00Z",
        "note": "kept",
        "currency": "EUR",
    }
    [attempt] = DeliveryAttempt.objects.filter(event_id=pk)
    assert attempt.outcome == "delivered"
    assert attempt.note == (
        "amount: coerced '42' to 42; at: '2026-11-28T13:00:00+01:00' normalised to "
        "'2026-11-28T12:00:00Z'; currency: missing, defaulted to 'EUR'"
    )


def test_a_python_handler_gets_the_tolerated_payload(checkout, operator, test_handlers):
    make_route(checkout, operator, kind="python", target="tests.handlers.record")
    schema(checkout, operator, "lenient")
    [pk] = ingest(order("p-1", {"amount": 1}))
    dispatch_events([pk])
    assert test_handlers.CALLS[-1]["payload"] == {"amount": 1, "currency": "EUR"}


def test_without_a_schema_the_payload_goes_as_sent(checkout, operator, target):
    make_route(checkout, operator, target=target.url)
    schema(checkout, operator, "strict")  # order.created's, not order.shipped's
    [pk] = ingest(order("n-1", {"anything": ["goes"]}, type="order.shipped"))
    dispatch_events([pk])
    assert Event.objects.get(pk=pk).status == "delivered"
    assert json.loads(target.calls[0]["body"])["payload"] == {"anything": ["goes"]}
    assert DeliveryAttempt.objects.get(event_id=pk).note == ""


def test_a_newer_version_is_held_to_the_newest_schema_and_says_so(checkout, operator, target):
    make_route(checkout, operator, target=target.url)
    schema(checkout, operator, "lenient", version=1)
    schema(checkout, operator, "strict", version=2, fields={"amount": {"type": "integer"}})
    [v3, v2] = ingest(
        order("v-3", {"amount": 1}, schema_version=3),
        order("v-2", {"amount": 1, "x": 1}, schema_version=2),
    )
    dispatch_events([v3, v2])
    # v3 is held to v2, which is strict: an unregistered version is refused
    assert Event.objects.get(pk=v3).last_error.startswith("schema: schema_version: version 3")
    assert Event.objects.get(pk=v2).last_error == "schema: x: unknown field 'x' (strict)"


def test_a_lenient_newer_version_is_delivered_with_a_note(checkout, operator, target):
    make_route(checkout, operator, target=target.url)
    schema(checkout, operator, "lenient", version=1)
    [pk] = ingest(order("l-2", {"amount": 1, "new_field": True}, schema_version=2))
    dispatch_events([pk])
    assert Event.objects.get(pk=pk).status == "delivered"
    note = DeliveryAttempt.objects.get(event_id=pk).note
    assert note.startswith("schema_version: 2 held to version 1 (newest registered)")


def test_after_fixing_the_schema_a_redrive_delivers(checkout, operator, target):
    make_route(checkout, operator, target=target.url)
    strict = schema(checkout, operator, "strict")
    [pk] = ingest(order("r-1", {"amount": "7"}))
    dispatch_events([pk])
    assert Event.objects.get(pk=pk).dead_reason == "schema"
    update_schema(strict, actor=operator.user, mode="coercive")
    import time

    time.sleep(0.15)  # past ROUTE_REFRESH_SECONDS: the worker's table reloads
    assert redrive(dead_letters(reason="schema"), actor=operator.user) == [pk]
    dispatch_events([pk])
    event = Event.objects.get(pk=pk)
    assert (event.status, event.attempts) == ("delivered", 1)
    assert json.loads(target.calls[0]["body"])["payload"]["amount"] == 7
    outcomes = list(event.attempt_log.order_by("pk").values_list("outcome", flat=True))
    assert outcomes == ["schema_rejected", "delivered"]


def test_the_schema_table_costs_no_query_per_batch_once_loaded(
    checkout, operator, target, settings
):
    settings.ROUTE_REFRESH_SECONDS = 60
    make_route(checkout, operator, target=target.url)
    schema(checkout, operator, "coercive")
    [first] = ingest(order("q-0", {"amount": "1"}))
    dispatch_events([first])  # loads the route and schema tables
    pks = ingest(*[order(f"q-{i}", {"amount": str(i)}) for i in range(1, 6)])
    with CaptureQueriesContext(connection) as queries:
        dispatch_events(pks)
    assert not [q for q in queries.captured_queries if "eventschema" in q["sql"]]
    assert Event.objects.filter(pk__in=pks, status="delivered").count() == 5


def test_the_api_shows_the_note_and_the_payload_as_produced(checkout, operator, target, viewer):
    make_route(checkout, operator, target=target.url)
    schema(checkout, operator, "coercive")
    [pk] = ingest(order("a-1", {"amount": "5"}))
    dispatch_events([pk])
    body = viewer.client().get(f"/api/v1/events/{pk}").json()
    assert body["payload"] == {"amount": "5"}
    [attempt] = body["attempts_log"]
    assert attempt["outcome"] == "delivered"
    assert attempt["note"] == "amount: coerced '5' to 5; currency: missing, defaulted to 'EUR'"
