"""kill -9 of a worker in the middle of delivering 2,000 events to a slow receiver: another
worker and the relay finish the job. Nothing is lost, and no event already recorded delivered
is sent again."""

from __future__ import annotations

import os
import signal
import time

import pytest
from django.db.models import Count

from breakers.relay import sweep
from replay.ingest import ingest_events
from replay.models import DeliveryRecord, Event
from tests.conftest import event_body, make_route, uses_postgres, uses_redis
from tests.workers import celery_worker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
TOTAL = 2000
RECOVERY = {
    "CONTROLPLANE_HEARTBEAT_SECONDS": "0.5",
    "CONTROLPLANE_RELAY_GRACE_SECONDS": "2",
    "CONTROLPLANE_DISPATCH_BATCH": "20",
}


@pytest.mark.skipif(not (uses_postgres() and uses_redis()), reason="needs Postgres and Redis")
def test_nothing_is_lost_when_a_worker_is_killed(operator, checkout, target, settings, tmp_path):
    settings.HEARTBEAT_SECONDS = 0.5
    settings.RELAY_GRACE_SECONDS = 2
    settings.DISPATCH_BATCH_SIZE = 20
    target.delay = 0.004
    make_route(checkout, operator, target=target.url, max_attempts=10)
    for start in range(0, TOTAL, 500):
        results = ingest_events([event_body(f"k-{i}") for i in range(start, start + 500)])
        assert all(r.status == "accepted" for r in results)

    def finished() -> int:
        return Event.objects.filter(status__in=["delivered", "dead"]).count()

    with celery_worker(
        extra_env=RECOVERY, pool="prefork", concurrency=2, log_path=tmp_path / "first.log"
    ) as first:
        deadline = time.monotonic() + 120
        while finished() < TOTAL // 4 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool, mid-delivery
        first.wait()
    killed_at = finished()
    assert 0 < killed_at < TOTAL, "the kill should land mid-run"
    assert target.peak > 2, "the kill should find many deliveries in flight"

    with celery_worker(
        extra_env=RECOVERY, pool="prefork", concurrency=2, log_path=tmp_path / "second.log"
    ):
        deadline = time.monotonic() + 240
        while finished() < TOTAL and time.monotonic() < deadline:
            sweep()  # what beat runs every few seconds
            time.sleep(1)

    counts = dict.fromkeys(["delivered", "dead", "pending", "dispatched", "deferred"], 0)
    counts.update(
        {row["status"]: row["n"] for row in Event.objects.values("status").annotate(n=Count("id"))}
    )
    assert counts["delivered"] + counts["dead"] == TOTAL, counts

    # No call for an event after its delivery was recorded.
    recorded = {
        eid: at.timestamp()
        for eid, at in DeliveryRecord.objects.values_list("event__event_id", "delivered_at")
    }
    assert len(recorded) == counts["delivered"]
    late = [
        c
        for c in target.calls
        if c["event_id"] in recorded and c["wall"] > recorded[c["event_id"]] + 0.001
    ]
    assert late == []
    print(
        f"killed at {killed_at}/{TOTAL}; handler calls {len(target.calls)} for {TOTAL} events;"
        f" repeats {len(target.calls) - len(target.calls_per_event())} "
        "(in flight at the kill)"
    )
