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


# --------------------------------------------------------------------------- a shorter range

# The SLO page's time ranges: (length, bucket). Minute rows hold the short ranges (they are
# kept for BUDGETS_LEDGER_RETENTION_DAYS), hour rows the week.
RANGES: dict[str, tuple[timedelta, timedelta]] = {
    "1h": (timedelta(hours=1), timedelta(minutes=1)),
    "6h": (timedelta(hours=6), timedelta(minutes=5)),
    "24h": (timedelta(hours=24), timedelta(minutes=15)),
    "7d": (timedelta(days=7), timedelta(hours=1)),
}


def range_history(slo: SLO, figures: SloFigures, length: timedelta, step: timedelta) -> History:
    """Remaining budget and burn rate over the last ``length`` in ``step`` buckets.

    Remaining at each bucket's end is today's remaining plus what was spent after it, so the
    line ends where the window's figures stand now. A timeslices SLO's buckets are at least
    one slice long.
    """
    if slo.is_timeslices:
        step = max(step, slo.slice_length)
    end = figures.end
    start = floor_to(end - length, step)
    fine = step < timedelta(hours=1)
    if slo.is_timeslices and fine and slo.slice_length > timedelta(minutes=1):
        granularity = G.SLICE
    else:
        granularity = G.MINUTE if fine else G.HOUR
    rows = read_series(slo.pk, start, end, granularity)
    buckets: dict[datetime, list[int]] = {}
    for bucket, counts in rows:
        key = floor_to(bucket, step)
        acc = buckets.setdefault(key, [0, 0, 0])
        acc[0] += counts.bad
        acc[1] += counts.total
        acc[2] += counts.bad_slices
    budget_share = float(1 - slo.target)
    out = History(start=start, end=end, now=end, step=step)
    if slo.is_timeslices:
        allowed = (figures.total_slices or 0) * budget_share
        per_bucket = step / slo.slice_length
        spent = {k: v[2] for k, v in buckets.items()}
        out.burn = [(k, v[2] / per_bucket / budget_share) for k, v in sorted(buckets.items())]
    else:
        total = (
            figures.total / figures.elapsed
            if slo.window_spec.is_calendar and figures.elapsed
            else figures.total
        )
        allowed = total * budget_share
        spent = {k: v[0] for k, v in buckets.items()}
        out.burn = [
            (k, (v[0] / v[1] if v[1] else 0.0) / budget_share) for k, v in sorted(buckets.items())
        ]
    later = sum(spent.values())
    remaining = [(start, figures.remaining + (later / allowed if allowed else 0.0))]
    for key in sorted(spent):
        later -= spent[key]
        remaining.append(
            (min(key + step, end), figures.remaining + (later / allowed if allowed else 0.0))
        )
    out.remaining = remaining
    # the even burn's slope over this range, drawn from where the budget stood at its start
    slope = (end - start) / figures.window_length
    out.even = [(start, remaining[0][1]), (end, remaining[0][1] - slope)]
    out.thresholds = [
        (f"{rule.name} {rule.burn_rate:.3g}x", rule.burn_rate)
        for rule in alert_rules(figures.window_length)
    ]
    return out
