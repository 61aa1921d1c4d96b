"""Every periodic task, in one place."""

from celery.schedules import crontab
from django.conf import settings

BEAT_SCHEDULE = {
    "relay-sweep": {"task": "breakers.sweep", "schedule": settings.SWEEP_SECONDS},
    "purge-attempts": {"task": "replay.purge_attempts", "schedule": 3600.0},
    "snapshot-daily": {  # the day's export, then snapshots past retention are deleted
        "task": "replay.daily_snapshot",
        "schedule": crontab(**settings.SNAPSHOT_DAILY_CRONTAB),
    },
    "demo-traffic": {"task": "breakers.demo_traffic", "schedule": 2.0},
    "dynamic-thresholds": {
        "task": "breakers.recompute_thresholds",
        "schedule": settings.DYNAMIC_RECOMPUTE_SECONDS,
    },
    "purge-shed-tallies": {"task": "breakers.purge_shed_tallies", "schedule": 3600.0},
    # --- Budgets ---
    "budgets-evaluate-alerts": {"task": "budgets.evaluate_alerts", "schedule": 60.0},
    "budgets-expire-decisions": {"task": "budgets.expire_decisions", "schedule": 60.0},
    "budgets-purge-ledger": {"task": "budgets.purge_ledger", "schedule": 3600.0},
}
