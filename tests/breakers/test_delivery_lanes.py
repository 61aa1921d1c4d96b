"""The delivery pool's two lanes in this process: webhook calls on its event loop, python
handlers on its call threads. A real receiver, the real pool, outcomes written by its writer."""

from __future__ import annotations

import pytest

from breakers.control import force_breaker
from breakers.dispatch import dispatch_events
from breakers.models import CircuitBreaker
from breakers.pool import shutdown_pool
from replay.ingest import ingest_events
from replay.models import DeliveryAttempt, Event
from tests.conftest import event_body, make_route
from tests.workers import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.smoke]


@pytest.fixture(autouse=True)
def _pool_drained():
    yield
    assert shutdown_pool(10.0)


def ingest(prefix: str, n: int) -> list[int]:
    ingest_events([event_body(f"{prefix}-{i}") for i in range(n)])
    return list(Event.objects.filter(event_id__startswith=prefix).values_list("pk", flat=True))


def finished(prefix: str, status: str = "delivered") -> int:
    return Event.objects.filter(event_id__startswith=prefix, status=status).count()


def test_webhook_calls_on_the_loop_are_concurrent_and_each_delivered_once(
    checkout, operator, target
):
    target.delay = 0.1
    make_route(checkout, operator, target=target.url)
    pks = ingest("w", 120)
    for start in range(0, 120, 40):
        dispatch_events(pks[start : start + 40], concurrent=True)
    assert wait_for(lambda: finished("w") == 120, 30), finished("w")
    assert set(target.calls_per_event().values()) == {1} and len(target.calls) == 120
    assert target.peak >= 20, target.peak  # many calls at once from one process's loop
    signed = target.calls[0]["headers"]
    assert signed["X-Signature"].startswith("sha256=") and signed["X-Attempt"] == "1"


def test_a_webhook_whose_breaker_is_open_is_served_by_a_python_fallback(
    checkout, operator, target, test_handlers
):
    test_handlers.CALLS.clear()
    fallback = make_route(
        checkout,
        operator,
        name="to-python",
        event_type="never.matched",
        kind="python",
        target="tests.handlers.record",
    )
    primary = make_route(checkout, operator, target=target.url, fallback_route=fallback)
    force_breaker(
        CircuitBreaker.objects.get(route=primary), "forced_open", actor=operator.user, reason="t"
    )
    pks = ingest("f", 10)
    dispatch_events(pks, concurrent=True)
    assert wait_for(lambda: finished("f") == 10, 20), finished("f")
    assert target.calls == [] and len(test_handlers.CALLS) == 10
    assert Event.objects.filter(served_for=primary).count() == 10
    assert DeliveryAttempt.objects.filter(outcome="fallback", route=fallback).count() == 10


def test_a_python_route_whose_breaker_is_open_is_served_by_a_webhook_fallback(
    checkout, operator, target, test_handlers
):
    fallback = make_route(
        checkout, operator, name="to-webhook", event_type="never.matched", target=target.url
    )
    primary = make_route(
        checkout, operator, kind="python", target="tests.handlers.record", fallback_route=fallback
    )
    force_breaker(
        CircuitBreaker.objects.get(route=primary), "forced_open", actor=operator.user, reason="t"
    )
    pks = ingest("p", 10)
    dispatch_events(pks, concurrent=True)
    assert wait_for(lambda: finished("p") == 10, 20), finished("p")
    assert len(target.calls) == 10
    assert Event.objects.filter(served_for=primary, route=fallback).count() == 10


def test_a_failing_webhook_feeds_its_breaker_from_the_loop(checkout, operator, target):
    target.default_status = 503
    route = make_route(checkout, operator, target=target.url, max_attempts=1)
    CircuitBreaker.objects.filter(route=route).update(
        config={"consecutive_failures": 3, "open_wait_s": 60.0, "max_open_wait_s": 60.0}
    )
    pks = ingest("b", 3)
    dispatch_events(pks, concurrent=True)
    assert wait_for(lambda: finished("b", "dead") == 3, 20), finished("b", "dead")
    assert shutdown_pool(10.0)
    assert wait_for(
        lambda: CircuitBreaker.objects.get(route=route).state == CircuitBreaker.State.OPEN, 10
    )


def test_warm_shutdown_waits_for_the_loops_calls_and_writes_their_outcomes(
    checkout, operator, target
):
    target.delay = 0.5
    make_route(checkout, operator, target=target.url)
    pks = ingest("s", 30)
    dispatch_events(pks, concurrent=True)
    assert wait_for(lambda: target.active > 0, 10)
    assert shutdown_pool(10.0)
    assert finished("s") == 30  # written before shutdown returned


def test_events_a_full_bulkhead_defers_come_back_in_waves_it_can_take(
    checkout, operator, target, settings
):
    settings.BULKHEAD_DEFER_SECONDS = 2.0
    target.delay = 0.5
    make_route(checkout, operator, target=target.url, max_concurrent_calls=2, max_wait_ms=20)
    pks = ingest("k", 8)
    dispatch_events(pks, concurrent=True)
    deferred = Event.objects.filter(event_id__startswith="k", status="deferred")
    assert wait_for(lambda: deferred.count() == 6, 10), deferred.count()
    attempts = DeliveryAttempt.objects.filter(outcome="bulkhead_full")
    waits = sorted(
        round((e.next_attempt_at - a.started_at).total_seconds())
        for e in deferred
        for a in attempts.filter(event=e)
    )
    # two slots: the first two deferred come back after one wait, the next two after two...
    assert waits == [2, 2, 4, 4, 6, 6], waits
    assert wait_for(lambda: len(target.calls) == 2, 5)
