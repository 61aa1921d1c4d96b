"""The listener's lifecycle with a real worker: warm shutdown finishes what it holds and takes
nothing new; a route edit reaches the running worker without a restart."""

from __future__ import annotations

import signal
import time

import pytest

from breakers.routes import update_route
from replay.ingest import ingest_events
from replay.models import Event
from tests.conftest import event_body, make_route
from tests.http_target import Target
from tests.workers import celery_worker, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_warm_shutdown_finishes_in_flight_events_and_takes_no_new_ones(
    operator, checkout, target, settings, tmp_path
):
    settings.DISPATCH_BATCH_SIZE = 10
    target.delay = 0.3
    make_route(checkout, operator, target=target.url)
    ingest_events([event_body(f"w-{i}") for i in range(10)])  # one batch: one task
    with celery_worker(
        extra_env={"CONTROLPLANE_DISPATCH_BATCH": "10"}, log_path=tmp_path / "w.log"
    ) as worker:
        assert wait_for(lambda: len(target.calls) >= 1, 60)
        worker.send_signal(signal.SIGTERM)
        # Sent while it shuts down: Celery may still hand it a message it had fetched; what it
        # takes it finishes, and what it leaves stays pending. No claim is left behind.
        ingest_events([event_body(f"late-{i}") for i in range(10)])
        assert worker.wait(timeout=60) == 0
    statuses = dict(Event.objects.values_list("event_id", "status"))
    assert all(statuses[f"w-{i}"] == "delivered" for i in range(10)), statuses
    late = {statuses[f"late-{i}"] for i in range(10)}
    assert late <= {"pending", "delivered"}, late
    assert not Event.objects.filter(status="dispatched").exists()
    with celery_worker(extra_env={"CONTROLPLANE_DISPATCH_BATCH": "10"}):
        assert wait_for(lambda: Event.objects.filter(status="delivered").count() == 20, 60)


def test_a_route_edit_reaches_a_running_worker_within_five_seconds(operator, checkout, target):
    route = make_route(checkout, operator, target=target.url)
    with Target() as other, celery_worker(extra_env={"CONTROLPLANE_ROUTE_REFRESH_SECONDS": "2"}):
        ingest_events([event_body("before")])
        assert wait_for(lambda: target.calls_per_event()["before"] == 1, 60)
        update_route(route, actor=operator.user, target=other.url)
        edited = time.monotonic()
        n = 0
        while not other.calls and time.monotonic() - edited < 10:
            ingest_events([event_body(f"after-{n}")])
            n += 1
            time.sleep(0.25)
        assert other.calls, "the edit never reached the worker"
        assert other.calls[0]["at"] - edited < 5
