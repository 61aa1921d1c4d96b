"""SLO windows and ledger range planning.

Pure Python, standard library only, no Django. Datetimes passed in and returned are
timezone-aware UTC.

A window is rolling (the last N days, 3 <= N <= 92) or calendar-aligned: the current
period so far, a period being N days, N weeks, N months (1 to 3) or a quarter, counted
from an anchor (a local date and time) in an IANA time zone. Text forms:

- ``rolling:30d``
- ``calendar:month``, ``calendar:quarter``, ``calendar:week``, ``calendar:2month``,
  ``calendar:10day`` - UTC, anchored at 2020-01-01 00:00 (weeks: Monday 2020-01-06 00:00)
- any of those followed by ``;start=2022-01-01T12:00`` (the local anchor) and/or
  ``;tz=America/New_York`` (the zone in which periods start: local midnight on the 1st
  of the month stays local midnight across daylight-saving changes).

Bounds: 3 days because the longest multiwindow alert rule looks back 3 days; 92 days (a
quarter) because the ledger keeps its minute, hour and slice rows for at least 94.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from budgets.maths import InvalidInput, require_utc

__all__ = [
    "MAX_WINDOW_DAYS",
    "MIN_WINDOW_DAYS",
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

MIN_WINDOW_DAYS = 3  # the longest alert rule's long window (burn.WORKBOOK_POLICY)
MAX_WINDOW_DAYS = 92  # a quarter; BUDGETS_LEDGER_RETENTION_DAYS is at least 94
_EXPECTED = (
    "expected 'rolling:<N>d' (3 <= N <= 92) or 'calendar:<period>' (month, quarter, week, "
    "2month, 10day ...) with optional ';start=YYYY-MM-DDTHH:MM' and ';tz=<IANA zone>'"
)


class WindowKind(StrEnum):
    ROLLING = "rolling"
    CALENDAR = "calendar"


class CalendarPeriod(StrEnum):
    DAY = "day"
    WEEK = "week"
    MONTH = "month"
    QUARTER = "quarter"


_MAX_COUNT = {
    CalendarPeriod.DAY: MAX_WINDOW_DAYS,
    CalendarPeriod.WEEK: MAX_WINDOW_DAYS // 7,
    CalendarPeriod.MONTH: 3,
    CalendarPeriod.QUARTER: 1,
}
_MIN_COUNT = {CalendarPeriod.DAY: MIN_WINDOW_DAYS}
_DEFAULT_START = {
    CalendarPeriod.DAY: datetime(2020, 1, 1),  # noqa: DTZ001 - a local wall-clock anchor
    CalendarPeriod.WEEK: datetime(2020, 1, 6),  # noqa: DTZ001 - a Monday
    CalendarPeriod.MONTH: datetime(2020, 1, 1),  # noqa: DTZ001
    CalendarPeriod.QUARTER: datetime(2020, 1, 1),  # noqa: DTZ001
}


def _canonical_start(period: CalendarPeriod, count: int, start: datetime) -> datetime | None:
    """The anchor moved by whole periods to the first period starting at or after the default.

    Anchors a whole number of periods apart give the same periods, so they get one text
    form: 2024-03-01 for months is 2020-01-01, the default, and so is stored as None;
    2023-05-01 12:00 is 2020-01-01 12:00.
    """
    default = _DEFAULT_START[period]
    if period in (CalendarPeriod.DAY, CalendarPeriod.WEEK):
        step = timedelta(days=count * (7 if period is CalendarPeriod.WEEK else 1))
        moved = start - (start - default) // step * step
        if moved < default:
            moved += step
    else:
        months = count * (3 if period is CalendarPeriod.QUARTER else 1)
        index = ((default.year - start.year) * 12 + default.month - start.month) // months
        moved = _add_months(start, index * months)
        if moved < default:
            moved = _add_months(start, (index + 1) * months)
    return None if moved == default else moved


def _zone(name: str) -> ZoneInfo:
    if not isinstance(name, str) or not name or len(name) > 64:
        raise InvalidInput("time_zone", f"must be an IANA time zone name, got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidInput("time_zone", f"{name!r} is not an IANA time zone name") from None


@dataclass(frozen=True, slots=True)
class Window:
    """An SLO window: ``Window.rolling(30)``, ``Window.calendar("month")`` or parse_window().

    Calendar windows: ``count`` periods of ``period`` from the local anchor ``start`` (naive,
    wall-clock time in ``time_zone``; None for the default anchor).
    """

    kind: WindowKind
    days: int | None = None  # rolling windows only
    period: CalendarPeriod | None = None  # calendar windows only
    count: int = 1
    time_zone: str = "UTC"
    start: datetime | None = None

    def __post_init__(self) -> None:
        try:
            kind = WindowKind(self.kind)
        except ValueError:
            raise InvalidInput("kind", f"{self.kind!r} is not a window kind; {_EXPECTED}") from None
        object.__setattr__(self, "kind", kind)
        if kind is WindowKind.ROLLING:
            if type(self.days) is not int or not MIN_WINDOW_DAYS <= self.days <= MAX_WINDOW_DAYS:
                raise InvalidInput(
                    "days",
                    f"must be a whole number of days from {MIN_WINDOW_DAYS} to "
                    f"{MAX_WINDOW_DAYS} for a rolling window, got {self.days!r}",
                )
            if self.period is not None or self.start is not None or self.time_zone != "UTC":
                raise InvalidInput("period", "must be None for a rolling window")
            return
        try:
            period = CalendarPeriod(self.period)
        except ValueError:
            raise InvalidInput(
                "period",
                f"must be day, week, month or quarter for a calendar window, got {self.period!r}",
            ) from None
        object.__setattr__(self, "period", period)
        if self.days is not None:
            raise InvalidInput("days", "must be None for a calendar window")
        low, high = _MIN_COUNT.get(period, 1), _MAX_COUNT[period]
        if type(self.count) is not int or not low <= self.count <= high:
            raise InvalidInput(
                "count",
                f"a calendar window of {period}s holds {low} to {high} of them, "
                f"got {self.count!r} (windows are {MIN_WINDOW_DAYS} to {MAX_WINDOW_DAYS} days)",
            )
        _zone(self.time_zone)
        if self.start is not None:
            start = self.start
            if not isinstance(start, datetime) or start.tzinfo is not None:
                raise InvalidInput("start", f"must be a naive local date and time, got {start!r}")
            if start.second or start.microsecond:
                raise InvalidInput("start", f"must be a whole minute, got {start.isoformat()}")
            if period in (CalendarPeriod.MONTH, CalendarPeriod.QUARTER) and start.day > 28:
                raise InvalidInput(
                    "start", "must be on day 1 to 28 of a month for monthly or quarterly periods"
                )
            object.__setattr__(self, "start", _canonical_start(period, self.count, start))

    @classmethod
    def rolling(cls, days: int) -> Window:
        return cls(WindowKind.ROLLING, days=days)

    @classmethod
    def calendar(
        cls,
        period: CalendarPeriod | str,
        *,
        count: int = 1,
        time_zone: str = "UTC",
        start: datetime | None = None,
    ) -> Window:
        return cls(
            WindowKind.CALENDAR, period=period, count=count, time_zone=time_zone, start=start
        )

    @property
    def is_calendar(self) -> bool:
        return self.kind is WindowKind.CALENDAR

    @property
    def anchor(self) -> datetime:
        """The local (naive) start of some period; calendar windows only."""
        assert self.period is not None
        return self.start or _DEFAULT_START[self.period]

    def __str__(self) -> str:
        return format_window(self)


def _parse_options(text: str, options: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for option in options:
        key, sep, value = option.partition("=")
        key = key.strip().lower()
        if not sep or key not in ("start", "tz") or key in out:
            raise InvalidInput("window", f"{text!r}: unknown option {option!r}; {_EXPECTED}")
        out[key] = value.strip()
    return out


def parse_window(text: str) -> Window:
    """Parse a window's text form (see the module docstring); kinds are case-insensitive."""
    if not isinstance(text, str):
        raise InvalidInput("window", f"must be a string, got {text!r}")
    head, *options = text.strip().split(";")
    kind, sep, rest = head.strip().lower().partition(":")
    if not sep:
        raise InvalidInput("window", f"{text!r} is not a window spec; {_EXPECTED}")
    if kind == WindowKind.ROLLING:
        number = rest[:-1]
        if options or not (rest.endswith("d") and number.isascii() and number.isdigit()):
            raise InvalidInput(
                "window", f"{text!r} has no day count like '30d' after 'rolling:'; {_EXPECTED}"
            )
        if not MIN_WINDOW_DAYS <= int(number) <= MAX_WINDOW_DAYS:
            raise InvalidInput(
                "window",
                f"{text!r}: a rolling window must be {MIN_WINDOW_DAYS} to {MAX_WINDOW_DAYS} "
                "days long",
            )
        return Window.rolling(int(number))
    if kind == WindowKind.CALENDAR:
        digits = len(rest) - len(rest.lstrip("0123456789"))
        count_text, period = rest[:digits], rest[digits:]
        if period not in tuple(CalendarPeriod) or (count_text and count_text.startswith("0")):
            raise InvalidInput(
                "window",
                f"{text!r}: a calendar period must be day, week, month or quarter; {_EXPECTED}",
            )
        values = _parse_options(text, options)
        start = None
        if "start" in values:
            try:
                start = datetime.fromisoformat(values["start"])
            except ValueError:
                raise InvalidInput(
                    "window", f"{text!r}: start {values['start']!r} is not a date and time"
                ) from None
        try:
            return Window.calendar(
                period,
                count=int(count_text or 1),
                time_zone=values.get("tz", "UTC"),
                start=start,
            )
        except InvalidInput as exc:
            raise InvalidInput("window", f"{text!r}: {exc.field} {exc.problem}") from None
    raise InvalidInput("window", f"{text!r} has unknown kind {kind!r}; {_EXPECTED}")


