"""Fallback while open, end to end with a real Celery worker and real receivers: the primary
fails, its breaker opens, the fallback serves its events (marked); the primary recovers and
one click replays exactly those to it, each once."""

from __future__ import annotations

import time

import pytest
from django.test import Client

from breakers.control import force_breaker
from breakers.models import CircuitBreaker
from replay.models import DeliveryAttempt, DeliveryRecord, Event, ReplayRun
from tests.conftest import event_body, make_route
from tests.http_target import Target
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FAST = {
    "CONTROLPLANE_RETRY_BASE_SECONDS": "0.05",
    "CONTROLPLANE_ROUTE_REFRESH_SECONDS": "0.2",
}
LONG_OPEN = {"consecutive_failures": 3, "open_wait_s": 60.0, "max_open_wait_s": 60.0}


def settled() -> bool:
    return not Event.objects.filter(status__in=["pending", "dispatched", "deferred"]).exists()


def test_fallback_serves_while_open_and_the_button_replays_it_to_the_recovered_primary(
    operator, checkout, target, tmp_path
):
    with Target() as warmer:
        fallback = make_route(
            checkout, operator, name="cache-warmer", event_type="warm.never", target=warmer.url
        )
        primary = make_route(checkout, operator, target=target.url, fallback_route=fallback)
        CircuitBreaker.objects.filter(route=primary).update(config=LONG_OPEN)
        target.default_status = 503
        api = operator.client()
        batch = [event_body(f"e-{i}") for i in range(10)]
        assert api.post("/api/v1/events", {"events": batch}, format="json").status_code == 202

        log = tmp_path / "worker.log"
        with celery_worker(extra_env=FAST, log_path=log):
            assert wait_for(settled), log.read_text()[-3000:]
            served = Event.objects.filter(served_for=primary, status="delivered")
            assert served.count() == 10, log.read_text()[-3000:]
            assert warmer.calls_per_event() == {f"e-{i}": 1 for i in range(10)}
            assert not DeliveryRecord.objects.filter(route=primary).exists()

            # The downstream is back: the operator closes the breaker, then clicks the button.
            target.default_status = 200
            target.calls.clear()
            breaker = CircuitBreaker.objects.get(route=primary)
            force_breaker(breaker, "forced_closed", actor=operator.user, reason="it is back")
            time.sleep(0.5)  # the worker re-reads breaker rows every ROUTE_REFRESH_SECONDS
            client = Client()
            client.force_login(operator.user)
            assert client.post(f"/breakers/{primary.name}/replay-fallback").status_code == 302
            run = ReplayRun.objects.get()
            delivered = DeliveryRecord.objects.filter(route=primary, event__replay_run=run)
            assert wait_for(lambda: delivered.count() == 10), log.read_text()[-3000:]
            assert wait_for(lambda: ReplayRun.objects.get(pk=run.pk).status == "done")
            assert {c["event_id"] for c in target.calls} == {
                f"e-{i}~replay-{run.pk}" for i in range(10)
            }
            assert len(target.calls) == 10  # each once

            # a second click: everything was delivered on the primary since; nothing is sent
            assert client.post(f"/breakers/{primary.name}/replay-fallback").status_code == 302
            again = ReplayRun.objects.exclude(pk=run.pk).get()
            assert wait_for(lambda: ReplayRun.objects.get(pk=again.pk).status == "done")
            again.refresh_from_db()
            assert (again.total, again.done, again.skipped) == (10, 0, 10)
        assert len(target.calls) == 10
        assert len(warmer.calls) == 10


def test_a_failing_fallback_trips_its_own_breaker_and_the_events_wait_for_the_primary(
    operator, checkout, target, tmp_path
):
    with Target(default_status=500) as warmer:
        fallback = make_route(
            checkout, operator, name="cache-warmer", event_type="warm.never", target=warmer.url
        )
        primary = make_route(checkout, operator, target=target.url, fallback_route=fallback)
        CircuitBreaker.objects.filter(route__in=[primary, fallback]).update(config=LONG_OPEN)
        target.default_status = 503
        api = operator.client()
        batch = [event_body(f"w-{i}") for i in range(12)]
        assert api.post("/api/v1/events", {"events": batch}, format="json").status_code == 202

        log = tmp_path / "worker.log"
        with celery_worker(extra_env=FAST, log_path=log):
            # every event ends up waiting for the primary: none is lost, none dead, none served
            waiting = Event.objects.filter(status="deferred", route=primary)
            assert wait_for(lambda: waiting.count() == 12), log.read_text()[-3000:]
            assert wait_for(
                lambda: CircuitBreaker.objects.get(route=fallback).state == "open", 10
            ), log.read_text()[-3000:]
        assert not Event.objects.filter(status="dead").exists()
        assert not Event.objects.filter(served_for__isnull=False).exists()
        # Its own breaker stopped the calls: each event reached the fallback at most once (calls
        # in flight at once may all have started before the fallback's breaker opened).
        assert len(warmer.calls) >= 3
        assert set(warmer.calls_per_event().values()) == {1}
        outcomes = set(
            DeliveryAttempt.objects.filter(route=fallback).values_list("outcome", flat=True)
        )
        # failed calls, and breaker_open for any event that came after the fallback's breaker opened
        assert "failed" in outcomes and outcomes <= {"failed", "breaker_open"}
