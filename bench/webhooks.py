"""Webhook delivery at the downstream's speed, side by side with Celery's threads pool.

    python bench/webhooks.py [--events 5000] [--hol-fast 1000] [--hol-slow 100]

Needs Postgres and Redis (BENCH_PG, BENCH_REDIS; defaults 127.0.0.1, Redis DB 6). Uses a scratch
database `cp_bench_webhooks` (dropped and created) and flushes its Redis DB. Starts the worker
as `make run` does (controlplane.supervisor worker: prefork, 2 processes with Redis, each with
CONTROLPLANE_DELIVERY_CONCURRENCY calls in flight) and local receivers (separate processes,
HTTP/1.1 keep-alive, threaded, large backlog), and measures:

  (a) ours: events/s to a receiver answering in 50 ms (ingest -> delivered, outcome recorded)
  (b) anchor: Celery, one task per event, `-P threads -c 64`, calling the same receiver
  (c) ours: events/s with the no-op python handler (the pipeline's own ceiling)
  (d) head-of-line: a 5 ms route's ingest-to-delivered p50/p99 while a 2 s route keeps its
      bulkhead full, against the same run with the fast route alone
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DB = "cp_bench_webhooks"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/6")
ENV = {
    **os.environ,
    "DATABASE_URL": f"{PG}/{DB}",
    "REDIS_URL": REDIS,
    "CONTROLPLANE_VAR_DIR": "/tmp/cp-bench-webhooks",
    "CONTROLPLANE_DEMO": "0",
    "LOG_LEVEL": "WARNING",
    "ANCHOR_BROKER": REDIS,
    "CONTROLPLANE_WEBHOOK_ALLOWED_HOSTS": "127.0.0.1:*",  # the receivers' ephemeral ports
}
ENV.pop("CELERY_CONCURRENCY", None)  # the supervisor's default, as `make run` has it
os.environ.update(ENV)
sys.path.insert(0, str(ROOT))


# --- receivers -----------------------------------------------------------------------------------


def serve(delay: float) -> None:
    """A receiver process: answers every POST after `delay`; GET returns how many it got."""
    count = [0]
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body leave in one segment, as real servers send them: unbuffered, the
        # body waited behind Nagle for the client's delayed ACK (~40 ms on every call).
        wbufsize = 1 << 16
        disable_nagle_algorithm = True

        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            time.sleep(delay)
            with lock:
                count[0] += 1
            self._reply(b"{}")

        def do_GET(self):  # noqa: N802
            self._reply(str(count[0]).encode())

        def _reply(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 1024
        daemon_threads = True

    server = Server(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()


def start_receiver(delay: float) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(delay)], stdout=subprocess.PIPE, text=True
    )
    port = int(proc.stdout.readline())
    return proc, f"http://127.0.0.1:{port}/hook"


def received(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.read())


# --- the control plane -------------------------------------------------------------------------


def reset_database() -> None:
    import psycopg
    import redis

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    redis.Redis.from_url(REDIS).flushdb()
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=ENV, check=True)


def setup_django() -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
    django.setup()


def seed(urls: dict[str, str]) -> None:
    from django.contrib.auth import get_user_model

    from breakers.routes import create_route
    from controlplane.services import create_service

    user = get_user_model().objects.create_superuser("bench", password="bench-password-1")

    def route(slug: str, **fields) -> None:
        service = create_service(actor=user, slug=slug, name=slug, team="perf")
        create_route(actor=user, service=service, name=f"{slug}-route", event_type="*", **fields)

    route("hook", kind="webhook", target=urls["hook"], timeout_seconds=5)
    route("noop", kind="python", target="breakers.builtin_handlers.noop", timeout_seconds=5)
    route("fast", kind="webhook", target=urls["fast"], timeout_seconds=5)
    route(
        "slow",
        kind="webhook",
        target=urls["slow"],
        timeout_seconds=10,
        max_concurrent_calls=16,
        max_wait_ms=50,
    )


def ingest(service: str, prefix: str, n: int, size: int = 500) -> None:
    from replay.ingest import ingest_events

    for start in range(0, n, size):
        ingest_events(
            [
                {
                    "id": f"{prefix}-{i}",
                    "service": service,
                    "type": "bench.tick",
                    "occurred_at": "2026-11-28T12:00:00Z",
                    "payload": {"i": i},
                }
                for i in range(start, min(start + size, n))
            ]
        )


def delivered(prefix: str) -> int:
    from replay.models import Event

    return Event.objects.filter(event_id__startswith=prefix + "-", status="delivered").count()


def wait_until(predicate, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def finished(prefix: str) -> int:
    from replay.models import Event

    return Event.objects.filter(
        event_id__startswith=prefix + "-", status__in=["delivered", "dead"]
    ).count()


def descendants(pid: int) -> list[int]:
    """The process and everything it started (the supervisor, Celery and its pool)."""
    parents: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parents.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(parents.get(p, []))
    return out


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU of these processes so far (those gone since count nothing)."""
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def throughput(service: str, prefix: str, n: int, worker=None) -> tuple[float, float]:
    """events/s, and the worker's CPU per event in µs (0 without a worker to look at)."""
    pids = descendants(worker.pid) if worker is not None else []
    cpu = cpu_seconds(pids)
    started = time.perf_counter()
    ingest(service, prefix, n)
    assert wait_until(lambda: finished(prefix) == n, 900), f"{prefix}: {finished(prefix)}/{n}"
    seconds = time.perf_counter() - started
    assert delivered(prefix) == n, f"{prefix}: {n - delivered(prefix)} dead letters"
    return n / seconds, (cpu_seconds(pids) - cpu) / n * 1e6


