"""What budgets adds to the Overview and to a service's page (registered in apps.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.urls import reverse

from budgets.figures import SloFigures, recent_span, service_states, span_burn_rate
from budgets.ledger import read_counts
from budgets.maths.burn import alert_rules
from budgets.maths.windows import floor_to
from budgets.models import AlertEvent, GateDecision, LedgerBucket, ServiceDependency
from controlplane.charts import burn_sparkline
from controlplane.models import Service
from controlplane.overview import BAD, OK, WARN, Cell, Column, Section

HOUR = timedelta(hours=1)
SPARK_HOURS = 24
COLUMNS = [
    Column("slos", "SLOs (budget left)", "Remaining error budget of each SLO over its window."),
    Column("burn", "Burn 1 h", "Highest burn rate of the service's SLOs over the last hour."),
    Column("alerts", "Alerts", "Burn-rate alerts firing now."),
    Column("freeze", "Gate", "Frozen: changes need an approval or are denied."),
]


def _pct(share: float) -> str:
    return f"{share * 100:.1f} %"


def overview_cells(services: Sequence[Service], now: datetime) -> dict[int, dict[str, Cell]]:
    """SLO budgets, burn over the last hour, firing alerts and freeze state per service.

    A fixed number of queries: service_states' reads, one ledger read for every SLO's last
    hour, one for the firing alerts, one for the hour rows of the sparklines."""
    states = service_states(services, now)
    figures = [f for st in states.values() for f in st.slos]
    spans = {f.slo.pk: recent_span(f.slo, now, HOUR) for f in figures}
    counts = read_counts([(pk, *span) for pk, span in spans.items()]) if spans else {}
    firing: dict[int, list[AlertEvent]] = {}
    slo_ids = list(spans)
    alerts = (
        AlertEvent.objects.filter(slo_id__in=slo_ids, resolved_at__isnull=True) if slo_ids else []
    )
    for alert in alerts:
        firing.setdefault(alert.slo_id, []).append(alert)
    sparks = _hourly_burn(figures, now)
    out: dict[int, dict[str, Cell]] = {}
    for sid, state in states.items():
        threshold = float(state.policy.freeze_threshold)
        slo_cells, burns, alert_list = [], [], []
        for f in sorted(state.slos, key=lambda f: f.remaining):
            href = reverse("budgets:slo-detail", args=[f.slo.pk])
            start, end = spans[f.slo.pk]
            burn = span_burn_rate(f.slo, counts[(f.slo.pk, start, end)], end - start)
            page_rate = alert_rules(f.window_length)[0].burn_rate
            burns.append((burn, page_rate, href, f.slo.name))
            level = BAD if f.remaining <= 0 else WARN if f.consumed >= threshold else OK
            slo_cells.append(
                Cell(
                    f"{f.slo.name} {_pct(f.remaining)}",
                    href,
                    level,
                    f"{f.slo}: {_pct(f.consumed)} of the budget consumed; window burn "
                    f"{f.burn_rate:.2f}x",
                    score=f.consumed,
                    spark=burn_sparkline(
                        sparks.get(f.slo.pk, []),
                        title=f"Burn rate of {f.slo} per hour, last {SPARK_HOURS} h",
                    ),
                )
            )
            alert_list += [(a, href) for a in firing.get(f.slo.pk, [])]
        cells: dict[str, Cell] = {}
        if slo_cells:
            cells["slos"] = Cell(
                "",
                level=max(c.level for c in slo_cells),
                score=max(c.score for c in slo_cells),
                items=slo_cells,
            )
            burn, page_rate, href, name = max(burns)
            window_burn = max(f.burn_rate for f in state.slos)
            cells["burn"] = Cell(
                f"{burn:.1f}x · window {window_burn:.1f}x",
                href,
                BAD if burn >= page_rate else WARN if burn > 1 else OK,
                f"{name}: {burn:.2f}x over the last hour (pages at {page_rate:g}x)",
                score=burn,
            )
        else:
            cells["slos"] = Cell("no SLO", reverse("budgets:list"))
        pages = [a for a, _ in alert_list if a.severity == AlertEvent.Severity.PAGE]
        cells["alerts"] = Cell(
            f"{len(alert_list)} firing" if alert_list else "none",
            alert_list[0][1] if alert_list else reverse("budgets:list"),
            BAD if pages else WARN if alert_list else OK,
            "; ".join(f"{a.rule} ({a.severity})" for a, _ in alert_list),
            score=10 * len(pages) + len(alert_list),
        )
        cells["freeze"] = Cell(
            "frozen" if state.frozen else "open",
            reverse("budgets:changes"),
            WARN if state.frozen else OK,
            " ".join(r["message"] for r in state.reasons),
        )
        out[sid] = cells
    return out


def _hourly_burn(figures: list[SloFigures], now: datetime) -> dict[int, list[float]]:
    """Burn rate per hour over the last SPARK_HOURS for each SLO, from hour rows: one query."""
    if not figures:
        return {}
    first = floor_to(now, HOUR) - HOUR * (SPARK_HOURS - 1)
    hours = [first + HOUR * i for i in range(SPARK_HOURS)]
    counts: dict[tuple[int, datetime], tuple[int, int, int]] = {}
    rows = LedgerBucket.objects.filter(
        slo_id__in=[f.slo.pk for f in figures],
        label="",
        granularity=LedgerBucket.Granularity.HOUR,
        bucket__gte=first,
    ).values_list("slo_id", "bucket", "good", "total", "bad_slices")
    for slo_id, bucket, good, total, bad_slices in rows:
        counts[(slo_id, bucket)] = (good, total, bad_slices)
    out = {}
    for f in figures:
        share = float(1 - f.slo.target)
        values = []
        for hour in hours:
            good, total, bad_slices = counts.get((f.slo.pk, hour), (0, 0, 0))
            if f.slo.is_timeslices:
                values.append(bad_slices / (HOUR / f.slo.slice_length) / share)
            else:
                values.append((total - good) / total / share if total else 0.0)
        out[f.slo.pk] = values
    return out


def service_sections(service: Service, now: datetime, user: Any) -> list[Section]:
    """The service's SLOs, its gate state and recent decisions, and its dependencies."""
    state = service_states([service], now)[service.pk]
    decisions = GateDecision.objects.filter(service=service).order_by("-created_at")[:10]
    edges = ServiceDependency.objects.filter(service=service).select_related("depends_on")
    dependents = ServiceDependency.objects.filter(depends_on=service).select_related("service")
    return [
        Section(
            "SLOs",
            "budgets/partials/service_slos.html",
            {"figures": sorted(state.slos, key=lambda f: f.slo.name), "state": state},
            order=10,
        ),
        Section(
            "Gate",
            "budgets/partials/service_gate.html",
            {
                "state": state,
                "decisions": list(decisions),
                "depends_on": [e.depends_on for e in edges],
                "dependents": [e.service for e in dependents],
            },
            order=30,
        ),
    ]
