from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from breakers.dispatch import dispatch_events
from controlplane.models import AuditEntry
from replay import replay_runs, snapshots
from replay.models import DeliveryRecord, Event, ReplayRun
from tests.conftest import make_route
from tests.replay.snapshot_helpers import ingest_at

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def history(operator, checkout, snapshot_storage):
    """Ten events a minute apart, the first three delivered on the route, in a snapshot."""
    made = [
        ingest_at(f"e-{i}", T0 + timedelta(minutes=i), type="order.paid" if i % 2 else "order.new")
        for i in range(10)
    ]
    return made, snapshots.create_snapshot(
        actor=operator.user, start=T0, end=T0 + timedelta(hours=1)
    )


def run_to_end(run: ReplayRun) -> ReplayRun:
    """What the task chain does, without the sleeps."""
    while replay_runs.work(run.pk, sleep=lambda s: None) == "continue":
        pass
    return ReplayRun.objects.get(pk=run.pk)


def deliver_on(route, events) -> None:
    for event in events:
        DeliveryRecord.objects.create(route=route, event=event)


def test_a_dry_run_counts_exactly_and_writes_nothing(operator, checkout, target, history):
    made, snap = history
    route = make_route(checkout, operator, target=target.url)
    deliver_on(route, made[:3])
    run = replay_runs.create_replay(
        actor=operator.user,
        snapshot=snap,
        rate=1000,
        start=T0 + timedelta(minutes=1),  # drops e-0
        end=T0 + timedelta(minutes=9),  # drops e-9
    )
    run = run_to_end(run)
    # Selected: e-1..e-8 (8); already delivered: e-1, e-2; would deliver: 6.
    assert (run.status, run.total, run.done, run.skipped, run.failed) == ("done", 8, 6, 2, 0)
    assert not Event.objects.filter(is_replay=True).exists()
    assert target.calls == []


def test_a_dry_run_by_type_counts_only_that_type(operator, checkout, history):
    _, snap = history
    run = replay_runs.create_replay(
        actor=operator.user, snapshot=snap, rate=3, types=["order.paid"]
    )
    run = run_to_end(run)
    assert (run.total, run.done, run.skipped) == (5, 5, 0)


def test_a_live_run_delivers_each_event_once_with_the_run_id(operator, checkout, target, history):
    made, snap = history
    route = make_route(checkout, operator, target=target.url)
    deliver_on(route, made[:4])
    run = replay_runs.create_replay(actor=operator.user, snapshot=snap, rate=4, mode="live")
    run = run_to_end(run)
    assert (run.total, run.done, run.skipped) == (10, 6, 4)
    copies = list(Event.objects.filter(replay_run=run).order_by("pk"))
    assert [c.event_id for c in copies] == [f"e-{i}~replay-{run.pk}" for i in range(4, 10)]
    assert all(c.is_replay for c in copies)
    dispatch_events([c.pk for c in copies])
    dispatch_events([c.pk for c in copies])  # a repeated dispatch delivers nothing twice
    assert sorted(target.calls_per_event().values()) == [1] * 6
    assert {c["headers"]["X-Replay-Run"] for c in target.calls} == {str(run.pk)}
    assert json.loads(target.calls[0]["body"])["payload"] == made[4].payload
    assert replay_runs.outcomes(run)["delivered"] == 6


def test_forcing_delivers_what_was_already_delivered(operator, checkout, target, history):
    made, snap = history
    route = make_route(checkout, operator, target=target.url)
    deliver_on(route, made)
    run = run_to_end(
        replay_runs.create_replay(
            actor=operator.user, snapshot=snap, rate=100, mode="live", force=True
        )
    )
    assert (run.done, run.skipped) == (10, 0)


def test_a_repeated_chunk_after_a_crash_writes_no_second_copy(operator, checkout, history):
    _, snap = history
    run = replay_runs.create_replay(actor=operator.user, snapshot=snap, rate=5, mode="live")
    assert replay_runs.work(run.pk, seconds=0, sleep=lambda s: None) == "continue"
    assert ReplayRun.objects.get(pk=run.pk).checkpoint == 5
    # The worker died after committing but the checkpoint is read stale: rewind it.
    ReplayRun.objects.filter(pk=run.pk).update(checkpoint=0, done=0)
    run = run_to_end(run)
    assert Event.objects.filter(replay_run=run).count() == 10
    assert run.checkpoint == 10


