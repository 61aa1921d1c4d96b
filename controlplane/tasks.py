"""Tasks of the project package."""

import os
import socket

from celery import shared_task
from celery.signals import worker_ready


@shared_task(name="controlplane.ping", ignore_result=False)
def ping() -> dict:
    """Proves a worker is consuming the broker (used by tests and operators)."""
    return {"pong": True, "host": socket.gethostname()}


@shared_task(name="controlplane.noop")
def noop() -> None:
    """Does nothing: the anchor of bench/pipeline.py (raw Celery throughput)."""


@worker_ready.connect
def _serve_worker_metrics(**kwargs) -> None:
    """Where web and workers do not share a disk (one container each), a worker serves its
    processes' metrics itself on CONTROLPLANE_WORKER_METRICS_PORT for Prometheus to scrape."""
    port = os.environ.get("CONTROLPLANE_WORKER_METRICS_PORT")
    if not port:
        return
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
        start_http_server(int(port), addr="0.0.0.0", registry=registry)
    else:
        start_http_server(int(port), addr="0.0.0.0")
