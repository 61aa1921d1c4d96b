"""The embedded default (SQLite + the filesystem broker, no server): throughput, and a soak.

    python bench/embedded.py [--events 5000] [--batch 500,10] [--poll 1.0,0.05,0.01]
                             [--webhook-ms 50]
    python bench/embedded.py transports [--backlog 50,500,2000] [--work 0.005]
    python bench/embedded.py soak [--minutes 10] [--interval 30]

Needs nothing but the checkout: DATABASE_URL and REDIS_URL are ignored, each run gets a fresh
CONTROLPLANE_VAR_DIR under /tmp.

throughput (the default): for each broker polling interval (`--poll`; kombu's own default is
1.0 s) and ingest batch size (`--batch`), a fresh SQLite database, one worker started as
`make run` starts it (`controlplane.supervisor worker`), a route to the no-op python handler,
events ingested through the ingest service in batches (a tenth of `--events` for batches under
100), and the delivered count polled until all are delivered. Prints events/s end to end,
dispatch tasks/s and the idle worker's CPU, side by side; kombu's 1 s default is the anchor.
With `--webhook-ms`, the route is a webhook to a local receiver answering after that many ms
(bench/webhooks.py's receiver, in its own process) instead of the no-op handler.

transports: kombu's consuming loop alone, as a worker drives it (prefetch 1, the ack coming from
the pool a few ms later), over our five queues with a backlog: our filesystem transport against
kombu's SQLAlchemy transport on a SQLite file (when SQLAlchemy is installed), per interval.

soak: `make run` as a new user runs it (`controlplane.supervisor all` after migrate and
seed_demo, demo traffic on), sampled every `--interval` seconds: broker depth per queue, events
not yet final, and how late beat's periodic tasks reached the worker (beat's "Sending due task"
log line to the worker's "received" line). Ends with a verdict against issue 9's bar: depth
bounded, pending events drained, beat tasks within twice their period.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
NOT_FINAL = ("pending", "dispatched", "deferred")
IDLE_SECONDS = 20.0


def embedded_env(var_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(
        {
            "CONTROLPLANE_VAR_DIR": str(var_dir),
            "DJANGO_SETTINGS_MODULE": "controlplane.settings",
            "PROMETHEUS_MULTIPROC_DIR": str(var_dir / "prometheus"),
        }
    )
    env.update(extra)
    return env


def fresh(var_dir: Path) -> None:
    shutil.rmtree(var_dir, ignore_errors=True)
    (var_dir / "prometheus").mkdir(parents=True)


def start(role: str, env: dict[str, str], log: Path | None = None) -> subprocess.Popen:
    out = open(log, "w") if log else subprocess.DEVNULL  # noqa: SIM115 - lives with the child
    return subprocess.Popen(
        [sys.executable, "-m", "controlplane.supervisor", role],
        cwd=ROOT,
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=30)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything left in its group


def setup_django(env: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(env)
    import django

    django.setup()


def session_cpu_seconds(sid: int) -> float:
    """User + system CPU of every process in session `sid` (a worker and its pool)."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == sid:  # fields after the name: state, ppid, pgrp, session, ...
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


# --- throughput -----------------------------------------------------------------------------


