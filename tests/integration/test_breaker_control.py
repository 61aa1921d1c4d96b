"""Operator control reaching a running worker: force open within seconds, and a threshold
edit applied without a restart."""

from __future__ import annotations

import time

import pytest

from breakers.control import force_breaker, update_thresholds
from breakers.models import BreakerTransition, CircuitBreaker
from replay.ingest import ingest_events
from replay.models import Event
from tests.conftest import event_body, make_route
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.smoke, pytest.mark.django_db(transaction=True)]
WORKER = {"CONTROLPLANE_ROUTE_REFRESH_SECONDS": "1"}


def test_force_open_reaches_a_running_worker_and_automatic_releases(operator, checkout, target):
    route = make_route(checkout, operator, target=target.url)
    breaker = CircuitBreaker.objects.get(route=route)
    with celery_worker(extra_env=WORKER):
        ingest_events([event_body("warm")])
        assert wait_for(lambda: len(target.calls) == 1, 60)
        force_breaker(breaker, "forced_open", actor=operator.user, reason="test")
        forced = time.monotonic()
        assert wait_for(
            lambda: BreakerTransition.objects.filter(to_state="forced_open").exists(), 10
        )
        assert time.monotonic() - forced < 5
        ingest_events([event_body("held")])
        assert wait_for(lambda: Event.objects.get(event_id="held").status == "deferred", 10)
        assert target.calls_per_event()["held"] == 0
        force_breaker(breaker, "automatic", actor=operator.user, reason="done")
        assert wait_for(lambda: Event.objects.get(event_id="held").status == "delivered", 60)


def test_a_threshold_edit_reaches_a_running_worker(operator, checkout, target):
    route = make_route(checkout, operator, target=target.url)
    breaker = CircuitBreaker.objects.get(route=route)
    target.default_status = 500
    with celery_worker(extra_env=WORKER):
        update_thresholds(
            breaker,
            {"consecutive_failures": 1, "open_wait_s": 60, "max_open_wait_s": 64},
            actor=operator.user,
        )
        time.sleep(1.5)  # the worker re-reads breaker rows every second here
        # One failure opens it with the new threshold (the default needs 5 in a row). One event
        # first: calls in flight at once each hold a permit taken before any of them failed.
        ingest_events([event_body("x-0")])
        assert wait_for(lambda: BreakerTransition.objects.filter(to_state="open").exists(), 30)
        ingest_events([event_body(f"x-{i}") for i in range(1, 5)])
        later = [f"x-{i}" for i in range(1, 5)]
        assert wait_for(
            lambda: Event.objects.filter(event_id__in=later, status="deferred").count() == 4, 30
        )
    # the breaker opened after the first call and the rest waited without being called
    assert target.calls_per_event() == {"x-0": 1}