def paced_latencies(prefix: str, n: int, rate: float) -> list[float]:
    """Ingest the fast route's events in batches of 10 at `rate`; ingest-to-delivered ms."""
    from replay.ingest import ingest_events
    from replay.models import Event

    started = time.perf_counter()
    for k in range(0, n, 10):
        delay = started + k / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        ingest_events(
            [
                {
                    "id": f"{prefix}-{i}",
                    "service": "fast",
                    "type": "bench.tick",
                    "occurred_at": "2026-11-28T12:00:00Z",
                    "payload": {},
                }
                for i in range(k, min(k + 10, n))
            ]
        )
    assert wait_until(lambda: delivered(prefix) == n, 300), f"{prefix}: {delivered(prefix)}/{n}"
    return sorted(
        (e.finished_at - e.received_at).total_seconds() * 1000
        for e in Event.objects.filter(event_id__startswith=prefix + "-").only(
            "finished_at", "received_at"
        )
    )


def p99(values: list[float]) -> float:
    return values[max(int(len(values) * 0.99) - 1, 0)]


def start_worker() -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "controlplane.supervisor", "worker"],
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


def _bare_client(url: str, seconds: float, threads: int, out) -> None:
    import urllib3

    pool = urllib3.PoolManager(maxsize=threads)
    body = b'{"id": "ceiling", "payload": {"n": 1}}' * 6
    stop_at = time.monotonic() + seconds
    counts = [0] * threads

    def loop(slot: int) -> None:
        while time.monotonic() < stop_at:
            pool.request("POST", url, body=body, headers={"Content-Type": "application/json"})
            counts[slot] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    out.put(sum(counts))


def ceiling(url: str, seconds: float = 5.0, processes: int = 2, threads: int = 64) -> float:
    """What this machine can push through the same receiver with no control plane at all: bare
    urllib3 in as many processes and threads as our worker has, nothing recorded."""
    import multiprocessing

    out = multiprocessing.Queue()
    procs = [
        multiprocessing.Process(target=_bare_client, args=(url, seconds, threads, out))
        for _ in range(processes)
    ]
    for proc in procs:
        proc.start()
    total = sum(out.get() for _ in procs)
    for proc in procs:
        proc.join()
    return total / seconds