def test_a_run_resumes_from_its_checkpoint(operator, checkout, history):
    _, snap = history
    run = replay_runs.create_replay(actor=operator.user, snapshot=snap, rate=2, mode="live")
    assert replay_runs.work(run.pk, seconds=0, sleep=lambda s: None) == "continue"
    first = set(Event.objects.filter(replay_run=run).values_list("event_id", flat=True))
    assert len(first) == 2
    run = run_to_end(run)
    assert run.done == 10 and Event.objects.filter(replay_run=run).count() == 10


def test_pause_stops_and_resume_continues_cancel_ends(operator, checkout, history):
    _, snap = history
    run = replay_runs.create_replay(actor=operator.user, snapshot=snap, rate=2)
    assert replay_runs.work(run.pk, seconds=0, sleep=lambda s: None) == "continue"
    replay_runs.pause_replay(run, actor=operator.user)
    assert replay_runs.work(run.pk) == "stopped"
    assert ReplayRun.objects.get(pk=run.pk).done == 2
    replay_runs.resume_replay(run, actor=operator.user)
    assert replay_runs.work(run.pk, seconds=0, sleep=lambda s: None) == "continue"
    replay_runs.cancel_replay(run, actor=operator.user)
    run = ReplayRun.objects.get(pk=run.pk)
    assert (run.status, run.done) == ("cancelled", 4)
    with pytest.raises(replay_runs.ReplayError, match="cancelled"):
        replay_runs.resume_replay(run, actor=operator.user)
    actions = AuditEntry.objects.filter(object_type="replay.replayrun").values_list(
        "action", flat=True
    )
    assert {"replay.create", "replay.pause", "replay.resume", "replay.cancel"} <= set(actions)


def test_a_tampered_snapshot_fails_the_run(operator, checkout, history, snapshot_storage):
    _, snap = history
    run = replay_runs.create_replay(actor=operator.user, snapshot=snap, rate=10, mode="live")
    path = snapshot_storage / snap.file_name
    path.write_bytes(path.read_bytes()[:-2])
    assert replay_runs.work(run.pk) == "stopped"
    run = ReplayRun.objects.get(pk=run.pk)
    assert run.status == "failed" and "truncated" in run.status_reason
    assert not Event.objects.filter(is_replay=True).exists()


def test_an_alternate_route_receives_the_copies(operator, checkout, target, history):
    from tests.http_target import Target

    _, snap = history
    make_route(checkout, operator, target=target.url)
    with Target() as warmer:
        alternate = make_route(
            checkout, operator, name="cache-warmer", event_type="warm.*", target=warmer.url
        )
        run = run_to_end(
            replay_runs.create_replay(
                actor=operator.user, snapshot=snap, rate=100, mode="live", route=alternate
            )
        )
        dispatch_events(list(Event.objects.filter(replay_run=run).values_list("pk", flat=True)))
        assert len(warmer.calls) == 10
    assert target.calls == []


def test_replay_deliveries_stay_out_of_the_sli_ledger(operator, checkout, target, history):
    from budgets import slos
    from budgets.models import LedgerBucket

    made, snap = history
    make_route(checkout, operator, target=target.url)
    slos.create_slo(
        actor=operator.user,
        service=checkout,
        name="delivery",
        sli="events",
        target="0.999",
        window="rolling:30d",
    )
    run = run_to_end(
        replay_runs.create_replay(actor=operator.user, snapshot=snap, rate=100, mode="live")
    )
    dispatch_events(list(Event.objects.filter(replay_run=run).values_list("pk", flat=True)))
    assert len(target.calls) == 10
    assert not LedgerBucket.objects.exists()
    dispatch_events([made[0].pk])  # live traffic does count: the ledger is listening
    assert LedgerBucket.objects.exists()


def test_one_task_works_a_run_at_a_time_and_a_lapsed_lease_is_taken_over(
    operator, checkout, history
):
    _, snap = history
    run = replay_runs.create_replay(actor=operator.user, snapshot=snap, rate=100)
    assert replay_runs._take_lease(run.pk, "a-dead-worker")
    assert replay_runs.work(run.pk) == "busy"
    assert ReplayRun.objects.get(pk=run.pk).done == 0
    ReplayRun.objects.filter(pk=run.pk).update(lease_until=datetime.now(UTC) - timedelta(seconds=1))
    assert run_to_end(run).done == 10
