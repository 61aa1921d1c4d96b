"""Error-budget mathematics: validation, the occurrences method, timeslices and pacing.

Pure Python, standard library only, no Django. Every function is pure; every result is a
small frozen dataclass. Datetimes must be timezone-aware UTC.

Sibling modules (same rules): ``windows`` (SLO windows, ledger range planning), ``burn``
(multiwindow, multi-burn-rate alerts), ``canary`` (canary verdicts) and ``episodes`` (report
episodes). Formulas and their justification: ``docs/budgets.md``.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from numbers import Integral, Real

__all__ = [
    "MAX_TARGET",
    "MIN_TARGET",
    "BudgetStatus",
    "InvalidInput",
    "Pacing",
    "TimesliceStatus",
    "aggregate_slices",
    "budget_pacing",
    "budget_status",
    "burn_rate",
    "error_budget",
    "require_utc",
    "slice_is_good",
    "time_to_exhaustion",
    "timeslice_status",
    "timeslice_tally_status",
    "validate_counts",
    "validate_target",
]

MIN_TARGET = Decimal("0.99")
MAX_TARGET = Decimal("0.999999")

Number = Real | Decimal


class InvalidInput(ValueError):
    """A bad argument. ``field`` names it, and so does the message (``"target must ..."``)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field} {problem}")
        self.field = field
        self.problem = problem

    # Keep pickling (e.g. through a task queue) working.
    def __reduce__(self) -> tuple[type[InvalidInput], tuple[str, str]]:
        return (type(self), (self.field, self.problem))


# --------------------------------------------------------------------------- validation


def _exact(value: object, field: str) -> Fraction:
    """The exact decimal value the caller wrote (0.999 -> 999/1000, not the binary float)."""
    if isinstance(value, bool) or not isinstance(value, Real | Decimal):
        raise InvalidInput(field, f"must be a number, got {value!r}")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise InvalidInput(field, f"must be a finite number, got {value!r}")
        return Fraction(value)
    as_float = float(value)
    if not math.isfinite(as_float):
        raise InvalidInput(field, f"must be a finite number, got {value!r}")
    if isinstance(value, Integral | Fraction):
        return Fraction(value)
    return Fraction(repr(as_float))  # shortest decimal that round-trips


_MIN_EXACT, _MAX_EXACT = Fraction(MIN_TARGET), Fraction(MAX_TARGET)


def _exact_target(target: Number, field: str = "target") -> Fraction:
    """The target's exact value, after checking 0.99 <= target <= 0.999999."""
    exact = _exact(target, field)
    if not _MIN_EXACT <= exact <= _MAX_EXACT:
        raise InvalidInput(
            field, f"must be between {MIN_TARGET} and {MAX_TARGET} inclusive, got {target}"
        )
    return exact


def validate_target(target: Number, field: str = "target") -> float:
    """Return ``target`` as a float after checking 0.99 <= target <= 0.999999."""
    return float(_exact_target(target, field))


def error_budget(target: Number) -> float:
    """The allowed error ratio, ``1 - target``, computed exactly (1 - 0.999 == 0.001)."""
    return float(1 - _exact_target(target))


