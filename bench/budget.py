"""Budget benchmark: gate-check latency against the ledger's depth, and ledger write throughput.

    python bench/budget.py [--checks 500] [--outcomes 200000]

In one run (about a minute and a half on Postgres):
* gate-check latency (p50/p99, the whole HTTP stack in-process: auth, serializer, impact
  walk, budget figures for every SLO of the service and the services it may impact, the
  decision and its audit row) for two sets of 100 SLOs in the same database: one with 1 day
  of minute buckets, one with 90 days (13 million minute rows plus hour and day roll-ups).
  Every SLO has a rolling 90-day window, the longest read. Checks alternate between the two
  sets so that other load on the machine falls on both alike. Goal: the 90-day p50 and p99
  within 1.5x of the 1-day ones;
* ledger write throughput: ``record_outcomes`` in batches of 500 (as the pipeline's worker
  calls it) against the naive anchor, one INSERT of one row per event.

Uses a scratch Postgres database ``cp_bench_budget`` (created and dropped; server from
BENCH_POSTGRES_URL, default postgres://postgres@127.0.0.1:5432) or, when Postgres is not
reachable, SQLite in a temporary directory.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from datetime import UTC, timedelta
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
DB = "cp_bench_budget"
SERVICES, SLOS_PER_SERVICE = 25, 4  # 100 SLOs
TMP = Path(tempfile.mkdtemp(prefix="cp-bench-budget-"))


def postgres_reachable() -> bool:
    parsed = urlparse(PG)
    try:
        with socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5432), 1):
            return True
    except OSError:
        return False


def configure() -> str:
    os.environ["CONTROLPLANE_VAR_DIR"] = str(TMP / "var")
    os.environ.pop("REDIS_URL", None)  # the gate needs no Redis; keep the run self-contained
    os.environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings"
    os.environ["DEBUG"] = "0"  # no query log: measure what production runs
    if postgres_reachable():
        import psycopg

        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
            conn.execute(f"CREATE DATABASE {DB}")
        os.environ["DATABASE_URL"] = f"{PG}/{DB}"
        return "postgresql"
    os.environ["DATABASE_URL"] = f"sqlite:///{TMP / 'bench.sqlite3'}"
    return "sqlite"


def drop_database(vendor: str) -> None:
    from django.db import connections

    connections.close_all()
    if vendor == "postgresql":
        import psycopg

        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


# --------------------------------------------------------------------------- setup


def make_user():
    from django.contrib.auth import get_user_model

    from controlplane.roles import Role, grant_role
    from controlplane.tokens import issue_token

    user = get_user_model().objects.create_user("ci", password="x")
    grant_role(user, Role.OPERATOR)
    return user, issue_token(user, name="ci").secret


def build_world(user, prefix: str):
    """25 services in a binary dependency tree, 4 SLOs each (rolling 90-day windows)."""
    from budgets import policy, slos
    from controlplane.services import create_service

    services = [
        create_service(
            actor=user,
            slug=f"{prefix}-{i:02d}",
            name=f"{prefix} {i}",
            team="t",
            tier="tier-1" if i % 5 == 0 else "tier-2",
        )
        for i in range(SERVICES)
    ]
    for i, service in enumerate(services):
        children = [services[c] for c in (2 * i + 1, 2 * i + 2) if c < SERVICES]
        if children:
            policy.set_dependencies(service, children, actor=user)
    slo_ids = []
    for service in services:
        for j in range(SLOS_PER_SERVICE):
            slo = slos.create_slo(
                actor=user,
                service=service,
                name=f"slo-{j}",
                sli="events",
                target="0.999",
                window="rolling:90d",
            )
            slo_ids.append(slo.pk)
    return services, slo_ids


def fill(vendor: str, slo_ids: list[int], start, end, *, bulk: bool) -> int:
    """Minute rows for every SLO over [start, end) (whole hours), with hour and day roll-ups.

    60 events a minute, one bad one every 97 minutes: the counts do not change the reads'
    cost, only the number of rows does. ``bulk`` drops the unique index and foreign key for
    the load and builds the index again afterwards, as one would for a backfill.
    """
    from django.db import connection

    from budgets.models import LedgerBucket

    table = LedgerBucket._meta.db_table
    minutes = int((end - start).total_seconds() // 60)
    low, high = min(slo_ids), max(slo_ids)
    adapt = connection.ops.adapt_datetimefield_value
    bulk = bulk and vendor == "postgresql"  # SQLite keeps its unique index inside the table
    with connection.cursor() as cursor:
        if bulk:
            cursor.execute("SET maintenance_work_mem = '512MB'")
            # a scratch table: skip the write-ahead log while loading (reads are unaffected)
            cursor.execute(f"ALTER TABLE {table} SET UNLOGGED")
            cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT uniq_ledger_bucket")
            cursor.execute(
                "SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
                [table],
            )
            for (name,) in cursor.fetchall():
                cursor.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
        if vendor == "postgresql":
            cursor.execute(
                f"INSERT INTO {table} (slo_id, label, granularity, bucket, good, total, "
                "bad_slices) SELECT s, '', 'm', %s + make_interval(mins => m), "
                "60 - (CASE WHEN m %% 97 = 0 THEN 1 ELSE 0 END), 60, 0 "
                "FROM generate_series(%s, %s) s, generate_series(0, %s) m",
                [start, low, high, minutes - 1],
            )
            hour, day = "date_trunc('hour', bucket)", "date_trunc('day', bucket)"
        else:
            cursor.execute(
                f"WITH RECURSIVE m(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM m WHERE i < %s),"
                f" s(i) AS (SELECT %s UNION ALL SELECT i + 1 FROM s WHERE i < %s) "
                f"INSERT INTO {table} (slo_id, label, granularity, bucket, good, total, "
                "bad_slices) SELECT s.i, '', 'm', "
                "strftime('%%Y-%%m-%%d %%H:%%M:%%S', %s, '+' || m.i || ' minutes'), "
                "60 - (CASE WHEN m.i %% 97 = 0 THEN 1 ELSE 0 END), 60, 0 FROM s, m",
                [minutes - 1, low, high, adapt(start)],
            )
            hour = "strftime('%%Y-%%m-%%d %%H:00:00', bucket)"
            day = "strftime('%%Y-%%m-%%d 00:00:00', bucket)"
        rollup = (
            f"INSERT INTO {table} (slo_id, label, granularity, bucket, good, total, "
            "bad_slices) SELECT slo_id, '', '{code}', {expr}, SUM(good), SUM(total), 0 "
            f"FROM {table} WHERE granularity = '{{source}}' AND slo_id BETWEEN {low} AND {high} "
            "AND bucket >= %s AND bucket < %s GROUP BY slo_id, {expr}"
        )
        # [start, end) is whole hours, so its hour rows are new; its first and last days
        # may already have rows, so day rows are upserted once the index is back.
        cursor.execute(rollup.format(code="h", expr=hour, source="m"), [adapt(start), adapt(end)])
        if bulk:
            cursor.execute(
                f"CREATE UNIQUE INDEX uniq_ledger_bucket ON {table} "
                "(slo_id, label, granularity, bucket)"
            )
            cursor.execute(
                f"ALTER TABLE {table} ADD CONSTRAINT uniq_ledger_bucket "
                "UNIQUE USING INDEX uniq_ledger_bucket"
            )
        cursor.execute(
            rollup.format(code="d", expr=day, source="h")
            + f" ON CONFLICT (slo_id, label, granularity, bucket) DO UPDATE SET "
            f"good = {table}.good + excluded.good, total = {table}.total + excluded.total",
            [adapt(start), adapt(end)],
        )
        cursor.execute(f"VACUUM ANALYZE {table}" if bulk else f"ANALYZE {table}")
    return minutes * len(slo_ids)


def gate_latency(token: str, worlds: dict[str, list], n: int) -> dict[str, list[float]]:
    """``n`` gate checks per world, alternating between worlds so that both see the same
    machine (other load on the host then shifts both alike)."""
    from django.test import Client

    client = Client(HTTP_AUTHORIZATION=f"Bearer {token}")
    timings: dict[str, list[float]] = {name: [] for name in worlds}
    for i in range(n + 10):
        for name, services in worlds.items():
            service = services[i % len(services)]
            body = {
                "service": service.slug,
                "change_id": f"{name}-{i}",
                "version": "1",
                "kind": "normal",
                "requested_by": "ci",
            }
            t0 = time.perf_counter()
            response = client.post("/api/v1/gates/check", body, content_type="application/json")
            elapsed = time.perf_counter() - t0
            if response.status_code not in (200, 423):
                raise SystemExit(f"gate check failed: {response.status_code} {response.content!r}")
            if i >= 10:  # the first ten rounds warm the caches
                timings[name].append(elapsed * 1000)
    return timings


def ledger_throughput(services, outcomes: int) -> tuple[float, float, int]:
    """(ours events/s, naive events/s, naive events measured)."""
    from django.db import connection
    from django.utils import timezone

    from budgets.ledger import record_outcomes

    now = timezone.now().astimezone(UTC)
    ids = [s.pk for s in services[:10]]
    batch = 500
    span = 600.0  # the events arrive in time order over ten minutes, as the worker sees them
    events = [
        (
            ids[i % len(ids)],
            now - timedelta(seconds=span * (outcomes - i) / outcomes),
            i % 50 != 0,
            float(i % 300),
        )
        for i in range(outcomes)
    ]
    t0 = time.perf_counter()
    for offset in range(0, len(events), batch):
        record_outcomes(events[offset : offset + batch])
    ours = outcomes / (time.perf_counter() - t0)

    naive_n = min(5000, outcomes)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bench_naive_outcome (id INTEGER PRIMARY KEY, service_id INTEGER, "
            "occurred_at TIMESTAMP, success BOOLEAN, latency_ms REAL)"
        )
        adapt = connection.ops.adapt_datetimefield_value
        t0 = time.perf_counter()
        for i, (service_id, at, ok, latency) in enumerate(events[:naive_n]):
            cursor.execute(  # autocommit: one write per event, as a row-per-event store does
                "INSERT INTO bench_naive_outcome VALUES (%s, %s, %s, %s, %s)",
                [i, service_id, adapt(at), ok, latency],
            )
        naive = naive_n / (time.perf_counter() - t0)
    return ours, naive, naive_n


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checks", type=int, default=500)
    parser.add_argument("--outcomes", type=int, default=200_000)
    args = parser.parse_args()
    started = time.perf_counter()
    vendor = configure()
    import django

    django.setup()
    from django.core.management import call_command
    from django.utils import timezone

    call_command("migrate", verbosity=0)
    try:
        user, token = make_user()
        short, short_ids = build_world(user, "day")
        deep, deep_ids = build_world(user, "quarter")
        now = timezone.now().astimezone(UTC)
        hour = now.replace(minute=0, second=0, microsecond=0)
        rows_1d = fill(vendor, short_ids, hour - timedelta(days=1), hour, bulk=False)
        t0 = time.perf_counter()
        rows_90d = fill(vendor, deep_ids, hour - timedelta(days=90), hour, bulk=True)
        fill_s = time.perf_counter() - t0
        timings = gate_latency(token, {"day": short, "quarter": deep}, args.checks)
        day1, day90 = timings["day"], timings["quarter"]
        ours, naive, naive_n = ledger_throughput(short, args.outcomes)
    finally:
        drop_database(vendor)

    p50_1, p99_1 = percentile(day1, 0.5), percentile(day1, 0.99)
    p50_90, p99_90 = percentile(day90, 0.5), percentile(day90, 0.99)
    print(
        f"\nBudget benchmark on {vendor}: two sets of {len(deep_ids)} SLOs (rolling 90-day "
        f"windows) in {SERVICES} services each, one with 1 day and one with 90 days of "
        f"history; {args.checks} gate checks per set, alternating\n"
    )
    print(f"{'gate check (HTTP, in-process)':34} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9}")
    print(
        f"{'1 day of minute buckets':34} {p50_1:9.2f} {p99_1:9.2f} {statistics.mean(day1):9.2f}"
        f"   ({rows_1d:,} minute rows)"
    )
    print(
        f"{'90 days of minute buckets':34} {p50_90:9.2f} {p99_90:9.2f} "
        f"{statistics.mean(day90):9.2f}   ({rows_90d:,} minute rows, filled in {fill_s:.0f} s)"
    )
    goal_ok = p50_90 <= 1.5 * p50_1 and p99_90 <= 1.5 * p99_1
    print(
        f"{'ratio 90 days / 1 day':34} {p50_90 / p50_1:8.2f}x {p99_90 / p99_1:8.2f}x"
        f"   goal <= 1.5x: {'met' if goal_ok else 'NOT met'}"
    )
    print(f"\n{'ledger writes':34} {'events/s':>12}")
    print(
        f"{'record_outcomes, batches of 500':34} {ours:12,.0f}   ({args.outcomes:,} events, "
        "4 SLOs per service)"
    )
    print(f"{'naive: one INSERT per event':34} {naive:12,.0f}   ({naive_n:,} events)")
    print(f"{'ratio ours / naive':34} {ours / naive:11.1f}x")
    print(f"\nfinished in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
