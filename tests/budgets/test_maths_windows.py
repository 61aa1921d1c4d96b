"""SLO windows: parsing, rolling bounds, calendar month and quarter edges."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from budgets.maths import InvalidInput
from budgets.windows import (
    CalendarPeriod,
    Window,
    WindowKind,
    elapsed_share,
    format_window,
    parse_window,
    period_bounds,
    window_bounds,
    window_length,
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# --------------------------------------------------------------------------- parse / format


@pytest.mark.parametrize(
    ("text", "window"),
    [
        ("rolling:7d", Window.rolling(7)),
        ("rolling:28d", Window.rolling(28)),
        ("rolling:30d", Window.rolling(30)),
        ("rolling:90d", Window.rolling(90)),
        ("calendar:month", Window.calendar("month")),
        ("calendar:quarter", Window.calendar(CalendarPeriod.QUARTER)),
    ],
)
def test_it_parses_and_formats_each_supported_window(text: str, window: Window) -> None:
    assert parse_window(text) == window
    assert format_window(window) == text
    assert str(window) == text


def test_it_tolerates_case_and_surrounding_space() -> None:
    assert parse_window("  Rolling:30D ") == Window.rolling(30)


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("rolling:2d", "3 to 92 days"),
        ("rolling:93d", "3 to 92 days"),
        ("rolling:30", "day count"),
        ("rolling:d", "day count"),
        ("rolling:-7d", "day count"),
        ("calendar:fortnight", "day, week, month or quarter"),
        ("calendar:4month", "1 to 3"),
        ("calendar:month;tz=Mars/Olympus", "IANA"),
        ("calendar:month;start=2024-01-31T00:00", "day 1 to 28"),
        ("calendar:week;start=2024-01-01T00:00:30", "whole minute"),
        ("calendar:month;colour=red", "unknown option"),
        ("sliding:30d", "unknown kind 'sliding'"),
        ("30d", "not a window spec"),
        ("", "not a window spec"),
    ],
)
def test_it_rejects_an_unknown_window_naming_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match="window") as caught:
        parse_window(text)
    assert problem in str(caught.value)
    assert caught.value.field == "window"


def test_it_rejects_a_window_that_is_not_text() -> None:
    with pytest.raises(InvalidInput, match="window must be a string"):
        parse_window(30)  # type: ignore[arg-type]


def test_it_rejects_inconsistent_window_fields() -> None:
    with pytest.raises(InvalidInput, match="days"):
        Window(WindowKind.ROLLING, days=93)
    with pytest.raises(InvalidInput, match="days"):
        Window(WindowKind.ROLLING, days=30.0)  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="period"):
        Window(WindowKind.CALENDAR)
    with pytest.raises(InvalidInput, match="period"):
        Window(WindowKind.ROLLING, days=30, period=CalendarPeriod.MONTH)
    with pytest.raises(InvalidInput, match="kind"):
        Window("tumbling", days=30)  # type: ignore[arg-type]


def test_it_accepts_plain_strings_for_kind_and_period() -> None:
    window = Window("calendar", period="quarter")  # type: ignore[arg-type]
    assert window.kind is WindowKind.CALENDAR
    assert window.period is CalendarPeriod.QUARTER
    assert window.is_calendar


# --------------------------------------------------------------------------- rolling


@pytest.mark.parametrize("days", [7, 28, 30, 90])
def test_it_bounds_a_rolling_window_to_the_last_n_days(days: int) -> None:
    now = utc(2024, 3, 1, 12, 34, 56, 789)
    assert window_bounds(Window.rolling(days), now) == (now - timedelta(days=days), now)
    assert window_length(Window.rolling(days), now) == timedelta(days=days)
    assert elapsed_share(Window.rolling(days), now) == 1.0


def test_it_counts_a_rolling_window_across_a_leap_day_in_days_not_months() -> None:
    start, end = window_bounds("rolling:30d", utc(2024, 3, 15))
    assert start == utc(2024, 2, 14)
    assert end == utc(2024, 3, 15)


def test_it_accepts_the_text_form_wherever_a_window_is_expected() -> None:
    now = utc(2024, 5, 5)
    assert window_bounds("calendar:month", now) == window_bounds(Window.calendar("month"), now)


# --------------------------------------------------------------------------- calendar month


@pytest.mark.parametrize(
    ("now", "start", "period_end"),
    [
        (utc(2023, 12, 31, 23, 59, 59, 999999), utc(2023, 12, 1), utc(2024, 1, 1)),
        (utc(2024, 1, 1), utc(2024, 1, 1), utc(2024, 2, 1)),
        (utc(2024, 2, 29, 12), utc(2024, 2, 1), utc(2024, 3, 1)),
        (utc(2023, 2, 28, 23, 59), utc(2023, 2, 1), utc(2023, 3, 1)),
        (utc(2024, 3, 31, 23, 59), utc(2024, 3, 1), utc(2024, 4, 1)),
        (utc(2024, 4, 1), utc(2024, 4, 1), utc(2024, 5, 1)),
    ],
)
def test_it_bounds_a_calendar_month_at_its_edges(
    now: datetime, start: datetime, period_end: datetime
) -> None:
    assert window_bounds("calendar:month", now) == (start, now)
    assert period_bounds("calendar:month", now) == (start, period_end)
    assert window_length("calendar:month", now) == period_end - start


@pytest.mark.parametrize(
    ("now", "days"),
    [
        (utc(2024, 2, 10), 29),  # leap year
        (utc(2023, 2, 10), 28),
        (utc(2100, 2, 10), 28),  # divisible by 100: not a leap year
        (utc(2000, 2, 10), 29),  # divisible by 400: a leap year
        (utc(2024, 4, 10), 30),
        (utc(2024, 12, 10), 31),
    ],
)
def test_it_gives_a_calendar_month_its_full_length(now: datetime, days: int) -> None:
    assert window_length("calendar:month", now) == timedelta(days=days)


def test_it_starts_a_new_month_window_empty_on_january_first() -> None:
    new_year = utc(2024, 1, 1)
    assert window_bounds("calendar:month", new_year) == (new_year, new_year)
    assert elapsed_share("calendar:month", new_year) == 0.0


def test_it_paces_a_leap_february_by_its_29_days() -> None:
    assert elapsed_share("calendar:month", utc(2024, 2, 15, 12)) == pytest.approx(14.5 / 29)
    assert elapsed_share("calendar:month", utc(2023, 2, 15)) == pytest.approx(14 / 28)


# --------------------------------------------------------------------------- calendar quarter


@pytest.mark.parametrize(
    ("now", "start", "period_end"),
    [
        (utc(2024, 3, 31, 23, 59), utc(2024, 1, 1), utc(2024, 4, 1)),
        (utc(2024, 4, 1), utc(2024, 4, 1), utc(2024, 7, 1)),
        (utc(2024, 6, 30, 23), utc(2024, 4, 1), utc(2024, 7, 1)),
        (utc(2024, 7, 1, 0, 1), utc(2024, 7, 1), utc(2024, 10, 1)),
        (utc(2024, 9, 30, 12), utc(2024, 7, 1), utc(2024, 10, 1)),
        (utc(2024, 10, 1), utc(2024, 10, 1), utc(2025, 1, 1)),
        (utc(2023, 12, 31, 23, 59), utc(2023, 10, 1), utc(2024, 1, 1)),
        (utc(2024, 1, 1), utc(2024, 1, 1), utc(2024, 4, 1)),
        (utc(2024, 2, 29), utc(2024, 1, 1), utc(2024, 4, 1)),
    ],
)
def test_it_bounds_a_calendar_quarter_at_its_edges(
    now: datetime, start: datetime, period_end: datetime
) -> None:
    assert window_bounds("calendar:quarter", now) == (start, now)
    assert period_bounds("calendar:quarter", now) == (start, period_end)


@pytest.mark.parametrize(
    ("now", "days"),
    [
        (utc(2024, 2, 1), 91),  # Q1 of a leap year
        (utc(2023, 2, 1), 90),
        (utc(2023, 5, 1), 91),
        (utc(2023, 8, 1), 92),
        (utc(2023, 11, 1), 92),
    ],
)
def test_it_gives_a_calendar_quarter_its_full_length(now: datetime, days: int) -> None:
    assert window_length("calendar:quarter", now) == timedelta(days=days)


# --------------------------------------------------------------------------- time zones


def test_it_rejects_a_naive_now() -> None:
    with pytest.raises(InvalidInput, match="now must be timezone-aware"):
        window_bounds("rolling:30d", datetime(2024, 1, 1))  # noqa: DTZ001


def test_it_rejects_a_now_outside_utc() -> None:
    with pytest.raises(InvalidInput, match="now must be in UTC"):
        window_bounds("calendar:month", datetime(2024, 1, 1, tzinfo=ZoneInfo("Europe/Paris")))


def test_it_accepts_any_utc_tzinfo() -> None:
    now = datetime(2024, 5, 17, 8, tzinfo=timezone(timedelta(0)))
    assert window_bounds("calendar:month", now)[0] == utc(2024, 5, 1)
    now = datetime(2024, 5, 17, 8, tzinfo=ZoneInfo("UTC"))
    assert window_bounds("calendar:month", now)[0] == utc(2024, 5, 1)


# --------------------------------------------------------------------------- zones and anchors


def test_it_round_trips_a_calendar_window_with_a_zone_and_an_anchor() -> None:
    text = "calendar:week;start=2022-01-01T12:00;tz=America/New_York"
    window = parse_window(text)
    assert window == Window.calendar(
        "week",
        time_zone="America/New_York",
        start=datetime(2022, 1, 1, 12),  # noqa: DTZ001
    )
    # the anchor is kept as the same weekday and time in the week of the default anchor
    assert format_window(window) == "calendar:week;start=2020-01-11T12:00;tz=America/New_York"
    assert parse_window(format_window(window)) == window
    assert format_window(parse_window("Calendar:Month;start=2020-01-01T00:00")) == "calendar:month"


def test_it_accepts_any_rolling_day_count_within_the_bounds() -> None:
    assert window_length("rolling:14d", utc(2024, 3, 1)) == timedelta(days=14)
    assert window_length("rolling:3d", utc(2024, 3, 1)) == timedelta(days=3)


def test_a_zoned_month_starts_at_local_midnight_across_daylight_saving() -> None:
    # New York: EST (-5) in March until the 10th, EDT (-4) in April.
    start, end = period_bounds("calendar:month;tz=America/New_York", utc(2024, 3, 20))
    assert start == utc(2024, 3, 1, 5)
    assert end == utc(2024, 4, 1, 4)
    assert window_length("calendar:month;tz=America/New_York", utc(2024, 3, 20)) == timedelta(
        days=31, hours=-1
    )
    # Still February in New York at 03:00 UTC on 1 March.
    assert period_bounds("calendar:month;tz=America/New_York", utc(2024, 3, 1, 3))[0] == utc(
        2024, 2, 1, 5
    )


def test_a_weekly_window_counts_from_its_anchor_in_its_zone() -> None:
    window = "calendar:week;start=2022-01-01T12:00;tz=America/New_York"  # a Saturday noon
    start, end = period_bounds(window, utc(2024, 5, 15))  # a Wednesday
    assert start == utc(2024, 5, 11, 16)  # Saturday 12:00 EDT
    assert end == utc(2024, 5, 18, 16)
    assert period_bounds(window, utc(2024, 5, 11, 16)) == (start, end)
    assert period_bounds(window, utc(2024, 5, 11, 15, 59))[1] == start


def test_a_two_month_window_anchored_mid_month() -> None:
    window = "calendar:2month;start=2024-01-15T00:00"
    assert period_bounds(window, utc(2024, 3, 14, 23, 59)) == (utc(2024, 1, 15), utc(2024, 3, 15))
    assert period_bounds(window, utc(2024, 3, 15)) == (utc(2024, 3, 15), utc(2024, 5, 15))
    # before the anchor too
    assert period_bounds(window, utc(2023, 12, 1)) == (utc(2023, 11, 15), utc(2024, 1, 15))


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("calendar:month;start=2024-03-01T00:00", "calendar:month"),
        ("calendar:quarter;start=2023-10-01T00:00", "calendar:quarter"),
        ("calendar:quarter;start=2024-02-01T00:00", "calendar:quarter;start=2020-02-01T00:00"),
        ("calendar:week;start=2024-05-13T00:00", "calendar:week"),  # a Monday
        ("calendar:2month;start=2024-02-01T00:00", "calendar:2month;start=2020-02-01T00:00"),
    ],
)
def test_anchors_whole_periods_apart_have_one_text_form(text: str, canonical: str) -> None:
    assert format_window(parse_window(text)) == canonical
    now = utc(2024, 6, 17, 8)
    assert period_bounds(text, now) == period_bounds(canonical, now)
