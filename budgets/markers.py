"""Events marked on an SLO's charts: breaker transitions of the service's routes, gate
decisions, redrives and replays, within the chart's range.

budgets may not import breakers or replay (DESIGN.md layers): breaker transitions come
through ``budgets.reports.register_breaker_source`` (the one the reports use), and anything
else through ``register_marker_source``, which the replay app calls in its ready().
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from budgets import reports
from budgets.models import GateDecision
from controlplane.templatetags.cp_time import format_moment

MAX_MARKERS = 200  # per chart: a flapping breaker must not bury the line


@dataclass(frozen=True)
class Marker:
    at: datetime
    kind: str  # css class and legend: "breaker", "gate", "replay"
    label: str  # the tooltip


# (service_ids, start, end) -> [(service_id or None for every service, at, kind, label)]
MarkerSource = Callable[
    [Sequence[int], datetime, datetime], list[tuple[int | None, datetime, str, str]]
]
_marker_sources: list[MarkerSource] = []


def register_marker_source(source: MarkerSource) -> None:
    """Called by an app at start-up (idempotent)."""
    if source not in _marker_sources:
        _marker_sources.append(source)


def markers_for(service_id: int, start: datetime, end: datetime) -> list[Marker]:
    """Every marker of the service in [start, end), oldest first, at most MAX_MARKERS (the
    newest kept)."""
    out = [
        Marker(at, "breaker", f"breaker {name}: {frm.replace('_', ' ')} → {to.replace('_', ' ')}")
        for _, name, frm, to, at in reports._transitions([service_id], start, end)
    ]
    decisions = GateDecision.objects.filter(
        service_id=service_id, created_at__gte=start, created_at__lt=end
    ).values_list("created_at", "status", "change_id", "version", "kind")
    for at, status, change, version, kind in decisions[:MAX_MARKERS]:
        label = GateDecision.Status(status).label.lower()
        out.append(Marker(at, "gate", f"gate: {label} {kind} change {change} ({version})"))
    for source in _marker_sources:
        for sid, at, kind, label in source([service_id], start, end):
            if sid is None or sid == service_id:
                out.append(Marker(at, kind, label))
    out.sort(key=lambda m: m.at)
    return [Marker(m.at, m.kind, f"{format_moment(m.at)}: {m.label}") for m in out[-MAX_MARKERS:]]
