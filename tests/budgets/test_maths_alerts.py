"""Multiwindow, multi-burn-rate alerts (SRE workbook ch. 5)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from budgets.maths.budget import InvalidInput
from budgets.maths.burn import (
    WORKBOOK_POLICY,
    AlertPolicy,
    AlertRule,
    Severity,
    alert_rules,
    budget_spent_by,
    evaluate_alerts,
)

MINUTES_5, MINUTES_30 = timedelta(minutes=5), timedelta(minutes=30)
HOUR_1, HOURS_6, DAYS_3 = timedelta(hours=1), timedelta(hours=6), timedelta(days=3)


def rules_for(days: int) -> dict[str, AlertRule]:
    return {rule.name: rule for rule in alert_rules(timedelta(days=days))}


def test_it_reproduces_the_workbook_rules_for_a_30_day_window() -> None:
    assert alert_rules(timedelta(days=30)) == [
        AlertRule("page-fast", Severity.PAGE, 14.4, HOUR_1, MINUTES_5, 0.02),
        AlertRule("page-slow", Severity.PAGE, 6.0, HOURS_6, MINUTES_30, 0.05),
        AlertRule("ticket", Severity.TICKET, 1.0, DAYS_3, HOURS_6, 0.10),
    ]


@pytest.mark.parametrize(
    ("days", "expected"),
    [
        (7, {"page-fast": 3.36, "page-slow": 1.4, "ticket": 7 / 30}),
        (28, {"page-fast": 13.44, "page-slow": 5.6, "ticket": 28 / 30}),
        (90, {"page-fast": 43.2, "page-slow": 18.0, "ticket": 3.0}),
    ],
)
def test_it_scales_burn_rates_to_the_window_length(days: int, expected: dict) -> None:
    rules = rules_for(days)
    assert {name: rule.burn_rate for name, rule in rules.items()} == pytest.approx(expected)
    # The long and short windows stay those of the workbook.
    assert [(r.long_window, r.short_window) for r in rules.values()] == [
        (HOUR_1, MINUTES_5),
        (HOURS_6, MINUTES_30),
        (DAYS_3, HOURS_6),
    ]


@pytest.mark.parametrize("days", [7, 28, 30, 31, 90, 92])
def test_it_keeps_each_rule_spending_the_same_budget_share(days: int) -> None:
    window = timedelta(days=days)
    spent = [budget_spent_by(r.burn_rate, r.long_window, window) for r in alert_rules(window)]
    assert spent == pytest.approx([0.02, 0.05, 0.10], rel=1e-12)


def test_it_refuses_a_window_shorter_than_a_rule_s_long_window() -> None:
    with pytest.raises(InvalidInput, match="window_length .* 3 days") as caught:
        alert_rules(timedelta(days=2))
    assert caught.value.field == "window_length"


def test_it_accepts_a_custom_policy() -> None:
    policy = [AlertPolicy("fast", Severity.PAGE, 0.01, timedelta(minutes=30), MINUTES_5)]
    (rule,) = alert_rules(timedelta(days=30), policy)
    assert rule.burn_rate == pytest.approx(14.4)


def test_it_translates_a_rule_into_an_error_ratio_threshold() -> None:
    fast = rules_for(30)["page-fast"]
    assert fast.error_ratio_threshold(0.999) == pytest.approx(0.0144)


def burning(rates: dict[timedelta, float]):
    def burn_rate_for(window: timedelta) -> float:
        return rates.get(window, 0.0)

    return burn_rate_for


def firing(states) -> list[str]:
    return [state.rule.name for state in states if state.firing]


def test_it_fires_when_both_windows_exceed_the_rate() -> None:
    rules = alert_rules(timedelta(days=30))
    states = evaluate_alerts(rules, burning({HOUR_1: 15.0, MINUTES_5: 20.0}))
    assert firing(states) == ["page-fast"]
    fast = states[0]
    assert (fast.long_burn_rate, fast.short_burn_rate) == (15.0, 20.0)


def test_it_stays_quiet_when_only_the_long_window_exceeds() -> None:
    # The incident is over: the last 5 minutes are clean, the last hour still looks bad.
    rules = alert_rules(timedelta(days=30))
    assert firing(evaluate_alerts(rules, burning({HOUR_1: 20.0, MINUTES_5: 0.5}))) == []


def test_it_stays_quiet_when_only_the_short_window_exceeds() -> None:
    # A short spike: the hour has not yet burnt 2 % of the budget.
    rules = alert_rules(timedelta(days=30))
    assert firing(evaluate_alerts(rules, burning({HOUR_1: 3.0, MINUTES_5: 50.0}))) == []


@pytest.mark.parametrize(("long_rate", "short_rate"), [(14.4, 14.4), (14.4, 50.0), (50.0, 14.4)])
def test_it_needs_the_rate_strictly_exceeded_in_each_window(
    long_rate: float, short_rate: float
) -> None:
    rules = alert_rules(timedelta(days=30))
    states = evaluate_alerts(rules, burning({HOUR_1: long_rate, MINUTES_5: short_rate}))
    assert firing(states) == []


def test_it_fires_every_rule_under_a_steady_heavy_burn() -> None:
    rules = alert_rules(timedelta(days=30))
    assert firing(evaluate_alerts(rules, lambda window: 20.0)) == [
        "page-fast",
        "page-slow",
        "ticket",
    ]


def test_it_fires_only_the_ticket_under_a_slow_steady_burn() -> None:
    rules = alert_rules(timedelta(days=30))
    assert firing(evaluate_alerts(rules, lambda window: 2.0)) == ["ticket"]


def test_it_pages_earlier_on_a_7_day_window_than_on_a_90_day_one() -> None:
    steady_5x = burning(dict.fromkeys([HOUR_1, MINUTES_5, HOURS_6, MINUTES_30, DAYS_3], 5.0))
    assert firing(evaluate_alerts(alert_rules(timedelta(days=7)), steady_5x)) == [
        "page-fast",
        "page-slow",
        "ticket",
    ]
    assert firing(evaluate_alerts(alert_rules(timedelta(days=90)), steady_5x)) == ["ticket"]


def test_it_asks_for_each_window_s_burn_rate_once() -> None:
    asked: list[timedelta] = []

    def burn_rate_for(window: timedelta) -> float:
        asked.append(window)
        return 1.0

    evaluate_alerts(alert_rules(timedelta(days=30)), burn_rate_for)
    assert sorted(asked) == [MINUTES_5, MINUTES_30, HOUR_1, HOURS_6, DAYS_3]


@pytest.mark.parametrize("bad", [-1.0, float("nan"), "fast", None])
def test_it_rejects_a_nonsense_burn_rate(bad: object) -> None:
    with pytest.raises(InvalidInput, match="burn_rate_for"):
        evaluate_alerts(alert_rules(timedelta(days=30)), lambda window: bad)


def test_it_ships_the_workbook_policy() -> None:
    assert [(p.name, float(p.budget_share)) for p in WORKBOOK_POLICY] == [
        ("page-fast", 0.02),
        ("page-slow", 0.05),
        ("ticket", 0.10),
    ]
