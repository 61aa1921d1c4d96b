"""Occurrences method: budget, burn rate, time to exhaustion, pacing, and bad input."""

from __future__ import annotations

import pickle
from datetime import timedelta
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from budgets.maths.budget import (
    InvalidInput,
    budget_pacing,
    budget_status,
    burn_rate,
    error_budget,
    time_to_exhaustion,
    validate_target,
)
from budgets.maths.burn import budget_spent_by

DAYS_30 = timedelta(days=30)


# --------------------------------------------------------------------------- the SRE workbook


@pytest.mark.parametrize(
    ("rate", "duration", "share"),
    [
        (14.4, timedelta(hours=1), 0.02),
        (6, timedelta(hours=6), 0.05),
        (1, timedelta(days=3), 0.10),
    ],
)
def test_it_matches_the_sre_workbook_budget_spent_over_30_days(
    rate: float, duration: timedelta, share: float
) -> None:
    assert budget_spent_by(rate, duration, DAYS_30) == pytest.approx(share, rel=1e-12)


def test_it_spends_a_whole_30_day_budget_in_50_hours_at_14_4x() -> None:
    assert budget_spent_by(14.4, timedelta(hours=50), DAYS_30) == pytest.approx(1.0)
    assert time_to_exhaustion(1.0, 14.4, DAYS_30) == timedelta(hours=50)


def test_it_spends_nothing_in_no_time_or_at_no_burn() -> None:
    assert budget_spent_by(14.4, timedelta(0), DAYS_30) == 0.0
    assert budget_spent_by(0, timedelta(hours=5), DAYS_30) == 0.0


@pytest.mark.parametrize(
    ("args", "field"),
    [
        ((-1, timedelta(hours=1), DAYS_30), "burn_rate"),
        ((float("nan"), timedelta(hours=1), DAYS_30), "burn_rate"),
        ((1, timedelta(hours=-1), DAYS_30), "duration"),
        ((1, timedelta(hours=1), timedelta(0)), "window_length"),
    ],
)
def test_it_rejects_bad_budget_spent_arguments(args: tuple, field: str) -> None:
    with pytest.raises(InvalidInput, match=field) as caught:
        budget_spent_by(*args)
    assert caught.value.field == field


# --------------------------------------------------------------------------- budget status


def test_it_reports_budget_consumed_and_remaining() -> None:
    status = budget_status(good=999_500, total=1_000_000, target=0.999)
    assert status.bad == 500
    assert status.error_ratio == pytest.approx(0.0005)
    assert status.sli == pytest.approx(0.9995)
    assert status.error_budget == 0.001
    assert status.allowed_bad == pytest.approx(1000)
    assert status.consumed == pytest.approx(0.5)
    assert status.remaining == pytest.approx(0.5)
    assert status.burn_rate == pytest.approx(0.5)
    assert not status.exhausted


def test_it_lets_consumption_exceed_the_whole_budget() -> None:
    status = budget_status(good=997, total=1000, target=0.999)
    assert status.consumed == pytest.approx(3.0)
    assert status.remaining == pytest.approx(-2.0)
    assert status.exhausted


def test_it_counts_exactly_the_whole_budget_as_exhausted() -> None:
    status = budget_status(good=999, total=1000, target=0.999)
    assert status.consumed == 1.0
    assert status.remaining == 0.0
    assert status.exhausted


def test_it_consumes_nothing_when_there_were_no_events() -> None:
    status = budget_status(good=0, total=0, target=0.999)
    assert status.consumed == 0.0
    assert status.remaining == 1.0
    assert status.burn_rate == 0.0
    assert status.error_ratio == 0.0
    assert status.sli == 1.0


def test_it_computes_one_minus_target_exactly() -> None:
    assert 1 - 0.999 != 0.001  # the float trap this module avoids
    assert error_budget(0.999) == 0.001
    assert error_budget(Decimal("0.999900")) == 0.0001
    assert error_budget(0.99) == 0.01
    assert burn_rate(good=9856, total=10_000, target=0.999) == 14.4


def test_it_gives_the_burn_rate_over_any_window() -> None:
    assert burn_rate(good=990, total=1000, target=0.99) == 1.0
    assert burn_rate(good=1000, total=1000, target=0.99) == 0.0
    assert burn_rate(good=0, total=1000, target=0.99) == 100.0
    assert burn_rate(good=0, total=0, target=0.99) == 0.0


@given(
    total=st.integers(min_value=1, max_value=10**9),
    data=st.data(),
    target=st.sampled_from([0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999, 0.999999]),
)
def test_it_keeps_consumed_plus_remaining_at_one(total: int, data, target: float) -> None:
    good = data.draw(st.integers(min_value=0, max_value=total))
    status = budget_status(good, total, target)
    assert status.consumed + status.remaining == pytest.approx(1.0)
    assert status.consumed == pytest.approx((total - good) / (total * (1 - target)))
    assert status.consumed >= 0


