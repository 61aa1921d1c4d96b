"""A real Celery worker in a subprocess, against whatever broker and database the tests use."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings

from controlplane.queues import ALL_QUEUES

ROOT = Path(__file__).resolve().parents[1]


def worker_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The worker must see the test database, not the one named in DATABASE_URL."""
    env = dict(os.environ)
    db = settings.DATABASES["default"]
    if "sqlite" in db["ENGINE"]:
        env["DATABASE_URL"] = f"sqlite:///{db['NAME']}"
    else:
        auth = f"{db['USER']}:{db.get('PASSWORD') or ''}"
        env["DATABASE_URL"] = f"postgres://{auth}@{db['HOST']}:{db['PORT']}/{db['NAME']}"
    env.update(extra or {})
    return env


@contextmanager
def celery_worker(
    *,
    queues: str | None = None,
    concurrency: int = 1,
    pool: str = "solo",
    extra_env: dict[str, str] | None = None,
    log_path: Path | None = None,
):
    cmd = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "controlplane",
        "worker",
        "--loglevel=INFO",
        f"--pool={pool}",
        f"--concurrency={concurrency}",
        "--without-mingle",
        "--without-gossip",
        f"--hostname=test-{os.getpid()}-{time.monotonic_ns()}@%h",
    ]
    cmd.append(f"--queues={queues or ALL_QUEUES}")
    log = open(log_path or os.devnull, "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        cmd,
        cwd=ROOT,
        env=worker_env(extra_env),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        log.close()


def wait_for(predicate, timeout=60.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False
