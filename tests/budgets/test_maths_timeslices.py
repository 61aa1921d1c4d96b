"""Timeslices method: a slice is good when its ratio meets the slice target."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from budgets.maths.budget import (
    InvalidInput,
    aggregate_slices,
    slice_is_good,
    timeslice_status,
)

MINUTE = timedelta(minutes=1)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_it_judges_a_slice_good_at_exactly_the_slice_target() -> None:
    assert slice_is_good(95, 100, 0.95)
    assert not slice_is_good(94, 100, 0.95)
    assert slice_is_good(999, 1000, 0.999)
    assert not slice_is_good(998, 1000, 0.999)


def test_it_counts_a_slice_without_events_as_good() -> None:
    assert slice_is_good(0, 0, 0.999)


def test_it_computes_the_sli_as_good_slices_over_all_slices() -> None:
    slices = [(100, 100), (94, 100), (0, 0), (95, 100), (0, 10)]
    status = timeslice_status(slices, slice_length=MINUTE, slice_target=0.95, target=0.99)
    assert (status.good_slices, status.bad_slices, status.total_slices) == (3, 2, 5)
    assert status.sli == pytest.approx(0.6)
    assert status.allowed_bad_slices == pytest.approx(0.05)
    assert status.consumed == pytest.approx(2 / 0.05)
    assert status.exhausted


def test_it_gives_a_30_day_window_43_minutes_of_budget_at_three_nines() -> None:
    bad_minutes = [(0, 5)] * 10
    status = timeslice_status(
        bad_minutes,
        slice_length=MINUTE,
        slice_target=0.99,
        target=0.999,
        window_length=timedelta(days=30),
    )
    assert status.total_slices == 30 * 24 * 60
    assert status.bad_slices == 10
    assert status.good_slices == 30 * 24 * 60 - 10  # slices without rows had no events
    assert status.allowed_bad_slices == pytest.approx(43.2)
    assert status.allowed_bad_time == timedelta(minutes=43.2)
    assert status.consumed == pytest.approx(10 / 43.2)
    assert status.remaining == pytest.approx(1 - 10 / 43.2)
    assert status.burn_rate == pytest.approx(status.consumed)


def test_it_treats_a_window_without_slices_as_fully_good() -> None:
    status = timeslice_status([], slice_length=MINUTE, slice_target=0.9, target=0.99)
    assert (status.total_slices, status.sli, status.consumed) == (0, 1.0, 0.0)


def test_it_rejects_more_slices_than_the_window_holds() -> None:
    with pytest.raises(InvalidInput, match="slices"):
        timeslice_status(
            [(1, 1)] * 61,
            slice_length=MINUTE,
            slice_target=0.9,
            target=0.99,
            window_length=timedelta(hours=1),
        )


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"slice_target": 0}, "slice_target"),
        ({"slice_target": 1.01}, "slice_target"),
        ({"target": 1.0}, "target"),
        ({"slice_length": timedelta(0)}, "slice_length"),
        ({"window_length": timedelta(seconds=90)}, "window_length"),
    ],
)
def test_it_rejects_bad_timeslice_settings_naming_the_field(kwargs: dict, field: str) -> None:
    arguments = {"slice_length": MINUTE, "slice_target": 0.9, "target": 0.99} | kwargs
    with pytest.raises(InvalidInput, match=f"^{field} ") as caught:
        timeslice_status([(1, 1)], **arguments)
    assert caught.value.field == field


def test_it_rejects_bad_slice_counts_naming_the_slice() -> None:
    with pytest.raises(InvalidInput, match=r"slices\[1\]\.good .*must not exceed"):
        timeslice_status([(1, 1), (3, 2)], slice_length=MINUTE, slice_target=0.9, target=0.99)
    with pytest.raises(InvalidInput, match=r"slices\[0\]\.total .*negative"):
        timeslice_status([(0, -1)], slice_length=MINUTE, slice_target=0.9, target=0.99)
    with pytest.raises(InvalidInput, match=r"slices\[0\] must be a \(good, total\) pair"):
        timeslice_status([(1, 1, 1)], slice_length=MINUTE, slice_target=0.9, target=0.99)


def test_it_sums_minute_rows_into_slices_anchored_at_the_window_start() -> None:
    start = utc(2024, 1, 1, 10)
    rows = [
        (utc(2024, 1, 1, 10, 0), 10, 10),
        (utc(2024, 1, 1, 10, 4), 5, 10),
        (utc(2024, 1, 1, 10, 5), 1, 1),
        (utc(2024, 1, 1, 10, 16), 7, 8),
    ]
    slices = aggregate_slices(
        rows, start=start, end=start + timedelta(minutes=17), slice_length=5 * MINUTE
    )
    assert slices == [(15, 20), (1, 1), (0, 0), (7, 8)]


def test_it_rejects_rows_outside_the_window() -> None:
    start = utc(2024, 1, 1, 10)
    with pytest.raises(InvalidInput, match="buckets"):
        aggregate_slices(
            [(start + timedelta(hours=1), 1, 1)],
            start=start,
            end=start + timedelta(hours=1),
            slice_length=MINUTE,
        )
