"""SLO windows and ledger range planning.

Pure Python, standard library only, no Django. Datetimes must be timezone-aware UTC;
calendar months and quarters are UTC months and quarters.

A window is rolling (the last N days, N in 7, 28, 30, 90) or calendar (the current month
or quarter so far). Its text form is ``rolling:30d``, ``calendar:month`` or
``calendar:quarter``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

from budgets.maths import InvalidInput, require_utc

__all__ = [
    "ROLLING_DAYS",
    "CalendarPeriod",
    "Granularity",
    "LedgerRange",
    "Window",
    "WindowKind",
    "elapsed_share",
    "floor_to",
    "floor_to_minute",
    "format_duration",
    "format_window",
    "parse_duration",
    "parse_window",
    "period_bounds",
    "plan_ranges",
    "window_bounds",
    "window_length",
]

ROLLING_DAYS: tuple[int, ...] = (7, 28, 30, 90)
_EXPECTED = (
    "expected 'rolling:<N>d' (N one of 7, 28, 30, 90), 'calendar:month' or 'calendar:quarter'"
)


class WindowKind(StrEnum):
    ROLLING = "rolling"
    CALENDAR = "calendar"


class CalendarPeriod(StrEnum):
    MONTH = "month"
    QUARTER = "quarter"


@dataclass(frozen=True, slots=True)
class Window:
    """An SLO window: ``Window.rolling(30)``, ``Window.calendar("month")`` or parse_window()."""

    kind: WindowKind
    days: int | None = None  # rolling windows only
    period: CalendarPeriod | None = None  # calendar windows only

    def __post_init__(self) -> None:
        try:
            kind = WindowKind(self.kind)
        except ValueError:
            raise InvalidInput("kind", f"{self.kind!r} is not a window kind; {_EXPECTED}") from None
        object.__setattr__(self, "kind", kind)
        if kind is WindowKind.ROLLING:
            if type(self.days) is not int or self.days not in ROLLING_DAYS:
                raise InvalidInput(
                    "days", f"must be one of 7, 28, 30, 90 for a rolling window, got {self.days!r}"
                )
            if self.period is not None:
                raise InvalidInput("period", "must be None for a rolling window")
        else:
            try:
                period = CalendarPeriod(self.period)
            except ValueError:
                raise InvalidInput(
                    "period",
                    f"must be 'month' or 'quarter' for a calendar window, got {self.period!r}",
                ) from None
            object.__setattr__(self, "period", period)
            if self.days is not None:
                raise InvalidInput("days", "must be None for a calendar window")

    @classmethod
    def rolling(cls, days: int) -> Window:
        return cls(WindowKind.ROLLING, days=days)

    @classmethod
    def calendar(cls, period: CalendarPeriod | str) -> Window:
        return cls(WindowKind.CALENDAR, period=period)

    @property
    def is_calendar(self) -> bool:
        return self.kind is WindowKind.CALENDAR

    def __str__(self) -> str:
        return format_window(self)


def parse_window(text: str) -> Window:
    """Parse ``rolling:30d``, ``calendar:month`` or ``calendar:quarter`` (case-insensitive)."""
    if not isinstance(text, str):
        raise InvalidInput("window", f"must be a string, got {text!r}")
    kind, sep, rest = text.strip().lower().partition(":")
    if not sep:
        raise InvalidInput("window", f"{text!r} is not a window spec; {_EXPECTED}")
    if kind == WindowKind.ROLLING:
        number = rest[:-1]
        if not (rest.endswith("d") and number.isascii() and number.isdigit()):
            raise InvalidInput(
                "window", f"{text!r} has no day count like '30d' after 'rolling:'; {_EXPECTED}"
            )
        if int(number) not in ROLLING_DAYS:
            raise InvalidInput(
                "window", f"{text!r}: a rolling window must be 7, 28, 30 or 90 days long"
            )
        return Window.rolling(int(number))
    if kind == WindowKind.CALENDAR:
        if rest not in tuple(CalendarPeriod):
            raise InvalidInput(
                "window", f"{text!r}: a calendar window must be 'month' or 'quarter'; {_EXPECTED}"
            )
        return Window.calendar(rest)
    raise InvalidInput("window", f"{text!r} has unknown kind {kind!r}; {_EXPECTED}")


def format_window(window: Window) -> str:
    """The text form parse_window() reads back: ``rolling:30d``, ``calendar:month``."""
    if window.kind is WindowKind.ROLLING:
        return f"rolling:{window.days}d"
    return f"calendar:{window.period}"


def _as_window(spec: Window | str) -> Window:
    if isinstance(spec, Window):
        return spec
    return parse_window(spec)


def _add_months(month_start: datetime, months: int) -> datetime:
    years, month_index = divmod(month_start.month - 1 + months, 12)
    return month_start.replace(year=month_start.year + years, month=month_index + 1)


def period_bounds(spec: Window | str, now: datetime) -> tuple[datetime, datetime]:
    """The whole period holding ``now``: [start, end) of its UTC month or quarter.

    For a rolling window this is the same as window_bounds(): [now - N days, now).
    """
    window = _as_window(spec)
    require_utc(now, "now")
    if window.kind is WindowKind.ROLLING:
        return now - timedelta(days=window.days), now
    month_start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if window.period is CalendarPeriod.MONTH:
        return month_start, _add_months(month_start, 1)
    quarter_start = month_start.replace(month=(now.month - 1) // 3 * 3 + 1)
    return quarter_start, _add_months(quarter_start, 3)


def window_bounds(spec: Window | str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the window at ``now``.

    Rolling: [now - N days, now). Calendar: [start of the current UTC month/quarter, now).
    Pass ``floor_to_minute(now)`` when the bounds feed plan_ranges().
    """
    start, _ = period_bounds(spec, now)
    return start, now


