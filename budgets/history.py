"""Budget history for an SLO's charts: remaining budget and burn rate across the window.

Read from hour rows (windows up to 31 days) or day rows (longer), so a chart costs one
query of at most ~750 rows. The first bucket is the whole hour or day holding the window's
start, so a rolling window's chart may start up to one bucket early.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from budgets.figures import SloFigures
from budgets.ledger import read_series
from budgets.maths.burn import alert_rules
from budgets.maths.windows import floor_to
from budgets.models import SLO, LedgerBucket

G = LedgerBucket.Granularity


@dataclass
class History:
    start: datetime  # first bucket
    end: datetime  # the window's end (now) for rolling windows, the period's end for calendar
    now: datetime
    step: timedelta
    remaining: list[tuple[datetime, float]] = field(default_factory=list)
    even: list[tuple[datetime, float]] = field(default_factory=list)
    burn: list[tuple[datetime, float]] = field(default_factory=list)
    thresholds: list[tuple[str, float]] = field(default_factory=list)


def history(slo: SLO, figures: SloFigures) -> History:
    """Remaining budget after each bucket against an even burn, and each bucket's burn rate.

    The budget is the one the figures use: bad events allowed by the window's traffic (for
    a calendar window, the period's traffic projected from the traffic so far), or bad
    slices allowed in the window for timeslices.
    """
    step = timedelta(hours=1) if figures.window_length <= timedelta(days=31) else timedelta(days=1)
    granularity = G.HOUR if step == timedelta(hours=1) else G.DAY
    first = floor_to(figures.start, step)
    rows = read_series(slo.pk, first, figures.end, granularity)
    budget_share = float(1 - slo.target)
    calendar = slo.window_spec.is_calendar
    chart_end = figures.period_end if calendar else figures.end
    out = History(start=first, end=chart_end, now=figures.end, step=step)
    out.even = [(figures.start, 1.0), (figures.start + figures.window_length, 0.0)]
    if slo.is_timeslices:
        per_bucket = step // slo.slice_length
        allowed = figures.total_slices * budget_share if figures.total_slices else 0.0
        spent = 0
        for bucket, counts in rows:
            spent += counts.bad_slices
            out.remaining.append((bucket + step, 1.0 - spent / allowed if allowed else 1.0))
            out.burn.append((bucket, counts.bad_slices / per_bucket / budget_share))
    else:
        total = sum(c.total for _, c in rows)
        if calendar and figures.elapsed > 0:
            total = total / figures.elapsed
        allowed = total * budget_share
        spent = 0
        for bucket, counts in rows:
            spent += counts.bad
            out.remaining.append((bucket + step, 1.0 - spent / allowed if allowed else 1.0))
            ratio = counts.bad / counts.total if counts.total else 0.0
            out.burn.append((bucket, ratio / budget_share))
    if out.remaining:
        out.remaining.insert(0, (first, 1.0))
        # the open bucket ends now, not at its end
        last_time, last_value = out.remaining[-1]
        out.remaining[-1] = (min(last_time, figures.end), last_value)
    out.thresholds = [
        (f"{rule.name} {rule.burn_rate:.3g}x", rule.burn_rate)
        for rule in alert_rules(figures.window_length)
    ]
    return out
