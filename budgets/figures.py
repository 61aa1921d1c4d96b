"""Budget figures per SLO and freeze state per service, from the ledger and the policy.

Everything here is read in a fixed number of queries, whatever the number of SLOs: the
ledger for all SLOs and spans at once, then the policies, freeze windows and canaries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fractions import Fraction
from typing import Any

from budgets import conf
from budgets.ledger import Counts, read_counts
from budgets.maths.budget import (
    budget_pacing,
    budget_status,
    time_to_exhaustion,
    timeslice_tally_status,
)
from budgets.maths.windows import (
    elapsed_share,
    floor_to,
    floor_to_minute,
    period_bounds,
    window_bounds,
    window_length,
)
from budgets.models import SLO, BudgetPolicy, CanaryVerdict
from budgets.policy import active_freeze_windows, policies_for, policy_json
from controlplane.models import Service

MINUTE = timedelta(minutes=1)


def slo_end(slo: SLO, now: datetime) -> datetime:
    """The end of the SLO's readable data: the last whole minute, or whole slice."""
    if slo.is_timeslices:
        return floor_to(now, slo.slice_length)
    return floor_to_minute(now)


def recent_span(slo: SLO, now: datetime, length: timedelta) -> tuple[datetime, datetime]:
    """The last ``length`` before now, in whole slices for a timeslices SLO (at least one)."""
    end = slo_end(slo, now)
    if slo.is_timeslices:
        step = slo.slice_length
        length = max(step, -(-length // step) * step)
    return end - length, end


def window_span(slo: SLO, now: datetime) -> tuple[datetime, datetime]:
    return window_bounds(slo.window_spec, slo_end(slo, now))


def exact_target(slo: SLO) -> Fraction:
    """The SLO's target as an exact fraction (converted once per SLO object)."""
    cached = getattr(slo, "_exact_target", None)
    if cached is None or cached[0] != slo.target:
        cached = (slo.target, Fraction(slo.target))
        slo._exact_target = cached
    return cached[1]


def span_burn_rate(slo: SLO, counts: Counts, span: timedelta) -> float:
    """Burn rate over a span: error ratio / (1 - target), or bad-slice ratio for timeslices."""
    if slo.is_timeslices:
        slices = span // slo.slice_length
        bad = min(counts.bad_slices, slices)
        return timeslice_tally_status(
            bad,
            slices,
            slice_length=slo.slice_length,
            slice_target=slo.slice_target,
            target=exact_target(slo),
        ).burn_rate
    return budget_status(counts.good, counts.total, exact_target(slo)).burn_rate


@dataclass(frozen=True)
class SloFigures:
    """Where an SLO's budget stands at ``end`` (consumed may exceed 1; remaining may be < 0)."""

    slo: SLO
    start: datetime
    end: datetime
    period_end: datetime
    window_length: timedelta
    elapsed: float
    good: int
    total: int
    sli: float
    consumed: float
    remaining: float
    burn_rate: float  # over the window so far
    current_burn_rate: float  # over the last BUDGETS_CURRENT_BURN_MINUTES
    time_to_exhaustion: timedelta | None
    bad_slices: int | None = None
    total_slices: int | None = None

    @property
    def exhausts_before_reset(self) -> bool:
        """For a calendar window: runs out before the period ends (else: always True)."""
        if self.time_to_exhaustion is None:
            return False
        if not self.slo.window_spec.is_calendar:
            return True
        return self.end + self.time_to_exhaustion < self.period_end

    def as_json(self) -> dict[str, Any]:
        slo = self.slo
        tte = self.time_to_exhaustion
        return {
            "slo_id": slo.pk,
            "slo": slo.name,
            "service": slo.service.slug,
            "sli": slo.sli,
            "target": float(slo.target),
            "window": slo.window,
            "budgeting_method": slo.budgeting_method,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "good": self.good,
            "total": self.total,
            "bad_slices": self.bad_slices,
            "total_slices": self.total_slices,
            "sli_value": self.sli,
            "error_budget": float(1 - slo.target),
            "consumed": self.consumed,
            "remaining": self.remaining,
            "burn_rate": self.burn_rate,
            "current_burn_rate": self.current_burn_rate,
            "time_to_exhaustion_seconds": int(tte.total_seconds()) if tte is not None else None,
        }


def slo_figures(slos: Sequence[SLO], now: datetime) -> dict[int, SloFigures]:
    """Budget figures for each SLO at ``now``: one ledger query for all of them."""
    current = conf.current_burn_span()
    spans = {}
    for slo in slos:
        spans[slo.pk] = (window_span(slo, now), recent_span(slo, now, current))
    counts = read_counts([(pk, *span) for pk, pair in spans.items() for span in pair])
    out = {}
    for slo in slos:
        (start, end), (c_start, c_end) = spans[slo.pk]
        out[slo.pk] = _figures(
            slo,
            start,
            end,
            counts[(slo.pk, start, end)],
            counts[(slo.pk, c_start, c_end)],
            c_end - c_start,
        )
    return out


def _figures(
    slo: SLO, start: datetime, end: datetime, window: Counts, recent: Counts, recent_len: timedelta
) -> SloFigures:
    spec = slo.window_spec
    length = window_length(spec, end)
    _, period_end = period_bounds(spec, end)
    elapsed = elapsed_share(spec, end)
    current = span_burn_rate(slo, recent, recent_len)
    if slo.is_timeslices:
        step = slo.slice_length
        total_slices = length // step
        elapsed_slices = (end - start) // step
        bad = min(window.bad_slices, elapsed_slices)
        status = timeslice_tally_status(
            bad,
            total_slices,
            slice_length=step,
            slice_target=slo.slice_target,
            target=exact_target(slo),
        )
        consumed = status.consumed
        burn = span_burn_rate(slo, window, end - start) if elapsed_slices else 0.0
        sli = (elapsed_slices - bad) / elapsed_slices if elapsed_slices else 1.0
        extra = {"bad_slices": bad, "total_slices": total_slices}
    else:
        status = budget_status(window.good, window.total, exact_target(slo))
        burn = status.burn_rate
        if spec.is_calendar:
            consumed = budget_pacing(
                window.good, window.total, exact_target(slo), elapsed=elapsed
            ).consumed
        else:
            consumed = status.consumed
        sli = status.sli
        extra = {}
    remaining = 1.0 - consumed
    return SloFigures(
        slo=slo,
        start=start,
        end=end,
        period_end=period_end,
        window_length=length,
        elapsed=elapsed,
        good=window.good,
        total=window.total,
        sli=sli,
        consumed=consumed,
        remaining=remaining,
        burn_rate=burn,
        current_burn_rate=current,
        time_to_exhaustion=time_to_exhaustion(remaining, current, length),
        **extra,
    )


# --------------------------------------------------------------------------- service state


@dataclass
class ServiceState:
    """A service's budget state: its SLO figures, its policy and why it is frozen, if it is."""

    service: Service
    policy: BudgetPolicy
    slos: list[SloFigures] = field(default_factory=list)
    reasons: list[dict[str, Any]] = field(default_factory=list)

    @property
    def frozen(self) -> bool:
        return bool(self.reasons)

    @property
    def critical(self) -> bool:
        return self.service.tier == Service.Tier.TIER_1

    @property
    def max_consumed(self) -> float | None:
        return max((f.consumed for f in self.slos), default=None)

    def as_json(self) -> dict[str, Any]:
        return {
            "service": self.service.slug,
            "tier": self.service.tier,
            "critical": self.critical,
            "frozen": self.frozen,
            "freeze_reasons": self.reasons,
            "max_consumed": self.max_consumed,
            "policy": policy_json(self.policy),
            "slos": [f.as_json() for f in self.slos],
        }


def _pct(share: float) -> str:
    return f"{share * 100:.1f} %"


def service_states(services: Iterable[Service], now: datetime) -> dict[int, ServiceState]:
    """Budget state and freeze reasons per service, in a fixed number of queries.

    Frozen when an SLO has consumed at least the policy's freeze threshold, during a freeze
    window for the service or for all services, or while a canary ``rollback`` verdict of
    the service is unresolved.
    """
    services = list(services)
    ids = [s.pk for s in services]
    policies = policies_for(ids)
    slos = list(SLO.objects.filter(service_id__in=ids).select_related("service"))
    figures = slo_figures(slos, now)
    states = {s.pk: ServiceState(service=s, policy=policies[s.pk]) for s in services}
    for slo in slos:
        states[slo.service_id].slos.append(figures[slo.pk])
    for state in states.values():
        threshold = float(state.policy.freeze_threshold)
        for f in state.slos:
            if f.consumed >= threshold:
                state.reasons.append(
                    {
                        "code": "budget",
                        "slo": f.slo.name,
                        "consumed": f.consumed,
                        "threshold": threshold,
                        "message": f"SLO {f.slo} has consumed {_pct(f.consumed)} of its error "
                        f"budget; changes freeze at {_pct(threshold)}.",
                    }
                )
    for window in active_freeze_windows(ids, now):
        targets = [states[window.service_id]] if window.service_id else states.values()
        for state in targets:
            state.reasons.append(
                {
                    "code": "freeze_window",
                    "freeze_window": window.pk,
                    "until": window.ends_at.isoformat(),
                    "message": f"Freeze window “{window.name}” is in force until "
                    f"{window.ends_at:%Y-%m-%d %H:%M} UTC.",
                }
            )
    rollbacks = CanaryVerdict.objects.filter(
        service_id__in=ids, decision=CanaryVerdict.Decision.ROLLBACK, resolved_at__isnull=True
    ).order_by("created_at")
    for verdict in rollbacks:
        states[verdict.service_id].reasons.append(
            {
                "code": "canary_rollback",
                "canary": verdict.pk,
                "change_id": verdict.change_id,
                "message": f"The canary of change {verdict.change_id} was judged “rollback” "
                "and that is not resolved yet.",
            }
        )
    return states
