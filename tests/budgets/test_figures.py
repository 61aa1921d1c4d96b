"""Budget figures from the ledger: occurrences, timeslices, rolling and calendar windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from budgets.figures import slo_figures
from budgets.ledger import record_outcomes
from tests.budgets.conftest import make_service, make_slo

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

NOW = datetime(2025, 3, 14, 12, 30, tzinfo=UTC)


def outcomes(service, at: datetime, good: int, bad: int):
    return [(service.pk, at, True, 1.0)] * good + [(service.pk, at, False, 1.0)] * bad


@pytest.fixture
def service(operator):
    return make_service(operator, "pay")


def figures(slo, now):
    return slo_figures([slo], now)[slo.pk]


def test_a_rolling_window_counts_its_events_and_the_burn_of_the_last_hour(operator, service):
    slo = make_slo(operator, service)  # 99.9 % over rolling:30d
    record_outcomes(outcomes(service, NOW - timedelta(days=10), 9896, 4))
    record_outcomes(outcomes(service, NOW - timedelta(minutes=30), 99, 1))
    record_outcomes(outcomes(service, NOW - timedelta(days=31), 0, 1000))  # outside
    f = figures(slo, NOW)
    assert (f.good, f.total) == (9995, 10_000)
    assert f.consumed == pytest.approx(0.5)
    assert f.remaining == pytest.approx(0.5)
    assert f.burn_rate == pytest.approx(0.5)
    assert f.current_burn_rate == pytest.approx(10.0)
    assert f.time_to_exhaustion == timedelta(hours=36)  # 0.5 x 30 days / 10


def test_an_overspent_budget_goes_past_100_percent(operator, service):
    slo = make_slo(operator, service, target="0.99")
    record_outcomes(outcomes(service, NOW - timedelta(hours=3), 70, 30))
    f = figures(slo, NOW)
    assert f.consumed == pytest.approx(30.0)
    assert f.remaining == pytest.approx(-29.0)
    assert f.time_to_exhaustion in (None, timedelta(0))


def test_the_running_minute_is_left_out(operator, service):
    slo = make_slo(operator, service)
    record_outcomes(outcomes(service, NOW + timedelta(seconds=20), 0, 5))
    assert figures(slo, NOW + timedelta(seconds=40)).total == 0
    assert figures(slo, NOW + timedelta(minutes=1)).total == 5


def test_a_calendar_month_is_empty_at_its_first_instant(operator, service):
    slo = make_slo(operator, service, window="calendar:month")
    record_outcomes(outcomes(service, datetime(2025, 2, 28, 23, 58, tzinfo=UTC), 0, 50))
    start = datetime(2025, 3, 1, tzinfo=UTC)
    f = figures(slo, start)
    assert (f.total, f.consumed, f.elapsed) == (0, 0.0, 0.0)
    assert f.window_length == timedelta(days=31)
    feb = figures(slo, start - timedelta(minutes=1))
    assert feb.start == datetime(2025, 2, 1, tzinfo=UTC)
    assert feb.window_length == timedelta(days=28) and feb.total == 50


def test_a_calendar_month_paces_its_budget_over_the_whole_period(operator, service):
    slo = make_slo(operator, service, window="calendar:month")
    start = datetime(2025, 3, 1, tzinfo=UTC)
    record_outcomes(outcomes(service, start + timedelta(seconds=30), 0, 1))
    f = figures(slo, start + timedelta(minutes=1))
    assert f.burn_rate == pytest.approx(1000.0)  # every event bad at 99.9 %
    assert f.elapsed == pytest.approx(1 / (31 * 1440))
    assert f.consumed == pytest.approx(1000.0 / (31 * 1440))
    mid = figures(slo, datetime(2025, 3, 16, 12, tzinfo=UTC))  # half the month gone
    assert mid.elapsed == pytest.approx(0.5)
    assert mid.consumed == pytest.approx(mid.burn_rate * 0.5)


def test_a_leap_february_is_29_days(operator, service):
    slo = make_slo(operator, service, window="calendar:month")
    assert figures(slo, datetime(2024, 2, 29, 23, 59, tzinfo=UTC)).window_length == timedelta(
        days=29
    )


@pytest.mark.parametrize(
    ("now", "start", "days"),
    [
        (datetime(2025, 3, 31, 23, 59, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC), 90),
        (datetime(2024, 3, 31, 23, 59, tzinfo=UTC), datetime(2024, 1, 1, tzinfo=UTC), 91),
        (datetime(2025, 4, 1, 0, 1, tzinfo=UTC), datetime(2025, 4, 1, tzinfo=UTC), 91),
        (datetime(2025, 12, 31, 23, 59, tzinfo=UTC), datetime(2025, 10, 1, tzinfo=UTC), 92),
    ],
)
def test_calendar_quarters_start_and_end_at_their_edges(operator, service, now, start, days):
    slo = make_slo(operator, service, window="calendar:quarter")
    record_outcomes(outcomes(service, start - timedelta(minutes=1), 0, 7))  # last quarter
    record_outcomes(outcomes(service, start, 3, 0))  # first minute of this one
    f = figures(slo, now)
    assert f.start == start and f.window_length == timedelta(days=days)
    assert (f.good, f.total) == (3, 3)


def test_timeslices_count_bad_minutes_against_the_window(operator, service):
    slo = make_slo(
        operator,
        service,
        "minutes",
        budgeting_method="timeslices",
        slice_minutes=1,
        slice_target="0.95",
    )
    for i in range(10):  # ten bad minutes: 90 % good each
        record_outcomes(outcomes(service, NOW - timedelta(days=2, minutes=i), 9, 1))
    record_outcomes(outcomes(service, NOW - timedelta(days=1), 19, 1))  # 95 %: good
    f = figures(slo, NOW)
    assert (f.bad_slices, f.total_slices) == (10, 30 * 1440)
    assert f.consumed == pytest.approx(10 / 43.2)  # 99.9 % of 30 days allows 43.2 minutes
    assert f.total == 120


def test_five_minute_slices_leave_the_open_slice_out(operator, service):
    slo = make_slo(
        operator,
        service,
        "five",
        budgeting_method="timeslices",
        slice_minutes=5,
        slice_target="0.5",
    )
    record_outcomes(outcomes(service, NOW - timedelta(minutes=7), 0, 3))  # slice 12:20
    record_outcomes(outcomes(service, NOW + timedelta(minutes=1), 0, 3))  # slice 12:30, open
    f = figures(slo, NOW + timedelta(minutes=3))
    assert f.end == NOW and f.bad_slices == 1
    assert f.total_slices == 30 * 288
    assert f.current_burn_rate == pytest.approx((1 / 12) / 0.001)  # 1 bad of 12 in the hour


def test_timeslices_in_a_calendar_month_have_a_fixed_budget(operator, service):
    slo = make_slo(
        operator,
        service,
        "cal",
        budgeting_method="timeslices",
        slice_minutes=60,
        slice_target="0.9",
        window="calendar:month",
    )
    start = datetime(2025, 3, 1, tzinfo=UTC)
    record_outcomes(outcomes(service, start + timedelta(hours=2), 1, 1))
    f = figures(slo, start + timedelta(days=1))
    assert (f.bad_slices, f.total_slices) == (1, 31 * 24)
    assert f.consumed == pytest.approx(1 / (31 * 24 * 0.001))
