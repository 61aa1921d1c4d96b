"""A live replay run with a real worker against a real receiver; the worker is killed with -9
mid-run, another starts, and the run resumes from its checkpoint: one replay copy per event,
each delivered, and no call for a copy after its delivery was recorded."""

from __future__ import annotations

import os
import signal
import time
from datetime import UTC, datetime, timedelta

import pytest

from breakers.relay import sweep
from replay import replay_runs, snapshots
from replay.models import DeliveryRecord, Event, ReplayRun
from tests.conftest import make_route, uses_postgres, uses_redis
from tests.replay.snapshot_helpers import ingest_at
from tests.workers import celery_worker

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
TOTAL = 200
T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
KEYS = "k1:integration-secret"
RECOVERY = {
    "CONTROLPLANE_HEARTBEAT_SECONDS": "0.5",
    "CONTROLPLANE_RELAY_GRACE_SECONDS": "2",
    "CONTROLPLANE_SNAPSHOT_KEYS": KEYS,
}


@pytest.mark.skipif(not (uses_postgres() and uses_redis()), reason="needs Postgres and Redis")
def test_a_killed_replay_resumes_and_delivers_each_event_once(
    operator, checkout, target, settings, tmp_path
):
    settings.SNAPSHOT_KEYS = [("k1", "integration-secret")]
    settings.RELAY_GRACE_SECONDS = 2
    folder = tmp_path / "snapshots"
    settings.STORAGES = {
        **settings.STORAGES,
        "snapshots": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": str(folder)},
        },
    }
    env = {**RECOVERY, "CONTROLPLANE_SNAPSHOT_DIR": str(folder)}
    route = make_route(checkout, operator, target=target.url, max_attempts=10)
    for i in range(TOTAL):
        ingest_at(f"r-{i}", T0 + timedelta(seconds=i))
    Event.objects.update(status="dead")  # the outage: nothing reached the receiver
    snap = snapshots.create_snapshot(actor=operator.user, start=T0, end=T0 + timedelta(hours=1))
    run = replay_runs.create_replay(
        actor=operator.user, snapshot=snap, rate=40, mode="live", route=route
    )

    def progress() -> int:
        return ReplayRun.objects.get(pk=run.pk).done

    with celery_worker(
        extra_env=env, pool="prefork", concurrency=2, log_path=tmp_path / "first.log"
    ) as first:
        deadline = time.monotonic() + 60
        while progress() < TOTAL // 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.killpg(first.pid, signal.SIGKILL)  # the worker and its pool, mid-run
        first.wait()
    killed_at = progress()
    assert 0 < killed_at < TOTAL, "the kill should land mid-run"

    def delivered() -> int:
        return Event.objects.filter(replay_run=run, status="delivered").count()

    with celery_worker(
        extra_env=env, pool="prefork", concurrency=2, log_path=tmp_path / "second.log"
    ):
        deadline = time.monotonic() + 120
        while delivered() < TOTAL and time.monotonic() < deadline:
            sweep()  # what beat runs: re-enqueues copies whose dispatch task died with the worker
            time.sleep(0.5)

    run.refresh_from_db()
    assert (run.status, run.done, run.skipped, run.checkpoint) == ("done", TOTAL, 0, TOTAL)
    copies = Event.objects.filter(replay_run=run)
    assert copies.count() == TOTAL  # one copy per event, whatever was repeated
    assert delivered() == TOTAL
    calls = target.calls_per_event()
    assert set(calls) == {f"r-{i}~replay-{run.pk}" for i in range(TOTAL)}
    assert {c["headers"]["X-Replay-Run"] for c in target.calls} == {str(run.pk)}
    recorded = {
        eid: at.timestamp()
        for eid, at in DeliveryRecord.objects.filter(event__replay_run=run).values_list(
            "event__event_id", "delivered_at"
        )
    }
    late = [c for c in target.calls if c["wall"] > recorded[c["event_id"]] + 0.001]
    assert late == []
