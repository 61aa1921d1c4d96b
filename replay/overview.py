"""What replay adds to the Overview and to a service's page (registered in apps.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Min, Q
from django.urls import reverse

from controlplane.models import Service
from controlplane.overview import BAD, OK, WARN, Cell, Column, Section
from replay.models import Event

RATE_SPAN = timedelta(minutes=5)
# A pending event older than this has missed its dispatch (the relay re-enqueues it).
STALE_PENDING = timedelta(minutes=2)
S = Event.Status
COLUMNS = [
    Column("dead", "Dead letters", "Dead letters waiting for a redrive."),
    Column("backlog", "Backlog", "Events pending, dispatched or deferred; age of the oldest."),
    Column("rate", "Events/s", "Events received per second over the last 5 minutes."),
]


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h"


def overview_cells(services: Sequence[Service], now: datetime) -> dict[int, dict[str, Cell]]:
    """Dead letters, backlog, oldest waiting event and intake rate: one grouped query."""
    waiting = [S.PENDING, S.DISPATCHED, S.DEFERRED]
    rows = (
        Event.objects.filter(service_id__in=[s.pk for s in services])
        .values("service_id")
        .annotate(
            dead=Count("id", filter=Q(status=S.DEAD)),
            backlog=Count("id", filter=Q(status__in=waiting)),
            oldest=Min("received_at", filter=Q(status__in=waiting)),
            recent=Count("id", filter=Q(received_at__gte=now - RATE_SPAN)),
        )
        .order_by()
    )
    found = {r["service_id"]: r for r in rows}
    events = reverse("replay:events")
    out = {}
    for service in services:
        r = found.get(service.pk, {"dead": 0, "backlog": 0, "oldest": None, "recent": 0})
        slug = service.slug
        age = now - r["oldest"] if r["oldest"] else None
        out[service.pk] = {
            "dead": Cell(
                str(r["dead"]),
                f"{reverse('replay:dead-letters')}?service={slug}",
                BAD if r["dead"] else OK,
                score=r["dead"],
            ),
            "backlog": Cell(
                f"{r['backlog']}" + (f" · oldest {_age(age)}" if age else ""),
                f"{events}?service={slug}&status=pending",
                WARN if age and age > STALE_PENDING else OK,
                score=age.total_seconds() / 60 if age else 0,
            ),
            "rate": Cell(
                f"{r['recent'] / RATE_SPAN.total_seconds():.2f}", f"{events}?service={slug}"
            ),
        }
    return out


def service_sections(service: Service, now: datetime, user: Any) -> list[Section]:
    recent = Event.objects.filter(service=service).select_related("route").order_by("-pk")[:10]
    dead = (
        Event.objects.filter(service=service, status=S.DEAD)
        .select_related("route")
        .order_by("-finished_at", "-pk")
    )
    return [
        Section(
            "Events",
            "replay/partials/service_events.html",
            {"recent": list(recent), "dead": list(dead[:10]), "dead_total": dead.count()},
            order=40,
        )
    ]
