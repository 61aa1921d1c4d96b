"""Celery queue names, from one place: one queue per event priority plus the default queue."""

from __future__ import annotations

from enum import StrEnum


class Priority(StrEnum):
    CRITICAL = "CRITICAL"
    HIGH = "HIGH"
    MEDIUM = "MEDIUM"
    LOW = "LOW"


class Queue(StrEnum):
    CRITICAL = "events.critical"
    HIGH = "events.high"
    MEDIUM = "events.medium"
    LOW = "events.low"
    DEFAULT = "celery"  # sweeps, maintenance, demo traffic


def queue_for(priority: str) -> Queue:
    return Queue[Priority(priority).name]


# Workers list the queues most urgent first; a dedicated worker can take just events.critical.
ALL_QUEUES = ",".join(q.value for q in Queue)
