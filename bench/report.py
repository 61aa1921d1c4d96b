"""Budget report benchmark: build time and query count of a month's report against the
number of SLOs.

    python bench/report.py [--services 25] [--repeats 5]

Seeds a scratch database (Postgres ``cp_bench_report`` on BENCH_POSTGRES_URL, default
postgres://postgres@127.0.0.1:5432, created and dropped; SQLite in a temporary directory when
Postgres is not reachable) with SERVICES x 4 SLOs (two occurrences, two 5-minute timeslices),
a full month of hour rows and their day roll-ups (every 40th hour burning at 5x), a breaker
episode per service, and measures ``build_report`` for the month (best of --repeats) with
1 service and with all of them. Anchor: the query count must be the same for both, and the
build time per SLO should not grow with the number of SLOs (it is linear in hour rows read).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PG = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
DB = "cp_bench_report"
TMP = Path(tempfile.mkdtemp(prefix="cp-bench-report-"))
MONTH = datetime(2025, 3, 1, tzinfo=UTC)
NOW = datetime(2025, 4, 2, tzinfo=UTC)


def configure() -> str:
    os.environ["CONTROLPLANE_VAR_DIR"] = str(TMP / "var")
    os.environ.pop("REDIS_URL", None)
    os.environ["DJANGO_SETTINGS_MODULE"] = "controlplane.settings"
    os.environ["DEBUG"] = "0"
    parsed = urlparse(PG)
    try:
        socket.create_connection((parsed.hostname or "127.0.0.1", parsed.port or 5432), 1).close()
    except OSError:
        os.environ["DATABASE_URL"] = f"sqlite:///{TMP / 'bench.sqlite3'}"
        return "sqlite"
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DB}")
    os.environ["DATABASE_URL"] = f"{PG}/{DB}"
    return "postgresql"


def seed(services: int) -> list:
    from breakers.models import BreakerTransition, CircuitBreaker, Route
    from budgets.models import SLO, LedgerBucket
    from controlplane.models import Service

    G = LedgerBucket.Granularity
    made = []
    for i in range(services):
        service = Service.objects.create(slug=f"svc{i:03d}", name=f"S{i}", team=f"team{i % 5}")
        made.append(service)
        slos = [
            SLO.objects.create(
                service=service, name=f"occ{j}", sli="events", target="0.999", window="rolling:30d"
            )
            for j in range(2)
        ] + [
            SLO.objects.create(
                service=service,
                name=f"ts{j}",
                sli="events",
                target="0.99",
                window="rolling:30d",
                budgeting_method="timeslices",
                slice_minutes=5,
                slice_target="0.9",
            )
            for j in range(2)
        ]
        rows = []
        for slo in slos:
            day_sums: dict = {}
            for h in range(31 * 24):
                at = MONTH + timedelta(hours=h)
                burning = (h + i) % 40 == 0
                total = 6000
                bad = 30 if burning else 2
                bad_slices = 1 if burning else 0
                rows.append(
                    LedgerBucket(
                        slo=slo,
                        granularity=G.HOUR,
                        bucket=at,
                        good=total - bad,
                        total=total,
                        bad_slices=bad_slices,
                    )
                )
                day = at.replace(hour=0)
                g, t, b = day_sums.get(day, (0, 0, 0))
                day_sums[day] = (g + total - bad, t + total, b + bad_slices)
            rows += [
                LedgerBucket(slo=slo, granularity=G.DAY, bucket=d, good=g, total=t, bad_slices=b)
                for d, (g, t, b) in day_sums.items()
            ]
        LedgerBucket.objects.bulk_create(rows, batch_size=5000)
        route = Route.objects.create(
            service=service,
            name=f"r{i}",
            event_type="*",
            kind="webhook",
            target="http://127.0.0.1:9/",
        )
        breaker = CircuitBreaker.objects.create(route=route)
        opened = MONTH + timedelta(hours=40 - i % 40, minutes=5)
        for frm, to, at in (
            ("closed", "open", opened),
            ("open", "closed", opened + timedelta(minutes=7)),
        ):
            BreakerTransition.objects.create(
                breaker=breaker,
                name=route.name,
                from_state=frm,
                to_state=to,
                reason="bench",
                node="n",
                at=at,
            )
    return made


def measure(services, repeats: int) -> tuple[float, int]:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from budgets.reports import build_report, month_period

    period = month_period("2025-03")
    best = float("inf")
    queries = 0
    for _ in range(repeats):
        with CaptureQueriesContext(connection) as captured:
            t0 = time.perf_counter()
            report = build_report(period, NOW, services=services)
            best = min(best, time.perf_counter() - t0)
        queries = len(captured)
    assert report.services
    return best, queries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--services", type=int, default=25)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    vendor = configure()
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    try:
        made = seed(args.services)
        one_t, one_q = measure(made[:1], args.repeats)
        all_t, all_q = measure(made, args.repeats)
        n = args.services * 4
        print(f"database: {vendor}; month of hour rows; every 40th hour burning")
        print(f"{'SLOs':>6} {'build (ms)':>11} {'per SLO (ms)':>13} {'queries':>8}")
        print(f"{4:>6} {one_t * 1000:>11.1f} {one_t * 1000 / 4:>13.2f} {one_q:>8}")
        print(f"{n:>6} {all_t * 1000:>11.1f} {all_t * 1000 / n:>13.2f} {all_q:>8}")
        print(f"anchor: same query count for 4 and {n} SLOs: {'yes' if one_q == all_q else 'NO'}")
    finally:
        if vendor == "postgresql":
            from django.db import connections

            connections.close_all()
            import psycopg

            with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
                conn.execute(f"DROP DATABASE IF EXISTS {DB} WITH (FORCE)")


if __name__ == "__main__":
    main()