def one_run(poll: float, batch: int, events: int, webhook_ms: float = 0.0) -> dict:
    """Runs in its own process (settings are read once per process)."""
    var_dir = Path(f"/tmp/cp-bench-embedded-{os.getuid()}")
    fresh(var_dir)
    env = embedded_env(
        var_dir,
        CONTROLPLANE_DEMO="0",
        CONTROLPLANE_BROKER_POLL_SECONDS=str(poll),
        LOG_LEVEL="WARNING",
        CONTROLPLANE_WEBHOOK_ALLOWED_HOSTS="127.0.0.1:*",
    )
    receiver = None
    handler = {"kind": "python", "target": "breakers.builtin_handlers.noop"}
    if webhook_ms:
        sys.path.insert(0, str(ROOT / "bench"))
        from webhooks import start_receiver

        receiver, url = start_receiver(webhook_ms / 1000)
        handler = {"kind": "webhook", "target": url}
    setup_django(env)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from breakers.routes import create_route
    from controlplane.broker import broker_depths
    from controlplane.services import create_service
    from replay.ingest import ingest_events
    from replay.models import Event

    actor = get_user_model().objects.create_user(username="bench")
    service = create_service(actor=actor, slug="bench", name="Bench", team="t", tier="tier-1")
    create_route(
        actor=actor,
        service=service,
        name="bench-route",
        event_type="*",
        **handler,
        timeout_seconds=2.0,
        max_attempts=3,
    )
    priorities = ["CRITICAL", "HIGH", "MEDIUM", "LOW"]

    def body(i: str, n: int) -> dict:
        return {
            "id": i,
            "service": "bench",
            "type": "bench.noop",
            "priority": priorities[n % 4],
            "occurred_at": "2026-12-01T00:00:00Z",
            "payload": {"n": n},
        }

    def delivered() -> int:
        return Event.objects.filter(status="delivered").count()

    worker = start("worker", env, var_dir / "worker.log")
    try:
        ingest_events([body("warm-up", 0)])
        deadline = time.monotonic() + 120
        while delivered() < 1:
            if time.monotonic() > deadline:
                raise SystemExit("worker never delivered the warm-up event: " + str(var_dir))
            time.sleep(0.1)
        idle_from = session_cpu_seconds(worker.pid)
        time.sleep(IDLE_SECONDS)
        idle_cpu = (session_cpu_seconds(worker.pid) - idle_from) / IDLE_SECONDS
        started = time.perf_counter()
        peak = 0
        for start_at in range(0, events, batch):
            ingest_events(
                [body(f"e{n}", n) for n in range(start_at, min(start_at + batch, events))]
            )
            peak = max(peak, sum(broker_depths().values()))
        ingest_s = time.perf_counter() - started
        deadline = time.monotonic() + 1800
        while delivered() < events + 1:
            if time.monotonic() > deadline:
                raise SystemExit(f"only {delivered()} of {events + 1} delivered after 30 min")
            peak = max(peak, sum(broker_depths().values()))
            time.sleep(0.05)
        total_s = time.perf_counter() - started
    finally:
        stop(worker)
        if receiver is not None:
            receiver.terminate()
    # Tasks enqueued: one per priority per DISPATCH_BATCH_SIZE events of each ingest call.
    from django.conf import settings

    size = settings.DISPATCH_BATCH_SIZE
    tasks = 0
    for start_at in range(0, events, batch):
        n = min(batch, events - start_at)
        for p in range(4):
            per_priority = len(range(p, n, 4))
            tasks += -(-per_priority // size)
    return {
        "handler": f"webhook at {webhook_ms:g} ms" if webhook_ms else "no-op",
        "poll": poll,
        "batch": batch,
        "events": events,
        "tasks": tasks,
        "ingest_eps": events / ingest_s,
        "e2e_eps": events / total_s,
        "tasks_per_s": tasks / total_s,
        "peak_depth": peak,
        "seconds": total_s,
        "idle_cpu": idle_cpu,
    }


def throughput(args: argparse.Namespace) -> None:
    polls = [float(p) for p in args.poll.split(",")]
    batches = [int(b) for b in args.batch.split(",")]
    rows = []
    for batch in batches:
        # Small batches mean many tasks: a tenth of the events keeps the 1 s rows to minutes.
        events = args.events if batch >= 100 else max(args.events // 10, batch)
        for poll in polls:
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "_run",
                    str(poll),
                    str(batch),
                    str(events),
                    str(args.webhook_ms),
                ],
                cwd=ROOT,
                capture_output=True,
                text=True,
            )
            if out.returncode:
                print(out.stdout[-2000:], out.stderr[-4000:], file=sys.stderr)
                raise SystemExit(f"run poll={poll} batch={batch} failed")
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(f"  done: poll {poll} s, batch {batch}", file=sys.stderr, flush=True)
    handler = f"a webhook answering in {args.webhook_ms:g} ms" if args.webhook_ms else "no-op"
    print(f"\nEmbedded default (SQLite + filesystem broker), {handler} handler, one worker as")
    print("`make run` starts it (prefork, 1 process); ingest through the ingest service.\n")
    head = (
        "| broker poll (s) | ingest batch | events | events/s end to end | dispatch tasks/s "
        "| ingest events/s | peak broker depth | idle worker CPU |"
    )
    print(head)
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['poll']:g}{' (kombu default)' if r['poll'] == 1.0 else ''} | {r['batch']} "
            f"| {r['events']} "
            f"| {r['e2e_eps']:,.0f} | {r['tasks_per_s']:,.1f} | {r['ingest_eps']:,.0f} "
            f"| {r['peak_depth']} | {r['idle_cpu']:.1%} |"
        )
    base = {r["batch"]: r for r in rows if r["poll"] == 1.0}
    for r in rows:
        if r["poll"] != 1.0 and r["batch"] in base:
            ratio = r["e2e_eps"] / base[r["batch"]]["e2e_eps"]
            print(f"\npoll {r['poll']:g} s vs kombu's 1 s, batch {r['batch']}: {ratio:.1f}x")


