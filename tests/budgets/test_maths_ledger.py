"""Ledger range planning: daily rows inside, hourly at the edges, minutes for the rest."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from budgets.maths.budget import InvalidInput
from budgets.maths.windows import (
    Granularity,
    LedgerRange,
    floor_to,
    floor_to_minute,
    plan_ranges,
    window_bounds,
)

MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def aligned(moment: datetime, step: timedelta) -> bool:
    return (moment - EPOCH) % step == timedelta(0)


minutes = st.integers(min_value=0, max_value=4 * 366 * 24 * 60).map(
    lambda n: utc(2022, 1, 1) + n * MINUTE
)
spans = st.one_of(
    st.integers(min_value=0, max_value=3 * 60),  # under a few hours
    st.integers(min_value=0, max_value=3 * 24 * 60),  # under a few days
    st.integers(min_value=0, max_value=120 * 24 * 60),  # up to a quarter and more
)


@settings(max_examples=400)
@given(start=minutes, span=spans)
@example(start=utc(2024, 2, 28, 23, 59), span=2)  # across a leap day
@example(start=utc(2023, 12, 31, 23, 0), span=120)  # across new year
@example(start=utc(2024, 1, 1), span=90 * 24 * 60)  # whole days only
def test_it_tiles_the_range_exactly_with_aligned_ranges(start: datetime, span: int) -> None:
    end = start + span * MINUTE
    ranges = plan_ranges(start, end)

    cursor = start
    for item in ranges:
        assert item.start == cursor, "ranges must be contiguous, without gap or overlap"
        assert item.start < item.end, "no empty ranges"
        assert aligned(item.start, item.granularity.step)
        assert aligned(item.end, item.granularity.step)
        cursor = item.end
    assert cursor == end
    assert sum((item.end - item.start for item in ranges), timedelta(0)) == end - start


@settings(max_examples=400)
@given(start=minutes, span=spans)
def test_it_never_reads_finer_rows_where_a_coarser_row_fits(start: datetime, span: int) -> None:
    end = start + span * MINUTE
    ranges = plan_ranges(start, end)
    coarser = {Granularity.MINUTE: HOUR, Granularity.HOUR: DAY}
    for item in ranges:
        if item.granularity in coarser:
            step = coarser[item.granularity]
            first_whole = floor_to(item.start, step)
            if first_whole < item.start:
                first_whole += step
            assert first_whole + step > item.end, f"{item} holds a whole {step}"
    # Adjacent ranges of one granularity would have been merged.
    assert all(a.granularity != b.granularity for a, b in zip(ranges, ranges[1:], strict=False))


@settings(max_examples=400)
@given(start=minutes, span=spans)
def test_it_bounds_the_rows_read(start: datetime, span: int) -> None:
    end = start + span * MINUTE
    rows = dict.fromkeys(Granularity, 0)
    for item in plan_ranges(start, end):
        rows[item.granularity] += item.rows
    assert rows[Granularity.MINUTE] <= 2 * 59
    assert rows[Granularity.HOUR] <= 2 * 23
    assert rows[Granularity.DAY] <= (end - start) // DAY


def test_it_reads_at_most_90_plus_48_plus_120_rows_for_a_90_day_window() -> None:
    now = floor_to_minute(utc(2024, 5, 17, 13, 37, 42, 123456))
    ranges = plan_ranges(*window_bounds("rolling:90d", now))
    assert [item.granularity for item in ranges] == [
        Granularity.MINUTE,
        Granularity.HOUR,
        Granularity.DAY,
        Granularity.HOUR,
        Granularity.MINUTE,
    ]
    assert [item.rows for item in ranges] == [23, 10, 89, 13, 37]
    assert sum(item.rows for item in ranges) <= 90 + 48 + 120


def test_it_plans_a_calendar_month_from_daily_rows_then_the_open_day() -> None:
    now = utc(2024, 2, 29, 5, 30)
    assert plan_ranges(*window_bounds("calendar:month", now)) == [
        LedgerRange(Granularity.DAY, utc(2024, 2, 1), utc(2024, 2, 29)),
        LedgerRange(Granularity.HOUR, utc(2024, 2, 29), utc(2024, 2, 29, 5)),
        LedgerRange(Granularity.MINUTE, utc(2024, 2, 29, 5), utc(2024, 2, 29, 5, 30)),
    ]


def test_it_uses_only_minutes_inside_one_hour() -> None:
    assert plan_ranges(utc(2024, 1, 1, 10, 5), utc(2024, 1, 1, 10, 50)) == [
        LedgerRange(Granularity.MINUTE, utc(2024, 1, 1, 10, 5), utc(2024, 1, 1, 10, 50))
    ]


def test_it_uses_hours_not_a_day_for_a_day_long_range_off_midnight() -> None:
    ranges = plan_ranges(utc(2024, 1, 1, 6), utc(2024, 1, 2, 6))
    assert ranges == [LedgerRange(Granularity.HOUR, utc(2024, 1, 1, 6), utc(2024, 1, 2, 6))]
    assert ranges[0].rows == 24


def test_it_plans_nothing_for_an_empty_range() -> None:
    assert plan_ranges(utc(2024, 1, 1), utc(2024, 1, 1)) == []


def test_it_rejects_ends_that_are_not_whole_minutes() -> None:
    with pytest.raises(InvalidInput, match="start .* whole minute") as caught:
        plan_ranges(utc(2024, 1, 1, 0, 0, 30), utc(2024, 1, 2))
    assert caught.value.field == "start"
    with pytest.raises(InvalidInput, match="end .* whole minute"):
        plan_ranges(utc(2024, 1, 1), datetime(2024, 1, 2, 0, 0, 0, 1, tzinfo=UTC))


def test_it_rejects_a_range_that_runs_backwards() -> None:
    with pytest.raises(InvalidInput, match="end .* must not be before start"):
        plan_ranges(utc(2024, 1, 2), utc(2024, 1, 1))


def test_it_rejects_naive_ends() -> None:
    with pytest.raises(InvalidInput, match="start must be timezone-aware"):
        plan_ranges(datetime(2024, 1, 1), utc(2024, 1, 2))  # noqa: DTZ001


def test_it_floors_to_the_ledger_minute() -> None:
    assert floor_to_minute(utc(2024, 1, 1, 10, 5, 59, 999999)) == utc(2024, 1, 1, 10, 5)
    assert floor_to_minute(utc(2024, 1, 1, 10, 5)) == utc(2024, 1, 1, 10, 5)
