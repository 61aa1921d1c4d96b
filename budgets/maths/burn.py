"""Multiwindow, multi-burn-rate alerts (Google SRE workbook, chapter 5, "Alerting on SLOs").

Pure Python, standard library only, no Django.

For a 30-day window the workbook pages at 14.4x over 1 h AND 5 min (2 % of the budget
spent in an hour), pages at 6x over 6 h AND 30 min (5 % in six hours) and opens a ticket at
1x over 3 days AND 6 h (10 % in three days). alert_rules() keeps those long and short
windows for every SLO window length and scales the burn rate so that each rule still fires
on the same share of the budget: ``burn_rate = budget_share * window_length / long_window``.
See docs/budgets.md for the tables and why the windows, not the shares, are held fixed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from fractions import Fraction
from numbers import Real

from .budget import (
    InvalidInput,
    Number,
    _exact,
    _validate_positive_duration,
    error_budget,
)

__all__ = [
    "REFERENCE_WINDOW",
    "WORKBOOK_POLICY",
    "AlertPolicy",
    "AlertRule",
    "AlertState",
    "Severity",
    "alert_rules",
    "budget_spent_by",
    "evaluate_alerts",
]


class Severity(StrEnum):
    PAGE = "page"
    TICKET = "ticket"


@dataclass(frozen=True, slots=True)
class AlertPolicy:
    """A rule before scaling: fire when ``budget_share`` is spent within ``long_window``."""

    name: str
    severity: Severity
    budget_share: Fraction | float
    long_window: timedelta
    short_window: timedelta


REFERENCE_WINDOW = timedelta(days=30)
WORKBOOK_POLICY: tuple[AlertPolicy, ...] = (
    AlertPolicy(
        "page-fast", Severity.PAGE, Fraction(2, 100), timedelta(hours=1), timedelta(minutes=5)
    ),
    AlertPolicy(
        "page-slow", Severity.PAGE, Fraction(5, 100), timedelta(hours=6), timedelta(minutes=30)
    ),
    AlertPolicy(
        "ticket", Severity.TICKET, Fraction(10, 100), timedelta(days=3), timedelta(hours=6)
    ),
)


@dataclass(frozen=True, slots=True)
class AlertRule:
    """Fire when the burn rate over BOTH ``long_window`` and ``short_window`` exceeds
    ``burn_rate``; a sustained burn at that rate spends ``budget_share`` in ``long_window``."""

    name: str
    severity: Severity
    burn_rate: float
    long_window: timedelta
    short_window: timedelta
    budget_share: float

    def error_ratio_threshold(self, target: Number) -> float:
        """The error ratio the rule fires above: ``burn_rate * (1 - target)``."""
        return self.burn_rate * error_budget(target)


@dataclass(frozen=True, slots=True)
class AlertState:
    rule: AlertRule
    long_burn_rate: float
    short_burn_rate: float
    firing: bool


def _ratio(numerator: timedelta, denominator: timedelta) -> Fraction:
    unit = timedelta(microseconds=1)
    return Fraction(numerator // unit, denominator // unit)


def budget_spent_by(burn_rate: float, duration: timedelta, window_length: timedelta) -> float:
    """Share of the budget spent by burning at ``burn_rate`` for ``duration``.

    ``burn_rate * duration / window_length``: 14.4x for 1 hour of a 30-day window is 0.02.
    """
    if isinstance(burn_rate, bool) or not isinstance(burn_rate, Real):
        raise InvalidInput("burn_rate", f"must be a number, got {burn_rate!r}")
    if not (math.isfinite(burn_rate) and burn_rate >= 0):
        raise InvalidInput("burn_rate", f"must be a finite number >= 0, got {burn_rate}")
    if not isinstance(duration, timedelta) or duration < timedelta(0):
        raise InvalidInput("duration", f"must be a timedelta >= 0, got {duration!r}")
    _validate_positive_duration(window_length, "window_length")
    return float(Fraction(burn_rate) * _ratio(duration, window_length))


def alert_rules(
    window_length: timedelta, policy: Iterable[AlertPolicy] = WORKBOOK_POLICY
) -> list[AlertRule]:
    """The workbook's rules scaled to an SLO window of ``window_length``.

    Each rule keeps its long and short windows and budget share; its burn rate becomes
    ``budget_share * window_length / long_window`` (14.4, 6 and 1 for 30 days; 3.36, 1.4
    and 0.233 for 7 days; 43.2, 18 and 3 for 90 days).
    """
    _validate_positive_duration(window_length, "window_length")
    rules = []
    for item in policy:
        if item.long_window > window_length:
            raise InvalidInput(
                "window_length",
                f"({window_length}) is shorter than the {item.long_window} long window "
                f"of rule {item.name!r}",
            )
        if not item.short_window < item.long_window:
            raise InvalidInput("policy", f"rule {item.name!r}: short window must be shorter")
        share = _exact(item.budget_share, "policy")
        if not 0 < share <= 1:
            raise InvalidInput("policy", f"rule {item.name!r}: budget share must be in (0, 1]")
        rules.append(
            AlertRule(
                name=item.name,
                severity=Severity(item.severity),
                burn_rate=float(share * _ratio(window_length, item.long_window)),
                long_window=item.long_window,
                short_window=item.short_window,
                budget_share=float(share),
            )
        )
    return rules


def evaluate_alerts(
    rules: Iterable[AlertRule], burn_rate_for: Callable[[timedelta], float]
) -> list[AlertState]:
    """Evaluate each rule; it fires only when both its windows burn faster than its rate.

    ``burn_rate_for(window)`` returns the burn rate over the last ``window`` (for example
    ``maths.burn_rate(good, total, target)`` on the ledger counts for that span); it is
    called once per distinct window. "Faster" is strictly greater, as in the workbook's
    ``rate > 14.4 * (1 - target)``.
    """
    cache: dict[timedelta, float] = {}

    def rate(window: timedelta) -> float:
        if window not in cache:
            value = burn_rate_for(window)
            if isinstance(value, bool) or not isinstance(value, Real):
                raise InvalidInput(
                    "burn_rate_for", f"returned {value!r} for {window}, not a number"
                )
            if not (math.isfinite(value) and value >= 0):
                raise InvalidInput("burn_rate_for", f"returned {value} for {window}")
            cache[window] = float(value)
        return cache[window]

    states = []
    for rule in rules:
        long_rate, short_rate = rate(rule.long_window), rate(rule.short_window)
        states.append(
            AlertState(
                rule=rule,
                long_burn_rate=long_rate,
                short_burn_rate=short_rate,
                firing=long_rate > rule.burn_rate and short_rate > rule.burn_rate,
            )
        )
    return states
