"""Every periodic task, in one place."""

from django.conf import settings

BEAT_SCHEDULE = {
    "relay-sweep": {"task": "breakers.sweep", "schedule": settings.SWEEP_SECONDS},
    "purge-attempts": {"task": "replay.purge_attempts", "schedule": 3600.0},
    "demo-traffic": {"task": "breakers.demo_traffic", "schedule": 2.0},
}
