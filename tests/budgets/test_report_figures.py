"""Report figures against a ledger built through the record functions, with the expected
numbers worked out here from the counts we recorded (not read back from the ledger)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from breakers.engine import State, Transition
from breakers.registry import record_transition
from budgets import gates, policy
from budgets.ledger import record_outcomes
from budgets.reports import build_report, month_period
from tests.budgets.conftest import make_service, make_slo
from tests.conftest import make_route

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

NOW = datetime(2025, 3, 14, 12, 30, tzinfo=UTC)


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2025, 3, day, hour, minute, tzinfo=UTC)


def outcomes(service, when: datetime, good: int, bad: int):
    return [(service.pk, when, True, 1.0)] * good + [(service.pk, when, False, 1.0)] * bad


def transition(name: str, frm: State, to: State, when: datetime) -> None:
    record_transition(
        Transition(name, frm, to, "test", when.timestamp(), 10, 5, 0, 50.0, 0.0, 1, "node")
    )


@pytest.fixture
def world(operator):
    pay = make_service(operator, "pay")
    make_slo(operator, pay, target="0.99")
    search = make_service(operator, "search")
    make_slo(
        operator,
        search,
        budgeting_method="timeslices",
        slice_minutes=5,
        slice_target="0.9",
        target="0.99",
    )
    make_service(operator, "mail")  # no SLO: not in the report
    record_outcomes(outcomes(pay, datetime(2025, 2, 1, 10, tzinfo=UTC), 0, 50))  # February
    record_outcomes(outcomes(pay, at(2, 10, 5), 1000, 0))
    record_outcomes(outcomes(pay, at(5, 8, 10), 80, 20))
    record_outcomes(outcomes(pay, at(5, 9, 10), 80, 20))
    record_outcomes(outcomes(pay, at(10, 14, 0), 98, 2))
    record_outcomes(outcomes(search, at(7, 3, 0), 5, 5))  # a bad 5-minute slice
    record_outcomes(outcomes(search, at(7, 3, 5), 5, 5))  # another
    record_outcomes(outcomes(search, at(7, 3, 10), 10, 0))  # a good one
    route = make_route(pay, operator, target="http://127.0.0.1:9/")
    name = route.name
    transition(name, State.CLOSED, State.OPEN, at(5, 8, 20))
    transition(name, State.OPEN, State.HALF_OPEN, at(5, 8, 30))
    transition(name, State.HALF_OPEN, State.CLOSED, at(5, 8, 50))
    deploy = gates.check_change(
        service=pay,
        change_id="c-1",
        version="1.2",
        kind="normal",
        description="",
        requested_by="ci",
        actor=operator.user,
        now=at(5, 7, 30),
    ).decision
    denied = gates.check_change(
        service=pay,
        change_id="c-2",
        version="1.3",
        kind="normal",
        description="",
        requested_by="ci",
        actor=operator.user,
        now=at(5, 10, 30),
    ).decision
    policy.create_freeze_window(
        actor=operator.user, name="release", starts_at=at(12, 22), ends_at=at(13, 2)
    )
    return {"pay": pay, "search": search, "deploy": deploy, "denied": denied}


def test_the_report_figures_match_the_recorded_counts(world):
    report = build_report(month_period("2025-03"), NOW)
    assert [s.service.slug for s in report.services] == ["pay", "search"]
    pay, search = report.services
    [row] = pay.slos
    assert (row.good, row.total, row.bad) == (1258, 1300, 42)
    assert row.allowed_bad == pytest.approx(13.0)  # 1 % of 1300 events
    assert row.sli == pytest.approx(1258 / 1300)
    assert row.consumed == pytest.approx(42 / 13)
    assert row.remaining == pytest.approx(1 - 42 / 13)
    assert pay.over_budget and not search.over_budget

    [srow] = search.slos
    slices = 31 * 24 * 12  # the whole of March, 5-minute slices
    assert srow.bad == 2
    assert srow.allowed_bad == pytest.approx(slices * 0.01)
    assert srow.budget_minutes == pytest.approx(slices * 0.01 * 5)
    assert srow.consumed_minutes == 10
    assert srow.sli == pytest.approx(1 - 2 / slices)


def test_episodes_are_the_hours_above_one_x_with_their_shares(world):
    report = build_report(month_period("2025-03"), NOW)
    pay = report.services[0]
    first, second = pay.slos[0].episodes
    assert (first.episode.start, first.episode.end) == (at(5, 8), at(5, 10))
    assert first.episode.bad == 40
    assert first.share_of_consumed == pytest.approx(40 / 42)
    assert first.share_of_budget == pytest.approx(40 / 13)
    assert first.needs_postmortem
    assert (second.episode.start, second.episode.end) == (at(10, 14), at(10, 15))
    assert second.share_of_budget == pytest.approx(2 / 13)
    assert not second.needs_postmortem  # 15 % of the budget: under the 20 % rule
    assert pay.postmortems == [first]
    [search_episode] = report.services[1].slos[0].episodes
    assert search_episode.bad_minutes == 10
    assert search_episode.episode.peak_burn_rate == pytest.approx(2 / (12 * 0.01))


def test_episodes_show_the_breaker_openings_and_deploys_that_overlapped_them(world):
    pay = build_report(month_period("2025-03"), NOW).services[0]
    first, second = pay.slos[0].episodes
    [opening] = first.breakers
    assert (opening.opened_at, opening.closed_at) == (at(5, 8, 20), at(5, 8, 50))
    assert first.decisions == [world["deploy"]]  # 07:30: in the hour before the episode
    assert first.deploys == [world["deploy"]]
    assert second.breakers == [] and second.decisions == []


def test_incident_figures_time_to_detect_and_recover(world):
    pay = build_report(month_period("2025-03"), NOW).services[0]
    assert len(pay.breaker_episodes) == 1
    assert pay.mttd == timedelta(minutes=10)  # first failed minute 08:10, open 08:20
    assert pay.mttr == timedelta(minutes=30)  # open 08:20, closed 08:50


def test_days_frozen_count_freeze_windows_and_budget_denials(world):
    assert world["denied"].status == "deny"
    pay, search = build_report(month_period("2025-03"), NOW).services
    assert pay.frozen_days == [date(2025, 3, 5), date(2025, 3, 12), date(2025, 3, 13)]
    assert search.frozen_days == [date(2025, 3, 12), date(2025, 3, 13)]
    assert pay.days_frozen == 3


def test_a_period_after_the_data_reports_nothing_spent(world):
    report = build_report(month_period("2025-02"), NOW)
    pay = next(s for s in report.services if s.service.slug == "pay")
    assert (pay.slos[0].total, pay.slos[0].bad) == (50, 50)
    assert pay.slos[0].episodes[0].episode.start == datetime(2025, 2, 1, 10, tzinfo=UTC)
    assert pay.breaker_episodes == []