def format_window(window: Window) -> str:
    """The text form parse_window() reads back: ``rolling:30d``, ``calendar:month``."""
    if window.kind is WindowKind.ROLLING:
        return f"rolling:{window.days}d"
    count = "" if window.count == 1 else str(window.count)
    text = f"calendar:{count}{window.period}"
    if window.start is not None:
        text += f";start={window.start.isoformat(timespec='minutes')}"
    if window.time_zone != "UTC":
        text += f";tz={window.time_zone}"
    return text


def _as_window(spec: Window | str) -> Window:
    if isinstance(spec, Window):
        return spec
    return parse_window(spec)


def _add_months(moment: datetime, months: int) -> datetime:
    # callers keep the day at 28 or less, so every month has it
    years, month_index = divmod(moment.month - 1 + months, 12)
    return moment.replace(year=moment.year + years, month=month_index + 1)


def _to_utc(local: datetime, zone: ZoneInfo) -> datetime:
    return local.replace(tzinfo=zone).astimezone(UTC)


def _local_period(window: Window, index: int) -> datetime:
    """The local start of period ``index`` (0 is the one starting at the anchor)."""
    anchor = window.anchor
    if window.period is CalendarPeriod.DAY:
        return anchor + timedelta(days=index * window.count)
    if window.period is CalendarPeriod.WEEK:
        return anchor + timedelta(weeks=index * window.count)
    months = window.count * (3 if window.period is CalendarPeriod.QUARTER else 1)
    return _add_months(anchor, index * months)


