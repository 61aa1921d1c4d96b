"""Recent delivery figures per route, from the attempt log (what the board shows)."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db.models import Count, Q
from django.db.models.functions import TruncMinute
from django.utils import timezone

from replay.models import DeliveryAttempt

A = DeliveryAttempt.Outcome
CALLED = [A.DELIVERED, A.FAILED, A.TIMEOUT, A.PERMANENT]
FAILED = [A.FAILED, A.TIMEOUT]


def recent_stats(route_ids: list[int], minutes: int = 5) -> dict[int, dict[str, float]]:
    """Calls, failures, rejections and failure rate (percent) per route: one grouped query."""
    since = timezone.now() - timedelta(minutes=minutes)
    rows = (
        DeliveryAttempt.objects.filter(route_id__in=route_ids, started_at__gte=since)
        .values("route_id")
        .annotate(
            calls=Count("id", filter=Q(outcome__in=CALLED)),
            failures=Count("id", filter=Q(outcome__in=FAILED)),
            rejected=Count("id", filter=Q(outcome=A.BREAKER_OPEN)),
        )
    )
    out = {}
    for row in rows:
        calls = row["calls"]
        rate = 100.0 * row["failures"] / calls if calls else 0.0
        out[row["route_id"]] = {
            "calls": calls,
            "failures": row["failures"],
            "rejected": row["rejected"],
            "failure_rate": rate,
        }
    return out


def failure_series(
    route_ids: list[int], minutes: int = 60, now: datetime | None = None
) -> dict[int, list[tuple[datetime, int, int]]]:
    """Per route, one (minute, calls, failures) per minute of the last `minutes`, zeros
    included, oldest first: one grouped query for all routes."""
    now = (now or timezone.now()).replace(second=0, microsecond=0)
    start = now - timedelta(minutes=minutes - 1)
    rows = (
        DeliveryAttempt.objects.filter(route_id__in=route_ids, started_at__gte=start)
        .annotate(minute=TruncMinute("started_at"))
        .values("route_id", "minute")
        .annotate(
            calls=Count("id", filter=Q(outcome__in=CALLED)),
            failures=Count("id", filter=Q(outcome__in=FAILED)),
        )
    )
    found = {(r["route_id"], r["minute"]): (r["calls"], r["failures"]) for r in rows}
    minutes_list = [start + timedelta(minutes=i) for i in range(minutes)]
    return {rid: [(m, *found.get((rid, m), (0, 0))) for m in minutes_list] for rid in route_ids}
