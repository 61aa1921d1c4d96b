"""Pipeline throughput and latency, side by side with raw Celery on the same broker.

    python bench/pipeline.py [--events 20000] [--tasks 10000]

Needs Postgres and Redis (DATABASE_URL's server, REDIS_URL; defaults 127.0.0.1). Uses a scratch
database `cp_bench_pipeline` and Redis DB 9, both wiped first. Starts a real gunicorn web server
and one Celery worker (prefork, concurrency = cores), as `make run` does, and measures:

  (a) raw Celery: trivial tasks/s through the same broker and worker
  (b) end to end: events/s from the ingest API (batches of 500) to delivered by the no-op
      python handler, outcome recorded
  (c) ingest only: events/s accepted by the API (no worker running)
  (d) ingest-to-delivered latency p50/p99 at half of (b)'s rate
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DB = "cp_bench_pipeline"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/9")
PORT = int(os.environ.get("BENCH_PORT", "8931"))
ENV = {
    **os.environ,
    "DATABASE_URL": f"{PG}/{DB}",
    "REDIS_URL": REDIS,
    "CONTROLPLANE_VAR_DIR": "/tmp/cp-bench-pipeline",
    "CONTROLPLANE_DEMO": "0",
    "PORT": str(PORT),
    "LOG_LEVEL": "WARNING",
    "CELERY_CONCURRENCY": str(os.cpu_count() or 2),
}
os.environ.update(ENV)
sys.path.insert(0, str(ROOT))


def reset_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    import redis

    redis.Redis.from_url(REDIS).flushdb()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=ENV, check=True)


def start(role: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "controlplane.supervisor", role],
        cwd=ROOT,
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def setup_django():
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    django.setup()


def seed() -> str:
    from django.contrib.auth import get_user_model

    from breakers.routes import create_route
    from controlplane.services import create_service
    from controlplane.tokens import issue_token

    user = get_user_model().objects.create_superuser("bench", password="bench-password-1")
    service = create_service(actor=user, slug="bench", name="Bench", team="perf")
    create_route(
        actor=user,
        service=service,
        name="bench-noop",
        event_type="*",
        kind="python",
        target="breakers.builtin_handlers.noop",
        timeout_seconds=5,
    )
    return issue_token(user, name="bench", scopes=["ingest"]).secret


def post_batch(token: str, events: list[dict]) -> None:
    body = json.dumps({"events": events}).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{PORT}/api/v1/events",
        data=body,
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 202, response.status


def make_batches(prefix: str, total: int, size: int) -> list[list[dict]]:
    now = "2026-11-28T12:00:00Z"
    return [
        [
            {
                "id": f"{prefix}-{i}",
                "service": "bench",
                "type": "bench.tick",
                "occurred_at": now,
                "payload": {"i": i},
            }
            for i in range(start, min(start + size, total))
        ]
        for start in range(0, total, size)
    ]


def post_all(token: str, batches: list[list[dict]], clients: int = 2) -> float:
    """Posts from a few client threads (as several producers would); returns seconds."""
    queue = list(batches)
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                if not queue:
                    return
                batch = queue.pop()
            post_batch(token, batch)

    started = time.perf_counter()
    threads = [threading.Thread(target=worker) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - started


def count(prefix: str, status: str | None = None) -> int:
    from replay.models import Event

    qs = Event.objects.filter(event_id__startswith=prefix + "-")
    return qs.filter(status=status).count() if status else qs.count()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=20000)
    parser.add_argument("--tasks", type=int, default=10000)
    args = parser.parse_args()

    reset_database()
    setup_django()
    token = seed()
    web = start("web")
    assert wait_until(lambda: _up(), 30), "web did not start"
    results: dict[str, float] = {}
    try:
        # (c) ingest only: nothing consumes
        seconds = post_all(token, make_batches("ingest", args.events, 500))
        results["c"] = args.events / seconds
        from replay.models import Event

        Event.objects.all().delete()
        import redis

        redis.Redis.from_url(REDIS).delete("events.medium")

        worker = start("worker")
        try:
            from controlplane.celery import app
            from controlplane.tasks import noop

            with app.connection_for_write() as conn:
                conn.ensure_connection()
            noop.delay()  # wait for the worker to be up before timing
            client = redis.Redis.from_url(REDIS)
            assert wait_until(lambda: client.llen("celery") == 0, 60)
            time.sleep(1)

            # (a) raw Celery: trivial tasks, sent and drained
            started = time.perf_counter()
            for _ in range(args.tasks):
                noop.delay()
            wait_until(
                lambda: client.llen("celery") == 0 and client.hlen("unacked") == 0, 600, 0.01
            )
            results["a"] = args.tasks / (time.perf_counter() - started)

            # (b) end to end: ingest API to delivered
            started = time.perf_counter()
            post_all(token, make_batches("e2e", args.events, 500))
            wait_until(lambda: count("e2e", "delivered") == args.events, 900, 0.05)
            results["b"] = args.events / (time.perf_counter() - started)

            # (d) latency at half of (b)'s rate, paced batches of 50 for 15 s at most
            rate = results["b"] / 2
            batches = make_batches("lat", min(args.events, int(rate * 15)), 50)
            interval = 50 / rate
            started = time.perf_counter()
            for n, batch in enumerate(batches):
                delay = started + n * interval - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                post_batch(token, batch)
            total = sum(len(b) for b in batches)
            wait_until(lambda: count("lat", "delivered") == total, 300, 0.05)
            lags = sorted(
                (e.finished_at - e.received_at).total_seconds() * 1000
                for e in Event.objects.filter(event_id__startswith="lat-").only(
                    "finished_at", "received_at"
                )
            )
            results["p50"] = statistics.median(lags)
            results["p99"] = lags[int(len(lags) * 0.99) - 1]
            results["lat_rate"] = rate
        finally:
            stop(worker)
    finally:
        stop(web)

    print(
        f"\nPipeline benchmark: {os.cpu_count()} cores, Postgres + Redis, worker prefork "
        f"x{ENV['CELERY_CONCURRENCY']}, {args.events} events, {args.tasks} tasks\n"
    )
    print(f"{'measure':<58}{'value':>14}")
    print(f"{'(a) raw Celery, trivial tasks/s (anchor)':<58}{results['a']:>14,.0f}")
    print(
        f"{'(b) end to end, events/s (API batches of 500 -> delivered)':<58}{results['b']:>14,.0f}"
    )
    print(f"{'(c) ingest only, events/s':<58}{results['c']:>14,.0f}")
    print(
        f"{'(d) ingest-to-delivered p50 ms at ' + format(results['lat_rate'], ',.0f') + '/s':<58}"
        f"{results['p50']:>14,.1f}"
    )
    print(f"{'(d) ingest-to-delivered p99 ms':<58}{results['p99']:>14,.1f}")
    ratio = results["b"] / results["a"]
    print(f"\nratio (b)/(a) = {ratio:.2f}x  (goal >= 2x: {'met' if ratio >= 2 else 'NOT met'})")


def _up() -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/healthz", timeout=1):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    main()
