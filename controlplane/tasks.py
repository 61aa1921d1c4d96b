"""Tasks of the project package."""

import socket

from celery import shared_task


@shared_task(name="controlplane.ping", ignore_result=False)
def ping() -> dict:
    """Proves a worker is consuming the broker (used by tests and operators)."""
    return {"pong": True, "host": socket.gethostname()}


@shared_task(name="controlplane.noop")
def noop() -> None:
    """Does nothing: the anchor of bench/pipeline.py (raw Celery throughput)."""