def _period_index(window: Window, local_now: datetime) -> int:
    anchor = window.anchor
    if window.period in (CalendarPeriod.DAY, CalendarPeriod.WEEK):
        step = timedelta(days=window.count * (7 if window.period is CalendarPeriod.WEEK else 1))
        return (local_now - anchor) // step
    months = window.count * (3 if window.period is CalendarPeriod.QUARTER else 1)
    index = ((local_now.year - anchor.year) * 12 + local_now.month - anchor.month) // months
    return index - 1 if _local_period(window, index) > local_now else index


def period_bounds(spec: Window | str, now: datetime) -> tuple[datetime, datetime]:
    """The whole period holding ``now``: [start, end) in UTC.

    Periods start at the anchor's wall-clock time in the window's zone, so their length
    in UTC changes with daylight saving. For a rolling window this is the same as
    window_bounds(): [now - N days, now).
    """
    window = _as_window(spec)
    require_utc(now, "now")
    if window.kind is WindowKind.ROLLING:
        return now - timedelta(days=window.days), now
    zone = ZoneInfo(window.time_zone)
    index = _period_index(window, now.astimezone(zone).replace(tzinfo=None))
    # Wall-clock arithmetic can land one period off around a daylight-saving fold.
    while _to_utc(_local_period(window, index), zone) > now:
        index -= 1
    while _to_utc(_local_period(window, index + 1), zone) <= now:
        index += 1
    return (
        _to_utc(_local_period(window, index), zone),
        _to_utc(_local_period(window, index + 1), zone),
    )


def window_bounds(spec: Window | str, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the window at ``now``.

    Rolling: [now - N days, now). Calendar: [start of the current period, now).
    Pass ``floor_to_minute(now)`` when the bounds feed plan_ranges().
    """
    start, _ = period_bounds(spec, now)
    return start, now


def window_length(spec: Window | str, now: datetime) -> timedelta:
    """The window's full length, for burn rates and pacing.

    Rolling: N days. Calendar: the whole period holding ``now`` (a UTC month is 28 to 31
    days, a quarter 90 to 92), not just the part gone by.
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
