"""kill -9 of a worker in the middle of delivering 2,000 events to a slow receiver: another
worker and the relay finish the job. Nothing is lost, no event already recorded delivered is
sent again, no redelivery repeats an attempt number, and the SLI ledger counts every final
outcome once. Heartbeat and sweep run at their defaults, so the recovery time printed is the
one operators get."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from django.db.models import Count
from django.utils import timezone

from breakers.relay import sweep
from budgets.ledger import read_counts
from replay.ingest import ingest_events
from replay.models import DeliveryRecord, Event
from tests.budgets.conftest import make_slo
from tests.conftest import event_body, make_route, uses_postgres, uses_redis
from tests.workers import celery_worker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
TOTAL = 2000
RECOVERY = {"CONTROLPLANE_DISPATCH_BATCH": "20"}


@pytest.mark.skipif(not (uses_postgres() and uses_redis()), reason="needs Postgres and Redis")
@pytest.mark.parametrize("kill_at", [0.25, 0.9], ids=["early", "late"])
def test_nothing_is_lost_when_a_worker_is_killed(
    operator, checkout, target, settings, tmp_path, kill_at
):
    settings.DISPATCH_BATCH_SIZE = 20
    target.delay = 0.004
    slos = [
        make_slo(operator, checkout, "delivery"),
        make_slo(operator, checkout, "fast", sli="latency", latency_threshold_ms=600_000),
    ]
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
        while time.monotonic() < deadline and (
            finished() < TOTAL * kill_at or not Event.objects.filter(status="dispatched").exists()
        ):  # kill while it holds events (not between two batches)
            time.sleep(0.02)
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool, mid-delivery
        killed = time.monotonic()
        first.wait()
    killed_at = finished()
    assert 0 < killed_at < TOTAL, "the kill should land mid-run"
    assert target.peak > 2, "the kill should find many deliveries in flight"
    held = set(Event.objects.filter(status="dispatched").values_list("pk", flat=True))
    recovered_after = None

    with celery_worker(
        extra_env=RECOVERY, pool="prefork", concurrency=2, log_path=tmp_path / "second.log"
    ):
        deadline = time.monotonic() + 240
        while finished() < TOTAL and time.monotonic() < deadline:
            sweep()  # what beat runs every CONTROLPLANE_SWEEP_SECONDS
            for _ in range(int(settings.SWEEP_SECONDS / 0.25)):
                if (
                    recovered_after is None
                    and not Event.objects.filter(
                        pk__in=held, status__in=["pending", "dispatched", "deferred"]
                    ).exists()
                ):
                    recovered_after = time.monotonic() - killed
                time.sleep(0.25)

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

    # A redelivery says so: one event never gets the same X-Attempt twice.
    numbers: dict[str, list[str]] = {}
    for call in target.calls:
        numbers.setdefault(call["event_id"], []).append(call["headers"]["X-Attempt"])
    repeated = {eid: n for eid, n in numbers.items() if len(n) != len(set(n))}
    assert repeated == {}

    # The ledger counts every final outcome once, per SLO, whatever the kill interrupted.
    now = timezone.now().replace(second=0, microsecond=0)
    spans = [(slo.pk, now - timedelta(hours=2), now + timedelta(minutes=2)) for slo in slos]
    ledger = read_counts(spans)
    assert [ledger[span].total for span in spans] == [TOTAL, TOTAL]
    assert [ledger[span].good for span in spans] == [counts["delivered"]] * 2

    # The events the dead worker held moved again within heartbeat x 3 + sweep.
    assert held and recovered_after is not None
    print(
        f"killed at {killed_at}/{TOTAL}; handler calls {len(target.calls)} for {TOTAL} events;"
        f" repeats {len(target.calls) - len(target.calls_per_event())} "
        f"(in flight at the kill); {len(held)} held events finished {recovered_after:.1f} s "
        "after the kill"
    )
