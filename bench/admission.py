"""What admission at ingest costs: ingest throughput with a token bucket against without one.

    DATABASE_URL=postgres://... REDIS_URL=redis://.../N python bench/admission.py [--rounds 5]

Two stacks in one run, each in its own process (settings are read once per process):
  - Postgres + Redis: a scratch database `<DATABASE_URL's name>_bench` (dropped and created),
    the Redis DB of REDIS_URL (the bench's dispatch tasks are purged from it at the end);
  - the embedded default: SQLite under a fresh /tmp directory, no Redis, filesystem broker.

On each, events go through `replay.ingest.ingest_events` (validation, admission, one
transaction, enqueue after commit: what the API does after parsing) in batches of 100 and of
1, for three services side by side, interleaved round by round (median of `--rounds`):
  off:       ingest_events(admission=False): no admission at all;
  no bucket: the anchor, a service without admission_rate (the load check still runs);
  bucket:    a service with a bucket that never sheds (1,000,000 events/s, burst 10,000,000).
The goal: the bucket costs at most 10 % at batch 100. Last, one admission decision alone
(`breakers.admission.admit` on 1 and 100 candidates of a bucketed service), in microseconds.
No worker runs; the lag thresholds are set out of reach so nothing is shed for load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FAR = "LOW=86400,MEDIUM=86400,HIGH=86400"  # the load check runs, and never sheds
MODES = ["off", "no bucket", "bucket"]


def _bench_db_url(url: str) -> str:
    parsed = urlparse(url)
    name = (parsed.path.lstrip("/") or "controlplane") + "_bench"
    return urlunparse(parsed._replace(path="/" + name))


def _recreate_pg(url: str) -> None:
    import psycopg

    parsed = urlparse(url)
    admin = urlunparse(parsed._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        name = parsed.path.lstrip("/")
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')


def child(stack: str, rounds: int) -> dict:
    """One stack, in this process: set up, measure, print JSON."""
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from django.contrib.auth import get_user_model

    from breakers import admission
    from controlplane.services import create_service
    from replay.ingest import Candidate, ingest_events

    actor = get_user_model().objects.create_user(username=f"bench-{uuid.uuid4().hex[:6]}")
    anchor = create_service(actor=actor, slug="anchor", name="Anchor", team="bench")
    bucketed = create_service(
        actor=actor,
        slug="bucketed",
        name="Bucketed",
        team="bench",
        admission_rate=1_000_000.0,
        admission_burst=10_000_000,
    )
    services = {"off": anchor, "no bucket": anchor, "bucket": bucketed}
    n = 0

    def batch_of(slug: str, size: int) -> list[dict]:
        nonlocal n
        items = []
        for _ in range(size):
            n += 1
            items.append(
                {
                    "id": f"b-{n}",
                    "service": slug,
                    "type": "order.created",
                    "occurred_at": "2026-12-01T12:00:00Z",
                    "payload": {"n": n, "sku": "A-1", "amount": 12.5},
                }
            )
        return items

    def run(mode: str, size: int, events: int) -> float:
        slug = services[mode].slug
        batches = [batch_of(slug, size) for _ in range(events // size)]
        started = time.perf_counter()
        for items in batches:
            results = ingest_events(items, admission=mode != "off")
            assert all(r.status == "accepted" for r in results), results[0]
        return events / (time.perf_counter() - started)

    out: dict = {"stack": stack, "throughput": {}, "decision_us": {}}
    for size, events in ((100, 3000), (1, 400)):
        run("bucket", size, events // 4)  # warm caches, connections, the Lua script
        per_mode: dict[str, list[float]] = {m: [] for m in MODES}
        for r in range(rounds):
            order = MODES[r % 3 :] + MODES[: r % 3]  # who goes first changes every round
            for mode in order:
                per_mode[mode].append(run(mode, size, events))
        out["throughput"][str(size)] = {m: statistics.median(v) for m, v in per_mode.items()}

    admission.reset()
    for size in (1, 100):
        candidates = [
            Candidate(i, bucketed.pk, "bucketed", "MEDIUM", 1_000_000.0, 10_000_000)
            for i in range(size)
        ]
        admission.admit(candidates)  # warm
        calls = 2000 if size == 1 else 500
        started = time.perf_counter()
        for _ in range(calls):
            assert not admission.admit(candidates)
        out["decision_us"][str(size)] = (time.perf_counter() - started) / calls * 1e6
    out["lag_reads"] = admission.load_signal().reads
    if stack == "postgres+redis":
        from controlplane.celery import app

        out["purged_tasks"] = app.control.purge()
    print(json.dumps(out))
    return out


def spawn(stack: str, env: dict[str, str], rounds: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", stack, "--rounds", str(rounds)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode:
        sys.exit(f"{stack} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.rounds)
        return

    base = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "controlplane.settings",
        "CONTROLPLANE_SHED_LAG_SECONDS": FAR,
        "CONTROLPLANE_DEMO": "0",
        "LOG_LEVEL": "WARNING",
    }
    runs = []
    if os.environ.get("DATABASE_URL", "").startswith("postgres") and os.environ.get("REDIS_URL"):
        url = _bench_db_url(os.environ["DATABASE_URL"])
        _recreate_pg(url)
        var = Path(f"/tmp/cp-bench-admission-pg-{os.getuid()}")
        shutil.rmtree(var, ignore_errors=True)
        var.mkdir(parents=True)
        env = {**base, "DATABASE_URL": url, "CONTROLPLANE_VAR_DIR": str(var)}
        runs.append(spawn("postgres+redis", env, args.rounds))
    else:
        print("DATABASE_URL (postgres) and REDIS_URL not both set: embedded only\n")
    var = Path(f"/tmp/cp-bench-admission-emb-{os.getuid()}")
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    env = {k: v for k, v in base.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env["CONTROLPLANE_VAR_DIR"] = str(var)
    runs.append(spawn("embedded", env, args.rounds))

    print(f"ingest_events, median of {args.rounds} interleaved rounds; events/s")
    print(f"{'stack':<16} {'batch':>5} {'off':>9} {'no bucket':>10} {'bucket':>9} {'ratio':>7}")
    for r in runs:
        for size, t in r["throughput"].items():
            ratio = t["bucket"] / t["no bucket"]
            print(
                f"{r['stack']:<16} {size:>5} {t['off']:>9,.0f} {t['no bucket']:>10,.0f} "
                f"{t['bucket']:>9,.0f} {ratio:>7.3f}"
            )
    print("\none admission decision (admit(), bucketed service, never sheds), µs per call")
    for r in runs:
        d = r["decision_us"]
        print(
            f"{r['stack']:<16} 1 event: {d['1']:7.1f}   100 events: {d['100']:7.1f} "
            f"({d['100'] / 100:.2f} per event)   lag reads: {r['lag_reads']}"
        )


if __name__ == "__main__":
    main()
