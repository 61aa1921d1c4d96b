"""Snapshot export and verify, side by side with `COPY (SELECT ...) TO STDOUT | gzip`.

    python bench/snapshot.py [--sizes 100000,1000000] [--quick]

Needs Postgres (BENCH_PG, default postgres://postgres@127.0.0.1:5432) and psql and gzip on
PATH. Uses a scratch database `cp_snap_bench`, dropped and created first. Inserts the events
with one `INSERT ... SELECT generate_series` per size (each size in its own hour of
received_at), then for each size:

  export   create_snapshot() in a fresh child process: events/s, and the peak RSS the export
           added (VmHWM after minus before, so the interpreter and Django are not counted)
  verify   verify_snapshot() in the same child: events/s (hash of the file + signature)
  anchor   psql -c "COPY (SELECT the same columns of the same rows, same order) TO STDOUT"
           | gzip -6 > file: events/s, the floor a user could script

Then, in this process, replay against ingest on the same events (--replay, default 20,000):

  ingest   ingest_events() in batches of 500: validated, committed, dispatch enqueued
  replay   a live replay run of a snapshot of those events, unpaced: copies written with
           their checkpoints, dispatch enqueued (delivery itself is the same dispatch path)

Goals: peak memory the same at every size; export within 3x of the anchor; replay feeds
dispatch at least as fast as ingest does. --quick runs 10k and 100k.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DB = "cp_snap_bench"
PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
VAR = Path(tempfile.gettempdir()) / "cp-snap-bench"
ENV = {
    **{k: v for k, v in os.environ.items() if k != "REDIS_URL"},
    "DATABASE_URL": f"{PG}/{DB}",
    "CONTROLPLANE_VAR_DIR": str(VAR),
    "CONTROLPLANE_DEMO": "0",
    "LOG_LEVEL": "WARNING",
    "DJANGO_SETTINGS_MODULE": "controlplane.settings",
}
BASE = datetime(2026, 11, 1, tzinfo=UTC)
os.environ.pop("REDIS_URL", None)  # the filesystem broker: nothing here needs a shared Redis
os.environ.update(ENV)
sys.path.insert(0, str(ROOT))

CHILD = """
import json, sys, time
from datetime import datetime
import django
django.setup()
from replay import snapshots

def peak_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])