def _validate_count(value: object, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise InvalidInput(field, f"must be a whole number of events, got {value!r}")
    if value < 0:
        raise InvalidInput(field, f"must not be negative, got {value}")
    return int(value)


def validate_counts(
    good: int, total: int, *, good_field: str = "good", total_field: str = "total"
) -> tuple[int, int]:
    """Check event counts: whole numbers, not negative, ``good <= total``."""
    good = _validate_count(good, good_field)
    total = _validate_count(total, total_field)
    if good > total:
        raise InvalidInput(good_field, f"({good}) must not exceed {total_field} ({total})")
    return good, total


def _validate_share(value: object, field: str, *, low: float, high: float) -> float:
    """A finite real in [low, high]."""
    if isinstance(value, bool) or not isinstance(value, Real | Decimal):
        raise InvalidInput(field, f"must be a number, got {value!r}")
    as_float = float(value)
    if not (math.isfinite(as_float) and low <= as_float <= high):
        raise InvalidInput(field, f"must be between {low:g} and {high:g}, got {value}")
    return as_float


def _validate_positive_duration(value: object, field: str) -> timedelta:
    if not isinstance(value, timedelta):
        raise InvalidInput(field, f"must be a timedelta, got {value!r}")
    if value <= timedelta(0):
        raise InvalidInput(field, f"must be positive, got {value}")
    return value


def require_utc(value: object, field: str) -> datetime:
    """Return ``value`` if it is an aware datetime at UTC offset zero, else raise."""
    if not isinstance(value, datetime):
        raise InvalidInput(field, f"must be a datetime, got {value!r}")
    offset = value.utcoffset()
    if offset is None:
        raise InvalidInput(field, f"must be timezone-aware (UTC), got naive {value.isoformat()}")
    if offset != timedelta(0):
        raise InvalidInput(field, f"must be in UTC, got offset {offset} in {value.isoformat()}")
    return value


# --------------------------------------------------------------------------- occurrences


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """Error budget over one window, occurrences method (one event = one good/bad outcome).

    ``consumed`` and ``burn_rate`` are equal for the window itself: spending the budget at
    exactly 1x for the whole window uses exactly all of it.
    """

    target: float
    good: int
    total: int
    bad: int
    sli: float  # good / total; 1.0 when there were no events
    error_ratio: float  # bad / total; 0.0 when there were no events
    error_budget: float  # 1 - target: the allowed error ratio
    allowed_bad: float  # total * (1 - target): bad events the budget allows
    consumed: float  # bad / allowed_bad; 0.0 when no events; above 1.0 when overspent
    remaining: float  # 1 - consumed; negative when overspent
    burn_rate: float  # error_ratio / (1 - target)

    @property
    def exhausted(self) -> bool:
        return self.consumed >= 1.0


def budget_status(good: int, total: int, target: Number) -> BudgetStatus:
    """Budget consumed / remaining for ``good`` of ``total`` events against ``target``."""
    exact_target = _exact_target(target)
    good, total = validate_counts(good, total)
    exact_budget = 1 - exact_target
    budget = float(exact_budget)
    bad = total - good
    if total == 0:
        error_ratio, consumed = 0.0, 0.0
    else:
        error_ratio = bad / total
        consumed = float(Fraction(bad, total) / exact_budget)
    return BudgetStatus(
        target=float(exact_target),
        good=good,
        total=total,
        bad=bad,
        sli=1.0 - error_ratio if total else 1.0,
        error_ratio=error_ratio,
        error_budget=budget,
        allowed_bad=total * budget,
        consumed=consumed,
        remaining=1.0 - consumed,
        burn_rate=consumed,
    )


def burn_rate(good: int, total: int, target: Number) -> float:
    """Error ratio over any window divided by ``1 - target``; 0.0 when ``total == 0``.

    1.0 spends the budget exactly over the SLO window; 14.4 spends a 30-day budget in 50 h.
    """
    return budget_status(good, total, target).burn_rate


def time_to_exhaustion(
    remaining: float, burn_rate: float, window_length: timedelta
) -> timedelta | None:
    """How long until the ``remaining`` budget share is gone at ``burn_rate``.

    A burn rate of 1 spends the whole budget in ``window_length``, so the time is
    ``remaining * window_length / burn_rate``. Returns ``timedelta(0)`` when nothing remains,
    and None when ``burn_rate <= 0`` (never) or the answer does not fit a timedelta.
    """
    remaining = _validate_share(remaining, "remaining", low=-math.inf, high=1.0)
    rate = _validate_share(burn_rate, "burn_rate", low=-math.inf, high=math.inf)
    _validate_positive_duration(window_length, "window_length")
    if rate <= 0:
        return None
    if remaining <= 0:
        return timedelta(0)
    seconds = remaining * window_length.total_seconds() / rate
    try:
        return timedelta(seconds=seconds)
    except OverflowError:
        return None


@dataclass(frozen=True, slots=True)
class Pacing:
    """Budget pacing within a calendar period (see ``windows.elapsed_share``).

    All shares are of the whole period's budget.
    """

    elapsed: float  # share of the period gone by
    expected_consumed: float  # what an even 1x burn would have spent by now (== elapsed)
    consumed: float  # what has actually been spent by now
    projected_at_end: float  # what will be spent by the period's end if this burn goes on

    @property
    def ahead_of_pace(self) -> float:
        """Positive when spending faster than an even burn would."""
        return self.consumed - self.expected_consumed

    @property
    def on_track(self) -> bool:
        return self.consumed <= self.expected_consumed


def budget_pacing(
    good: int,
    total: int,
    target: Number,
    *,
    elapsed: float,
    period_total: int | None = None,
) -> Pacing:
    """Compare what a calendar period has spent so far with an even burn.

    With the occurrences method the period's budget, ``period_total * (1 - target)``, is
    only known when the period ends. Pass ``period_total`` if it is forecast; otherwise it
    is projected from the traffic so far, ``total / elapsed``, which makes
    ``consumed == burn_rate * elapsed``.
    """
    elapsed = _validate_share(elapsed, "elapsed", low=0.0, high=1.0)
    status = budget_status(good, total, target)
    if period_total is not None:
        period_total = _validate_count(period_total, "period_total")
        if period_total < status.total:
            raise InvalidInput(
                "period_total", f"({period_total}) must not be below total ({status.total})"
            )
        consumed = status.bad / (period_total * status.error_budget) if period_total else 0.0
    else:
        consumed = status.burn_rate * elapsed
    return Pacing(
        elapsed=elapsed,
        expected_consumed=elapsed,
        consumed=consumed,
        projected_at_end=consumed / elapsed if elapsed > 0 else 0.0,
    )


# --------------------------------------------------------------------------- timeslices


def slice_is_good(good: int, total: int, slice_target: Number) -> bool:
    """A slice is good when ``good / total >= slice_target``; a slice with no events is good."""
    good, total = validate_counts(good, total)
    threshold = _exact(slice_target, "slice_target")
    if not 0 < threshold <= 1:
        raise InvalidInput("slice_target", f"must be above 0 and at most 1, got {slice_target}")
    return total == 0 or Fraction(good, total) >= threshold


@dataclass(frozen=True, slots=True)
class TimesliceStatus:
    """Error budget over one window, timeslices method (budget counted in bad slices)."""

    target: float
    slice_target: float
    slice_length: timedelta
    good_slices: int
    bad_slices: int
    total_slices: int
    sli: float  # good_slices / total_slices; 1.0 when there are no slices
    error_budget: float  # 1 - target
    allowed_bad_slices: float  # total_slices * (1 - target)
    consumed: float  # bad_slices / allowed_bad_slices; 0.0 when no slices
    remaining: float  # 1 - consumed
    burn_rate: float  # (bad_slices / total_slices) / (1 - target)

    @property
    def allowed_bad_time(self) -> timedelta:
        """The budget as time: 99.9 % of 30 days of 1-minute slices allows 43.2 minutes."""
        return self.slice_length * self.allowed_bad_slices

    @property
    def exhausted(self) -> bool:
        return self.consumed >= 1.0


def timeslice_status(
    slices: Iterable[tuple[int, int]],
    *,
    slice_length: timedelta,
    slice_target: Number,
    target: Number,
    window_length: timedelta | None = None,
) -> TimesliceStatus:
    """SLI and budget from per-slice ``(good, total)`` counts.

    Without ``window_length`` the window holds exactly the slices given. With it, the
    window holds ``window_length / slice_length`` slices and any slice not given had no
    events, so counts as good: pass the full period length of a calendar window to get its
    fixed budget (e.g. 43.2 bad minutes for 99.9 % of 30 days).
    """
    validate_target(target)
    _validate_positive_duration(slice_length, "slice_length")
    exact_slice_target = _validate_slice_target(slice_target)
    given = good_given = 0
    for index, pair in enumerate(slices):
        try:
            good, total = pair
        except (TypeError, ValueError):
            raise InvalidInput(
                f"slices[{index}]", f"must be a (good, total) pair, got {pair!r}"
            ) from None
        good, total = validate_counts(
            good, total, good_field=f"slices[{index}].good", total_field=f"slices[{index}].total"
        )
        given += 1
        good_given += total == 0 or Fraction(good, total) >= exact_slice_target
    total_slices = given
    if window_length is not None:
        total_slices = _slices_in(window_length, slice_length)
        if given > total_slices:
            raise InvalidInput(
                "slices", f"holds {given} slices but the window has only {total_slices}"
            )
    return timeslice_tally_status(
        given - good_given,
        total_slices,
        slice_length=slice_length,
        slice_target=slice_target,
        target=target,
    )


def _validate_slice_target(slice_target: Number) -> Fraction:
    exact = _exact(slice_target, "slice_target")
    if not 0 < exact <= 1:
        raise InvalidInput("slice_target", f"must be above 0 and at most 1, got {slice_target}")
    return exact


def _slices_in(window_length: timedelta, slice_length: timedelta) -> int:
    _validate_positive_duration(window_length, "window_length")
    if window_length % slice_length:
        raise InvalidInput("window_length", f"({window_length}) must be a multiple of slice_length")
    return window_length // slice_length


def timeslice_tally_status(
    bad_slices: int,
    total_slices: int,
    *,
    slice_length: timedelta,
    slice_target: Number,
    target: Number,
) -> TimesliceStatus:
    """The same as timeslice_status(), from a tally: ``bad_slices`` of ``total_slices``.

    For a ledger that keeps bad-slice counts rather than every slice; slices not counted as
    bad are good (including those without events).
    """
    exact_target = _exact_target(target)
    _validate_positive_duration(slice_length, "slice_length")
    exact_slice_target = _validate_slice_target(slice_target)
    total_slices = _validate_count(total_slices, "total_slices")
    bad_slices = _validate_count(bad_slices, "bad_slices")
    if bad_slices > total_slices:
        raise InvalidInput(
            "bad_slices", f"({bad_slices}) must not exceed total_slices ({total_slices})"
        )
    good_slices = total_slices - bad_slices
    exact_budget = 1 - exact_target
    consumed = float(Fraction(bad_slices, total_slices) / exact_budget) if total_slices else 0.0
    return TimesliceStatus(
        target=float(exact_target),
        slice_target=float(exact_slice_target),
        slice_length=slice_length,
        good_slices=good_slices,
        bad_slices=bad_slices,
        total_slices=total_slices,
        sli=good_slices / total_slices if total_slices else 1.0,
        error_budget=float(exact_budget),
        allowed_bad_slices=float(total_slices * exact_budget),
        consumed=consumed,
        remaining=1.0 - consumed,
        burn_rate=consumed,
    )


def aggregate_slices(
    buckets: Iterable[tuple[datetime, int, int]],
    *,
    start: datetime,
    end: datetime,
    slice_length: timedelta,
) -> list[tuple[int, int]]:
    """Sum ``(bucket_start, good, total)`` ledger rows into slices anchored at ``start``.

    Returns one ``(good, total)`` pair per slice of [start, end), the last one possibly
    shorter; slices with no rows are ``(0, 0)``. A row belongs to the slice holding its
    start, so rows must not be longer than a slice (use minute rows).
    """
    require_utc(start, "start")
    require_utc(end, "end")
    _validate_positive_duration(slice_length, "slice_length")
    if end < start:
        raise InvalidInput("end", f"({end.isoformat()}) must not be before start")
    count = -(-(end - start) // slice_length)
    sums = [[0, 0] for _ in range(count)]
    for bucket_start, good, total in buckets:
        require_utc(bucket_start, "buckets")
        if not start <= bucket_start < end:
            raise InvalidInput(
                "buckets", f"row at {bucket_start.isoformat()} lies outside [start, end)"
            )
        good, total = validate_counts(good, total)
        slot = sums[(bucket_start - start) // slice_length]
        slot[0] += good
        slot[1] += total
    return [(good, total) for good, total in sums]
