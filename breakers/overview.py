"""What breakers adds to the Overview and to a service's page (registered in apps.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.urls import reverse

from breakers import admission
from breakers.models import CircuitBreaker, Route
from breakers.views import status_of
from controlplane.charts import Series, line_chart, nice_ceiling
from controlplane.models import Service
from controlplane.overview import BAD, OK, WARN, Cell, Column, Section

COLUMNS = [Column("breakers", "Breakers", "Breakers not closed (open is red).")]
# open and half open are the workers' verdict on the downstream; forced and disabled are an
# operator's choice, shown but not counted as something wrong.
LEVELS = {"open": BAD, "half_open": WARN}


def overview_cells(services: Sequence[Service], now: datetime) -> dict[int, dict[str, Cell]]:
    """Breakers not closed per service, in one query."""
    ids = [s.pk for s in services]
    per_service: dict[int, list[Cell]] = {}
    totals: dict[int, int] = {}
    breakers = CircuitBreaker.objects.filter(route__service_id__in=ids).select_related("route")
    for breaker in breakers:
        sid = breaker.route.service_id
        totals[sid] = totals.get(sid, 0) + 1
        status = status_of(breaker)
        if status["state"] == "closed":
            continue
        per_service.setdefault(sid, []).append(
            Cell(
                f"{breaker.route.name} {status['label']}",
                reverse("breakers:detail", args=[breaker.route.name]),
                LEVELS.get(status["state"], OK),
                status["note"],
                score=100 if status["state"] == "open" else 1,
            )
        )
    out = {}
    for sid in ids:
        items = sorted(per_service.get(sid, []), key=lambda c: -c.level)
        if items:
            cell = Cell("", level=items[0].level, score=sum(c.score for c in items), items=items)
        else:
            n = totals.get(sid, 0)
            cell = Cell(f"{n} closed" if n else "no route", reverse("breakers:board"))
        out[sid] = {"breakers": cell}
    return out


def service_sections(service: Service, now: datetime, user: Any) -> list[Section]:
    routes = list(Route.objects.filter(service=service).select_related("breaker").order_by("name"))
    rows = []
    for route in routes:
        breaker = getattr(route, "breaker", None)
        rows.append({"route": route, "status": status_of(breaker) if breaker else None})
    return [
        Section("Routes and breakers", "breakers/partials/service_routes.html", {"rows": rows}, 20),
        Section(
            "Admission", "breakers/partials/service_admission.html", admission_context(service, now)
        ),
    ]


CHART_HOURS = 6


def admission_context(service: Service, now: datetime) -> dict[str, Any]:
    """The bucket's settings and a chart of events shed per minute (one query)."""
    data = admission.summary(service, now, CHART_HOURS)
    chart = None
    if data["per_minute"]:
        start, end = data["since"], now
        counts: dict[str, dict[datetime, int]] = {}
        for row in data["per_minute"]:
            counts.setdefault(row["reason"], {})[row["minute"]] = row["count"]
        minutes = []
        moment = start
        while moment <= end:
            minutes.append(moment)
            moment += timedelta(minutes=1)
        labels = {admission.RATE_LIMITED: "rate limited", admission.OVERLOADED: "overloaded"}
        css = {admission.RATE_LIMITED: "actual", admission.OVERLOADED: "burn"}
        series = [
            Series(
                labels.get(reason, reason),
                [(m, float(by_minute.get(m, 0))) for m in minutes],
                css.get(reason, "actual"),
                step=True,
            )
            for reason, by_minute in sorted(counts.items())
        ]
        top = max(row["count"] for row in data["per_minute"])
        chart = line_chart(
            series,
            x_start=start,
            x_end=end,
            y_min=0,
            y_max=nice_ceiling(float(top)),
            y_format="{:.0f}",
            title=f"Events shed per minute, last {CHART_HOURS} h",
            now=now,
        )
    return {"admission": data, "chart": chart, "hours": CHART_HOURS}
