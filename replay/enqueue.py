"""Hands events to the dispatchers. By task name: replay never imports breakers."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

from django.conf import settings

from controlplane.celery import app
from controlplane.queues import queue_for

DISPATCH_TASK = "breakers.dispatch"


def enqueue_dispatch(events: Iterable[tuple[int, str]], *, countdown: float | None = None) -> int:
    """Send (event pk, priority) pairs to their priority queues in batches; returns tasks sent.
    Call only after the rows are committed (transaction.on_commit)."""
    by_priority: dict[str, list[int]] = defaultdict(list)
    for pk, priority in events:
        by_priority[priority].append(pk)
    size = settings.DISPATCH_BATCH_SIZE
    sent = 0
    for priority, pks in by_priority.items():
        for start in range(0, len(pks), size):
            app.send_task(
                DISPATCH_TASK,
                args=[pks[start : start + size]],
                queue=queue_for(priority).value,
                countdown=countdown,
            )
            sent += 1
    return sent