# --- transports -----------------------------------------------------------------------------


def transport_run(kind: str, poll: float, backlog: int, take: int, work_s: float) -> float | None:
    """Messages/s one consumer takes (the first `take`) from a backlog spread over our five
    queues, the way a Celery worker does on a virtual transport: prefetch 1, the message
    handed to a pool that acks it `work_s` later while the consuming loop polls again (and
    sleeps `poll` when the prefetch window is full or the queues are empty). None when the
    transport is not installed."""
    import tempfile
    import threading
    from queue import Empty

    from kombu import Connection, Consumer, Exchange, Producer
    from kombu import Queue as KQueue

    from controlplane.queues import Queue

    folder = Path(tempfile.mkdtemp(prefix="cp-bench-transport-"))
    try:
        if kind == "filesystem":
            (folder / "q").mkdir()
            (folder / "p").mkdir()
            opts = {
                "data_folder_in": str(folder / "q"),
                "data_folder_out": str(folder / "q"),
                "processed_folder": str(folder / "p"),
                "control_folder": str(folder / "control"),
            }
            url = "filesystem://"  # with our transport class, as settings.py configures it
        else:
            try:
                import sqlalchemy  # noqa: F401
            except ModuleNotFoundError:
                return None
            opts, url = {}, f"sqla+sqlite:///{folder / 'broker.sqlite3'}"
        transport = "controlplane.broker:FilesystemTransport" if kind == "filesystem" else None
        with Connection(url, transport=transport, transport_options=opts) as conn:
            # kombu's SQLAlchemy channel hands every transport option to create_engine, so the
            # interval can only be set on the transport object.
            conn.transport.polling_interval = poll
            # kombu keeps declared exchanges in a process-wide state, so a name reused with a
            # new control folder would not be bound there again: one name per run.
            exchange = Exchange(f"bench-{folder.name}", type="direct")
            queues = [KQueue(q.value, exchange, routing_key=q.value) for q in Queue]
            producer = Producer(conn.channel(), exchange)
            for n in range(backlog):
                q = queues[n % len(queues)]
                producer.publish({"n": n}, routing_key=q.routing_key, declare=[q])
            taken = [0]
            pending: list[threading.Timer] = []

            def on_message(body, message) -> None:
                taken[0] += 1
                timer = threading.Timer(work_s, message.ack)  # the pool finishing the task
                timer.start()
                pending.append(timer)

            channel = conn.channel()
            channel.basic_qos(0, 1, False)
            started = time.perf_counter()
            with Consumer(channel, queues, callbacks=[on_message], accept=["json"]):
                while taken[0] < take:
                    with contextlib.suppress(TimeoutError, Empty):
                        conn.drain_events(timeout=2.0)
            elapsed = time.perf_counter() - started
            for timer in pending:
                timer.join()
        return take / elapsed
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def transports(args: argparse.Namespace) -> None:
    configs = [(k, p) for k in ("filesystem", "sqlite") for p in (1.0, 0.05, 0.01)]
    backlogs = [int(b) for b in args.backlog.split(",")]
    print(f"\nOne consumer, prefetch 1, {args.work * 1000:g} ms of work a message, five queues.\n")
    print(
        "| transport | poll (s) | " + " | ".join(f"msgs/s at backlog {b}" for b in backlogs) + " |"
    )
    print("|---|---|" + "---|" * len(backlogs))
    for kind, poll in configs:
        # At a 1 s interval the rate is about one a second whatever the backlog: take 20.
        rates = [
            transport_run(kind, poll, b, min(b, 20 if poll >= 0.5 else 300), args.work)
            for b in backlogs
        ]
        cells = ["not installed" if r is None else f"{r:,.1f}" for r in rates]
        label = "filesystem" if kind == "filesystem" else "SQLAlchemy on SQLite"
        print(f"| {label} | {poll:g} | " + " | ".join(cells) + " |", flush=True)


# --- soak -----------------------------------------------------------------------------------

STAMP = r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) "
SENT = re.compile(STAMP + r".*Sending due task \S+ \(([\w.]+)\)")
RECEIVED = re.compile(STAMP + r".*Task ([\w.]+)\[[^\]]+\] received")
WATCHED = {
    "budgets.evaluate_alerts": 60.0,
    "budgets.expire_decisions": 60.0,
    "breakers.sweep": 10.0,
}


def _stamp(text: str) -> float:
    # Log times are UTC: settings.TIME_ZONE is UTC and Django sets the processes' TZ from it.
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%S,%f").replace(tzinfo=UTC).timestamp()