def window_length(spec: Window | str, now: datetime) -> timedelta:
    """The window's full length, for burn rates and pacing.

    Rolling: N days. Calendar: the whole month or quarter holding ``now`` (28 to 31 days,
    90 to 92 days), not just the part gone by.
    """
    start, end = period_bounds(spec, now)
    return end - start


def elapsed_share(spec: Window | str, now: datetime) -> float:
    """Share of the window's length gone by at ``now``: what an even 1x burn has spent.

    0.0 at the first instant of a calendar period, 0.5 at its middle; always 1.0 for a
    rolling window, which is always full.
    """
    window = _as_window(spec)
    start, end = window_bounds(window, now)
    return (end - start) / window_length(window, now)


# --------------------------------------------------------------------------- ledger planning


class Granularity(StrEnum):
    """Ledger row sizes: minute buckets and their hourly and daily roll-ups (UTC-aligned)."""

    DAY = "day"
    HOUR = "hour"
    MINUTE = "minute"

    @property
    def step(self) -> timedelta:
        return _STEPS[self]


_STEPS = {
    Granularity.DAY: timedelta(days=1),
    Granularity.HOUR: timedelta(hours=1),
    Granularity.MINUTE: timedelta(minutes=1),
}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class LedgerRange(NamedTuple):
    """Read rows of ``granularity`` whose bucket start is in [start, end)."""

    granularity: Granularity
    start: datetime
    end: datetime

    @property
    def rows(self) -> int:
        return (self.end - self.start) // self.granularity.step


def floor_to(moment: datetime, step: timedelta) -> datetime:
    """``moment`` rounded down to a multiple of ``step`` since the Unix epoch (UTC)."""
    require_utc(moment, "moment")
    return moment - (moment - _EPOCH) % step


def floor_to_minute(moment: datetime) -> datetime:
    """``moment`` rounded down to the whole minute: the start of its ledger bucket."""
    return floor_to(moment, Granularity.MINUTE.step)


def _ceil_to(moment: datetime, step: timedelta) -> datetime:
    floor = floor_to(moment, step)
    return floor if floor == moment else floor + step


def _plan(start: datetime, end: datetime, levels: tuple[Granularity, ...]) -> list[LedgerRange]:
    if start >= end:
        return []
    granularity, finer = levels[0], levels[1:]
    if not finer:
        return [LedgerRange(granularity, start, end)]
    inner_start, inner_end = _ceil_to(start, granularity.step), floor_to(end, granularity.step)
    if inner_start >= inner_end:
        return _plan(start, end, finer)
    return [
        *_plan(start, inner_start, finer),
        LedgerRange(granularity, inner_start, inner_end),
        *_plan(inner_end, end, finer),
    ]


def plan_ranges(start: datetime, end: datetime) -> list[LedgerRange]:
    """Which ledger rows to read for [start, end), coarsest first, in time order.

    Whole UTC days inside the range come from daily rows, whole hours at the edges from
    hourly rows and the rest from minute rows, so at most days + 2*23 + 2*59 rows are read
    (a 90-day window: at most 90 + 46 + 118). The ranges tile [start, end) exactly, without
    overlap, and each is aligned to its granularity. A roll-up is only read for a day or
    hour wholly inside the range, so with ``end <= now`` the still-open day and hour are
    read from finer rows. Both ends must be whole minutes (see floor_to_minute()).
    """
    for field, moment in (("start", start), ("end", end)):
        require_utc(moment, field)
        if floor_to_minute(moment) != moment:
            raise InvalidInput(
                field, f"({moment.isoformat()}) must be a whole minute; use floor_to_minute()"
            )
    if end < start:
        raise InvalidInput("end", f"({end.isoformat()}) must not be before start")
    return _plan(start, end, (Granularity.DAY, Granularity.HOUR, Granularity.MINUTE))


# --------------------------------------------------------------------------- durations

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str, field: str = "duration") -> timedelta:
    """``90s``, ``5m``, ``1h``, ``30d`` or ``2w`` as a timedelta (a whole number and a unit)."""
    if not isinstance(text, str):
        raise InvalidInput(field, f"must be a string such as '5m' or '1h', got {text!r}")
    value = text.strip().lower()
    number, unit = value[:-1], value[-1:]
    if unit not in _UNITS or not (number.isascii() and number.isdigit()) or int(number) == 0:
        raise InvalidInput(
            field, f"{text!r} is not a duration; expected a whole number and s, m, h, d or w"
        )
    return timedelta(seconds=int(number) * _UNITS[unit])


def format_duration(duration: timedelta) -> str:
    """The shortest exact text parse_duration() reads back: 1h, 30m, 28d."""
    seconds = int(duration.total_seconds())
    for unit in ("d", "h", "m"):
        if seconds % _UNITS[unit] == 0:
            return f"{seconds // _UNITS[unit]}{unit}"
    return f"{seconds}s"
