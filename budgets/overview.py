"""What budgets adds to the Overview and to a service's page (registered in apps.py)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from django.urls import reverse

from budgets.burn import alert_rules
from budgets.ledger import read_counts
from budgets.models import AlertEvent, GateDecision, ServiceDependency
from budgets.status import recent_span, service_states, span_burn_rate
from controlplane.models import Service
from controlplane.overview import BAD, OK, WARN, Cell, Column, Section

HOUR = timedelta(hours=1)
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
    hour, one for the firing alerts."""
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
            cells["burn"] = Cell(
                f"{burn:.1f}x",
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
