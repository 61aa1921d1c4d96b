from celery import shared_task
from django.conf import settings

from replay import replay_runs, snapshots
from replay.log import purge_attempts


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
    return result
