"""Delivery at the downstream's speed, with a real worker, broker, Postgres, Redis and real HTTP
receivers: many calls in flight per process, hard timeouts, bulkheads, and a slow route or a
low priority class that holds nothing but its own events."""

from __future__ import annotations

import signal

import pytest

from breakers.models import BreakerTransition, CircuitBreaker
from replay.ingest import ingest_events
from replay.models import DeliveryAttempt, Event
from tests.conftest import event_body, make_route
from tests.http_target import Target
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
FAST = {"CONTROLPLANE_RETRY_BASE_SECONDS": "0.05", "CONTROLPLANE_ROUTE_REFRESH_SECONDS": "0.2"}


def delivered(prefix: str) -> int:
    return Event.objects.filter(event_id__startswith=prefix, status="delivered").count()


def statuses() -> dict:
    rows = Event.objects.values("event_id", "status")
    counts: dict = {}
    for row in rows:
        key = (row["event_id"].split("-")[0], row["status"])
        counts[key] = counts.get(key, 0) + 1
    return counts


def ingest(prefix: str, n: int, **fields) -> None:
    for start in range(0, n, 500):
        results = ingest_events(
            [event_body(f"{prefix}{i}", **fields) for i in range(start, min(start + 500, n))]
        )
        assert all(r.status == "accepted" for r in results)


def test_many_events_to_a_50ms_receiver_are_delivered_concurrently_and_once(
    operator, checkout, target, tmp_path
):
    target.delay = 0.05
    make_route(checkout, operator, target=target.url)
    ingest("c-", 600)
    log = tmp_path / "worker.log"
    with celery_worker(extra_env=FAST, log_path=log):
        assert wait_for(lambda: delivered("c-") == 600, 120), log.read_text()[-3000:]
    assert set(target.calls_per_event().values()) == {1}
    assert len(target.calls_per_event()) == 600
    # One worker process, one task at a time: only the pool can put many calls in flight.
    assert target.peak >= 16, target.peak


def test_a_hanging_receiver_times_out_the_worker_keeps_delivering_and_shuts_down(
    operator, checkout, tmp_path
):
    from controlplane.services import create_service

    other = create_service(actor=operator.user, slug="search", name="Search", team="t")
    with Target(delay=60) as hang, Target() as fine:
        make_route(checkout, operator, target=hang.url, timeout_seconds=1.0, max_attempts=1)
        make_route(other, operator, name="search-route", target=fine.url)
        ingest("h-", 5)
        log = tmp_path / "worker.log"
        with celery_worker(extra_env=FAST, log_path=log) as worker:
            assert wait_for(lambda: len(hang.calls) == 5, 60), log.read_text()[-3000:]
            # while those five hang, another route's events flow through the same process
            ingest("f-", 20, service="search")
            assert wait_for(lambda: delivered("f-") == 20, 60), log.read_text()[-3000:]
            assert wait_for(
                lambda: Event.objects.filter(event_id__startswith="h-", status="dead").count() == 5,
                60,
            ), log.read_text()[-3000:]
            attempts = DeliveryAttempt.objects.filter(event__event_id__startswith="h-")
            assert set(attempts.values_list("outcome", flat=True)) == {"timeout"}
            # on the route's schedule, not the receiver's 60 s
            assert max(attempts.values_list("duration_ms", flat=True)) < 30_000

            # warm shutdown with calls hanging: bounded by the route's timeout, not by them
            # (another route: five timeouts in a row have opened the first one's breaker)
            ship = create_service(actor=operator.user, slug="ship", name="Ship", team="t")
            make_route(ship, operator, name="ship-route", target=hang.url, timeout_seconds=1.0)
            ingest("h2-", 3, service="ship")
            assert wait_for(lambda: len(hang.calls) == 8, 60), log.read_text()[-3000:]
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=15) == 0, log.read_text()[-3000:]
        assert not Event.objects.filter(status="dispatched").exists()
        h2 = Event.objects.filter(event_id__startswith="h2-")
        assert set(h2.values_list("status", flat=True)) == {"pending"}  # timed out: a retry


def test_a_full_bulkhead_defers_events_that_are_then_delivered_and_the_breaker_stays_closed(
    operator, checkout, target, tmp_path
):
    target.delay = 0.2
    route = make_route(checkout, operator, target=target.url, max_concurrent_calls=2, max_wait_ms=0)
    ingest("b-", 30)
    log = tmp_path / "worker.log"
    env = {**FAST, "CONTROLPLANE_BULKHEAD_DEFER_SECONDS": "0.1"}
    with celery_worker(extra_env=env, log_path=log):
        assert wait_for(lambda: delivered("b-") == 30, 120), log.read_text()[-3000:]
    assert target.peak <= 2
    assert set(target.calls_per_event().values()) == {1}
    deferred = DeliveryAttempt.objects.filter(outcome="bulkhead_full")
    assert deferred.exists()
    # not an attempt, not a failure: the events used one attempt each, the breaker heard none
    assert set(Event.objects.values_list("attempts", flat=True)) == {1}
    assert CircuitBreaker.objects.get(route=route).state == "closed"
    assert not BreakerTransition.objects.exists()


def test_a_slow_route_does_not_hold_a_fast_one(operator, checkout, tmp_path):
    from controlplane.services import create_service

    other = create_service(actor=operator.user, slug="search", name="Search", team="t")
    with Target(delay=2.0) as slow, Target(delay=0.005) as quick:
        make_route(
            checkout,
            operator,
            target=slow.url,
            timeout_seconds=10,
            max_concurrent_calls=4,
            max_wait_ms=50,
        )
        make_route(other, operator, name="search-route", target=quick.url)
        # Every batch carries both routes' events: 40 at 2 s through 4 slots is 20 s of work
        # for the slow route, and none of it may hold the fast route's events beside it.
        for k in range(4):
            batch = [event_body(f"s-{k}-{i}") for i in range(10)]
            batch += [event_body(f"q-{k}-{i}", service="search") for i in range(75)]
            assert all(r.status == "accepted" for r in ingest_events(batch))
        log = tmp_path / "worker.log"
        with celery_worker(extra_env=FAST, log_path=log, pool="prefork", concurrency=2):
            assert wait_for(lambda: delivered("q-") == 300, 60), statuses()
            slow_done = delivered("s-")
            assert wait_for(lambda: delivered("s-") == 40, 120), statuses()
        # the fast route finished while most of the slow one still waited
        assert slow_done < 40 // 2, slow_done
        assert slow.peak <= 4
        assert set(quick.calls_per_event().values()) == {1}
        assert set(slow.calls_per_event().values()) == {1}


def test_critical_events_are_not_queued_behind_low_ones(operator, checkout, target, tmp_path):
    target.delay = 0.3
    make_route(checkout, operator, target=target.url)
    ingest("low-", 80, priority="LOW")
    env = {
        **FAST,
        "CONTROLPLANE_DELIVERY_CONCURRENCY": "4",
        "CONTROLPLANE_DELIVERY_RESERVED_URGENT": "2",
    }
    log = tmp_path / "worker.log"
    with celery_worker(extra_env=env, log_path=log):
        assert wait_for(lambda: len(target.calls) >= 2, 60), log.read_text()[-3000:]
        ingest("crit-", 6, priority="CRITICAL")
        assert wait_for(lambda: delivered("crit-") == 6, 60), log.read_text()[-3000:]
        low_done = delivered("low-")
        assert wait_for(lambda: delivered("low-") == 80, 120), log.read_text()[-3000:]
    # 80 LOW at two in flight take 12 s; the CRITICAL ones went past them
    assert low_done < 80 // 2, low_done