start, end = (datetime.fromisoformat(x) for x in sys.argv[1:3])
before = peak_kb()
t = time.perf_counter()
snap = snapshots.create_snapshot(actor="bench", start=start, end=end)
export_s = time.perf_counter() - t
export_peak = peak_kb() - before
t = time.perf_counter()
checked = snapshots.verify_snapshot(snap, actor="bench")
verify_s = time.perf_counter() - t
print(json.dumps({
    "count": snap.event_count, "bytes": snap.byte_size, "status": checked.status,
    "export_s": export_s, "verify_s": verify_s, "peak_kb": export_peak,
}))
"""

ANCHOR_SQL = """
COPY (
  SELECT e.id, e.event_id, s.slug, e.type, e.schema_version, e.priority, e.occurred_at,
         e.received_at, e.payload::text
  FROM replay_event e JOIN controlplane_service s ON s.id = e.service_id
  WHERE e.received_at >= '{start}' AND e.received_at < '{end}' AND NOT e.is_replay
  ORDER BY e.id
) TO STDOUT
"""


def reset_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    subprocess.run([sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=ENV, check=True)


def insert_events(sizes: list[int]) -> list[tuple[datetime, datetime]]:
    """One hour of received_at per size; payloads of ~200 bytes, like a typical order event."""
    import psycopg

    windows = []
    with psycopg.connect(f"{PG}/{DB}", autocommit=True) as conn:
        conn.execute(
            "INSERT INTO controlplane_service (slug, name, team, tier, description, created_at,"
            " updated_at) VALUES ('bench', 'Bench', 'perf', 'tier-2', '', now(), now())"
        )
        for n, size in enumerate(sizes):
            start = BASE + timedelta(hours=n)
            conn.execute(
                """
                INSERT INTO replay_event (service_id, event_id, type, schema_version, priority,
                    occurred_at, received_at, payload, batch_id, status, attempts,
                    next_attempt_at, last_error, dead_reason, claim_token, claimed_by, claims,
                    is_replay)
                SELECT (SELECT id FROM controlplane_service WHERE slug = 'bench'),
                    %(prefix)s || i, 'order.created', 1, 'MEDIUM',
                    %(start)s + i * interval '1 microsecond',
                    %(start)s + i * interval '1 microsecond',
                    jsonb_build_object('order', i, 'amount', (i::bigint * 7919) %% 100000,
                        'currency', 'EUR', 'customer', md5(i::text),
                        'lines', jsonb_build_array(jsonb_build_object('sku', md5((i+1)::text),
                        'qty', i %% 5 + 1))),
                    gen_random_uuid(), 'delivered', 1, now(), '', '', '', '', 1, false
                FROM generate_series(1, %(size)s) AS i
                """,
                {"prefix": f"w{n}-", "start": start, "size": size},
            )
            windows.append((start, start + timedelta(hours=1)))
        conn.execute("VACUUM ANALYZE replay_event")
    return windows


def export_in_child(start: datetime, end: datetime) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, start.isoformat(), end.isoformat()],
        cwd=ROOT,
        env=ENV,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def anchor(start: datetime, end: datetime) -> tuple[float, int]:
    sql = ANCHOR_SQL.format(start=start.isoformat(), end=end.isoformat())
    with tempfile.NamedTemporaryFile(dir=VAR, suffix=".tsv.gz") as out:
        t = time.perf_counter()
        psql = subprocess.Popen(["psql", f"{PG}/{DB}", "-q", "-c", sql], stdout=subprocess.PIPE)
        gz = subprocess.run(["gzip", "-6"], stdin=psql.stdout, stdout=out, check=True)
        psql.stdout.close()
        if psql.wait() != 0 or gz.returncode != 0:
            raise SystemExit("the COPY | gzip anchor failed")
        seconds = time.perf_counter() - t
        return seconds, os.path.getsize(out.name)


def replay_against_ingest(count: int) -> tuple[float, float]:
    """(ingest events/s, replay events/s) on the same events, in this process."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model

    from replay import replay_runs, snapshots
    from replay.ingest import ingest_events

    user = get_user_model().objects.create_superuser("bench", password="bench-password-1")
    events = [
        {
            "id": f"ri-{i}",
            "service": "bench",
            "type": "order.created",
            "occurred_at": "2026-11-28T12:00:00Z",
            "payload": {"order": i, "amount": i % 1000, "currency": "EUR"},
        }
        for i in range(count)
    ]
    began = datetime.now(UTC)
    t = time.perf_counter()
    for start in range(0, count, 500):
        ingest_events(events[start : start + 500])
    ingest_s = time.perf_counter() - t
    snap = snapshots.create_snapshot(
        actor=user, start=began, end=datetime.now(UTC) + timedelta(seconds=1)
    )
    assert snap.event_count == count, snap.event_count
    run = replay_runs.create_replay(actor=user, snapshot=snap, rate=1e6, mode="live")
    t = time.perf_counter()
    result = replay_runs.work(run.pk, seconds=3600, sleep=lambda s: None)
    replay_s = time.perf_counter() - t
    assert result == "done", result
    return count / ingest_s, count / replay_s


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="100000,1000000")
    parser.add_argument("--quick", action="store_true", help="10k and 100k events")
    parser.add_argument("--replay", type=int, default=20_000, help="events for replay vs ingest")
    args = parser.parse_args()
    sizes = [10_000, 100_000] if args.quick else [int(s) for s in args.sizes.split(",")]
    VAR.mkdir(parents=True, exist_ok=True)
    print(f"cores: {os.cpu_count()}; scratch database {DB}; inserting {sizes} events ...")
    reset_database()
    windows = insert_events(sizes)

    rows = []
    for size, (start, end) in zip(sizes, windows, strict=True):
        anchor(start, end)  # warm the cache once so both sides read the same hot pages
        child = export_in_child(start, end)
        assert child["count"] == size and child["status"] == "ready", child
        anchor_s, anchor_bytes = anchor(start, end)
        rows.append((size, child, anchor_s, anchor_bytes))

    head = (
        f"{'events':>10} {'export ev/s':>12} {'verify ev/s':>12} {'COPY|gzip ev/s':>15}"
        f" {'export/anchor':>14} {'peak MB':>8} {'file MB':>8} {'anchor MB':>10}"
    )
    print(head)
    for size, child, anchor_s, anchor_bytes in rows:
        print(
            f"{size:>10,} {size / child['export_s']:>12,.0f} {size / child['verify_s']:>12,.0f}"
            f" {size / anchor_s:>15,.0f} {child['export_s'] / anchor_s:>13.2f}x"
            f" {child['peak_kb'] / 1024:>8.1f} {child['bytes'] / 2**20:>8.1f}"
            f" {anchor_bytes / 2**20:>10.1f}"
        )
    ingest_rate, replay_rate = replay_against_ingest(args.replay)
    print(
        f"\n{args.replay:,} events: ingest {ingest_rate:,.0f} ev/s, replay (copies written and"
        f" dispatch enqueued) {replay_rate:,.0f} ev/s:"
        f" replay/ingest {replay_rate / ingest_rate:.2f}x"
    )
    worst = max(child["export_s"] / anchor_s for _, child, anchor_s, _ in rows)
    peaks = [child["peak_kb"] / 1024 for _, child, _, _ in rows]
    print(
        f"\nexport within 3x of COPY|gzip: {'met' if worst <= 3 else 'NOT met'} "
        f"(worst {worst:.2f}x); peak memory {min(peaks):.1f}-{max(peaks):.1f} MB across sizes"
    )


if __name__ == "__main__":
    main()