# --------------------------------------------------------------------------- time to exhaustion


def test_it_forecasts_exhaustion_at_the_current_burn_rate() -> None:
    assert time_to_exhaustion(0.5, 1.0, DAYS_30) == timedelta(days=15)
    assert time_to_exhaustion(0.9, 6.0, DAYS_30) == timedelta(days=4.5)
    assert time_to_exhaustion(0.2, 0.5, timedelta(days=7)) == timedelta(days=2.8)


def test_it_never_exhausts_without_burning() -> None:
    assert time_to_exhaustion(0.5, 0.0, DAYS_30) is None
    assert time_to_exhaustion(0.5, -1.0, DAYS_30) is None
    assert time_to_exhaustion(0.5, 1e-300, DAYS_30) is None  # beyond any timedelta


def test_it_says_an_overspent_budget_is_already_exhausted() -> None:
    assert time_to_exhaustion(0.0, 2.0, DAYS_30) == timedelta(0)
    assert time_to_exhaustion(-0.5, 2.0, DAYS_30) == timedelta(0)


# --------------------------------------------------------------------------- pacing


def test_it_paces_an_even_burn_exactly_on_track() -> None:
    pacing = budget_pacing(good=999_000, total=1_000_000, target=0.999, elapsed=0.25)
    assert pacing.expected_consumed == 0.25
    assert pacing.consumed == pytest.approx(0.25)
    assert pacing.projected_at_end == pytest.approx(1.0)
    assert pacing.ahead_of_pace == pytest.approx(0.0)


def test_it_flags_a_period_burning_ahead_of_pace() -> None:
    pacing = budget_pacing(good=998_000, total=1_000_000, target=0.999, elapsed=0.25)
    assert pacing.consumed == pytest.approx(0.5)
    assert pacing.ahead_of_pace == pytest.approx(0.25)
    assert pacing.projected_at_end == pytest.approx(2.0)
    assert not pacing.on_track


def test_it_paces_against_a_forecast_period_total() -> None:
    pacing = budget_pacing(good=9_900, total=10_000, target=0.99, elapsed=0.5, period_total=40_000)
    assert pacing.consumed == pytest.approx(100 / 400)
    assert pacing.on_track
    with pytest.raises(InvalidInput, match="period_total"):
        budget_pacing(good=1, total=10, target=0.99, elapsed=0.5, period_total=9)


def test_it_paces_the_first_instant_of_a_period_as_nothing_spent() -> None:
    pacing = budget_pacing(good=0, total=0, target=0.99, elapsed=0.0)
    assert (pacing.consumed, pacing.expected_consumed, pacing.projected_at_end) == (0, 0, 0)
    with pytest.raises(InvalidInput, match="elapsed"):
        budget_pacing(good=0, total=0, target=0.99, elapsed=1.5)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "target", [1.0, 1, 0, 0.0, 0.5, 0.98999, 0.9999991, -0.999, float("nan"), float("inf")]
)
def test_it_rejects_a_target_out_of_range_naming_target(target: float) -> None:
    with pytest.raises(ValueError, match="^target ") as caught:
        budget_status(good=1, total=1, target=target)
    assert caught.value.field == "target"


@pytest.mark.parametrize("target", ["0.999", None, True])
def test_it_rejects_a_target_that_is_not_a_number(target: object) -> None:
    with pytest.raises(InvalidInput, match="target must be a number"):
        validate_target(target)  # type: ignore[arg-type]


@pytest.mark.parametrize("target", [0.99, 0.999999, Decimal("0.99"), Decimal("0.999999")])
def test_it_accepts_the_target_range_inclusive(target: float) -> None:
    assert validate_target(target) == float(target)


@pytest.mark.parametrize(
    ("good", "total", "field", "problem"),
    [
        (-1, 10, "good", "must not be negative"),
        (0, -10, "total", "must not be negative"),
        (11, 10, "good", "must not exceed total"),
        (1.5, 10, "good", "whole number"),
        (1, "10", "total", "whole number"),
        (True, 10, "good", "whole number"),
    ],
)
def test_it_rejects_bad_counts_naming_the_field(
    good: int, total: int, field: str, problem: str
) -> None:
    with pytest.raises(ValueError, match=f"^{field} .*{problem}") as caught:
        budget_status(good=good, total=total, target=0.999)
    assert caught.value.field == field


def test_it_keeps_the_field_when_an_error_is_pickled() -> None:
    error = InvalidInput("target", "must be between 0.99 and 0.999999 inclusive, got 1")
    copy = pickle.loads(pickle.dumps(error))
    assert copy.field == "target"
    assert str(copy) == str(error)


def test_it_rejects_bad_exhaustion_arguments() -> None:
    with pytest.raises(InvalidInput, match="window_length"):
        time_to_exhaustion(0.5, 1.0, timedelta(0))
    with pytest.raises(InvalidInput, match="remaining"):
        time_to_exhaustion(float("nan"), 1.0, DAYS_30)
