"""A real worker process consumes a task from the real broker (Redis in CI, and the embedded
filesystem broker in the smoke run)."""

from __future__ import annotations

import pytest

from controlplane.tasks import ping
from tests.workers import celery_worker

pytestmark = [pytest.mark.integration, pytest.mark.smoke]


def test_a_real_worker_runs_a_task(tmp_path):
    with celery_worker(log_path=tmp_path / "worker.log") as proc:
        result = ping.delay()
        try:
            value = result.get(timeout=60)
        except Exception:
            print((tmp_path / "worker.log").read_text())
            raise
        assert proc.poll() is None
    assert value["pong"] is True