def beat_lateness(log: Path) -> dict[str, list[float]]:
    """Per watched task, seconds from beat sending it to the worker receiving it, in order
    (the n-th send pairs with the n-th receipt: one beat, one worker, FIFO per queue)."""
    sent: dict[str, list[float]] = {t: [] for t in WATCHED}
    received: dict[str, list[float]] = {t: [] for t in WATCHED}
    for line in log.read_text(errors="replace").splitlines():
        if m := SENT.match(line):
            if m.group(2) in sent:
                sent[m.group(2)].append(_stamp(m.group(1)))
        elif (m := RECEIVED.match(line)) and m.group(2) in received:
            received[m.group(2)].append(_stamp(m.group(1)))
    now = time.time()
    out = {}
    for task in WATCHED:
        late = [r - s for s, r in zip(sent[task], received[task], strict=False)]
        # Sent but not yet received: late by at least their age so far.
        late += [now - s for s in sent[task][len(received[task]) :]]
        out[task] = late
    return out


def soak(args: argparse.Namespace) -> None:
    var_dir = Path(args.var_dir)
    fresh(var_dir)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = embedded_env(var_dir, PORT=str(port), LOG_LEVEL="INFO")
    for cmd in (["migrate", "--noinput", "-v0"], ["seed_demo"]):
        subprocess.run(
            [sys.executable, "manage.py", *cmd], cwd=ROOT, env=env, check=True, capture_output=True
        )
    log = var_dir / "run.log"
    run = start("all", env, log)
    setup_django(env)
    from controlplane.broker import broker_depths
    from replay.models import Event

    samples = []
    began = time.monotonic()
    print(f"soak: `make run` on port {port}, var {var_dir}, log {log}", flush=True)
    print(
        "| t (s) | broker depth | celery | events.* | not final | events total "
        "| worst beat lateness (s) |"
    )
    print("|---|---|---|---|---|---|---|")
    try:
        while time.monotonic() - began < args.minutes * 60:
            time.sleep(args.interval)
            if run.poll() is not None:
                raise SystemExit(f"make run exited with {run.returncode}; see {log}")
            depths = broker_depths()
            late = beat_lateness(log)
            worst = {t: max(v[-3:], default=0.0) for t, v in late.items()}
            sample = {
                "t": round(time.monotonic() - began),
                "depth": sum(depths.values()),
                "default": depths["celery"],
                "events_q": sum(v for k, v in depths.items() if k != "celery"),
                "not_final": Event.objects.filter(status__in=NOT_FINAL).count(),
                "total": Event.objects.count(),
                "late": worst,
            }
            samples.append(sample)
            print(
                f"| {sample['t']} | {sample['depth']} | {sample['default']} | {sample['events_q']} "
                f"| {sample['not_final']} | {sample['total']} "
                f"| {max(worst.values()):.1f} ({max(worst, key=worst.get)}) |",
                flush=True,
            )
    finally:
        stop(run)
    late = beat_lateness(log)
    half = samples[len(samples) // 2 :]
    print("\nverdict:")
    print(
        f"  broker depth: max {max(s['depth'] for s in samples)}, second half max "
        f"{max(s['depth'] for s in half)}, last {samples[-1]['depth']}"
    )
    print(
        f"  events not final: max {max(s['not_final'] for s in samples)}, last "
        f"{samples[-1]['not_final']} of {samples[-1]['total']}"
    )
    for task, period in WATCHED.items():
        values = late[task] or [0.0]
        verdict = "ok" if max(values) <= 2 * period else "LATE"
        print(
            f"  {task}: {len(late[task])} runs, lateness max {max(values):.2f} s, "
            f"median {sorted(values)[len(values) // 2]:.2f} s (period {period:g} s): {verdict}"
        )


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "_run":
        poll, batch, events = float(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
        print(json.dumps(one_run(poll, batch, events, float(sys.argv[5]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="mode")
    soak_args = sub.add_parser("soak")
    soak_args.add_argument("--minutes", type=float, default=10)
    soak_args.add_argument("--interval", type=float, default=30)
    soak_args.add_argument("--var-dir", default=f"/tmp/cp-bench-embedded-soak-{os.getuid()}")
    transport_args = sub.add_parser("transports")
    transport_args.add_argument("--backlog", default="50,500,2000")
    transport_args.add_argument("--work", type=float, default=0.005)
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--batch", default="500,10")
    parser.add_argument("--poll", default="1.0,0.05,0.01")
    parser.add_argument("--webhook-ms", type=float, default=0.0)
    args = parser.parse_args()
    if args.mode == "soak":
        soak(args)
    elif args.mode == "transports":
        transports(args)
    else:
        throughput(args)


if __name__ == "__main__":
    main()