def anchor(url: str, n: int) -> float:
    """Celery's threads pool, one task per event, same receiver."""
    sys.path.insert(0, str(ROOT / "bench"))
    from celery_anchor import post

    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "celery_anchor",
            "worker",
            "-P",
            "threads",
            "-c",
            "64",
            "-Q",
            "anchor",
            "--loglevel=WARNING",
            "--without-mingle",
            "--without-gossip",
        ],
        cwd=ROOT / "bench",
        env=ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        base = received(url)
        post.delay(url, "warm-up")
        assert wait_until(lambda: received(url) > base, 60), "anchor worker did not start"
        base = received(url)
        started = time.perf_counter()
        for i in range(n):
            post.delay(url, f"a-{i}")
        assert wait_until(lambda: received(url) - base >= n, 900, 0.02)
        return n / (time.perf_counter() - started)
    finally:
        stop(worker)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--hol-fast", type=int, default=1000)
    parser.add_argument("--hol-slow", type=int, default=100)
    parser.add_argument("--hol-rate", type=float, default=200.0)
    parser.add_argument("--serve", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        return serve(args.serve)

    receivers = {
        name: start_receiver(d) for name, d in (("hook", 0.05), ("fast", 0.005), ("slow", 2.0))
    }
    urls = {name: url for name, (_, url) in receivers.items()}
    results: dict[str, float] = {}
    try:
        reset_database()
        setup_django()
        seed(urls)
        results["ceiling"] = ceiling(urls["hook"])
        results["anchor"] = anchor(urls["hook"], args.events)
        worker = start_worker()
        try:
            ingest("noop", "warm", 200)  # worker up, pools and routes loaded
            assert wait_until(lambda: delivered("warm") == 200, 120), "worker did not start"
            results["ours"], results["ours_cpu"] = throughput("hook", "w", args.events, worker)
            results["noop"], results["noop_cpu"] = throughput("noop", "n", args.events, worker)
            alone = paced_latencies("alone", args.hol_fast, args.hol_rate)
            ingest("slow", "s", args.hol_slow)
            time.sleep(1)  # the slow route's bulkhead fills
            beside = paced_latencies("beside", args.hol_fast, args.hol_rate)
        finally:
            stop(worker)
    finally:
        for proc, _ in receivers.values():
            proc.terminate()

    print(
        f"\nWebhook delivery benchmark: {os.cpu_count()} cores, Postgres + Redis, worker as "
        f"`make run` starts it, {args.events} events, receiver latency 50 ms\n"
    )
    print(f"{'measure':<66}{'value':>12}")
    print(f"{'(a) ours, webhook at 50 ms, events/s':<66}{results['ours']:>12,.0f}")
    label = "(b) anchor: Celery -P threads -c 64, one task per event, /s"
    print(f"{label:<66}{results['anchor']:>12,.0f}")
    print(f"{'(c) ours, no-op python handler, events/s':<66}{results['noop']:>12,.0f}")
    label = "(a) worker CPU per event, µs (all its processes)"
    print(f"{label:<66}{results['ours_cpu']:>12,.0f}")
    label = "(c) worker CPU per event, µs"
    print(f"{label:<66}{results['noop_cpu']:>12,.0f}")
    label = "(e) ceiling: bare urllib3, 2 processes x 64 threads, nothing recorded, /s"
    print(f"{label:<66}{results['ceiling']:>12,.0f}")
    print(
        f"\n(a) >= 1,000/s: {'met' if results['ours'] >= 1000 else 'NOT met'}; "
        f"(a)/(b) = {results['ours'] / results['anchor']:.2f}x (goal >= 1); "
        f"(a)/(c) = {results['ours'] / results['noop']:.2f}x (goal >= 0.5); "
        f"(a)/(e) = {results['ours'] / results['ceiling']:.2f}x of the bare HTTP ceiling"
    )
    print(
        f"\nHead-of-line: 5 ms route at {args.hol_rate:.0f}/s ({args.hol_fast} events), "
        f"ingest-to-delivered ms; beside a 2 s route with {args.hol_slow} events and its bulkhead "
        "(16) full"
    )
    print(f"{'':<30}{'p50':>10}{'p99':>10}")
    print(f"{'fast route alone':<30}{statistics.median(alone):>10,.1f}{p99(alone):>10,.1f}")
    label = "beside the saturated 2 s route"
    print(f"{label:<30}{statistics.median(beside):>10,.1f}{p99(beside):>10,.1f}")
    ratio = p99(beside) / p99(alone)
    print(f"\np99 ratio = {ratio:.2f}x (goal <= 2x: {'met' if ratio <= 2 else 'NOT met'})")


if __name__ == "__main__":
    main()
