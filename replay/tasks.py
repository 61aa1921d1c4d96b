from celery import shared_task
from celery.signals import worker_ready
from django.conf import settings

from replay import replay_runs, snapshots
from replay.log import purge_attempts
from replay.replay_runs import LEASE_SECONDS


@shared_task(name="replay.purge_attempts")
def purge_attempts_task() -> int:
    return purge_attempts(settings.ATTEMPT_RETENTION_DAYS)


@shared_task(name="replay.export_snapshot")
def export_snapshot_task(snapshot_id: int) -> None:
    snapshots.export_snapshot(snapshot_id)


@shared_task(name="replay.daily_snapshot")
def daily_snapshot_task() -> int:
    """Export the last 24 h, then delete snapshots past the retention period."""
    return snapshots.daily_snapshot().pk


@shared_task(name="replay.run")
def replay_run_task(run_id: int, verify: bool = True) -> str:
    """One slice of a replay run; the next slice is a new task. Acknowledged late: a worker
    that dies mid-slice hands the same message to another, which resumes at the checkpoint."""
    result = replay_runs.work(run_id, verify=verify)
    if result == "continue":
        replay_run_task.apply_async((run_id,), {"verify": False})
    elif result == "busy":  # another task holds the lease, or a dead one's has not lapsed yet
        replay_run_task.apply_async((run_id,), {"verify": verify}, countdown=LEASE_SECONDS)
    return result


@worker_ready.connect
def resume_running_replays(**kwargs) -> None:
    """A starting worker picks up the runs left running: the task of a worker that was killed
    may otherwise wait for the broker's visibility timeout. A second task for a run that is
    still being worked backs off on its lease."""
    for run_id in replay_runs.running_runs():
        replay_run_task.delay(run_id)
