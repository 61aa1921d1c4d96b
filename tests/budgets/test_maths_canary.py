"""Canary verdicts: one-sided test of canary error ratio > baseline + tolerance."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from budgets.maths.budget import InvalidInput
from budgets.maths.canary import (
    METHOD_FISHER,
    METHOD_SCORE,
    Decision,
    _restricted_mle,
    _score_test,
    canary_verdict,
)


def verdict(canary: tuple[int, int], baseline: tuple[int, int], **options):
    """Counts as (bad, total), which reads more naturally in tests than (good, total)."""
    options = {"tolerance": 0.0, "min_events": 100} | options
    (canary_bad, canary_total), (baseline_bad, baseline_total) = canary, baseline
    return canary_verdict(
        canary_total - canary_bad,
        canary_total,
        baseline_total - baseline_bad,
        baseline_total,
        **options,
    )


# --------------------------------------------------------------------------- min_events edge


def test_it_judges_at_exactly_min_events() -> None:
    result = verdict((0, 500), (0, 500), min_events=500)
    assert result.decision == Decision.PROMOTE


@pytest.mark.parametrize(
    ("canary_total", "baseline_total", "short_side"),
    [(499, 500, "canary has only 499 events"), (500, 499, "baseline has only 499 events")],
)
def test_it_is_inconclusive_one_event_short_of_min_events(
    canary_total: int, baseline_total: int, short_side: str
) -> None:
    # Even a blatant regression is not judged on too little traffic.
    result = verdict((canary_total, canary_total), (0, baseline_total), min_events=500)
    assert result.decision == Decision.INCONCLUSIVE
    assert short_side in result.explanation
    assert "at least 500" in result.explanation
    assert result.figures["p_value"] is None


def test_it_is_inconclusive_with_no_traffic_at_all() -> None:
    result = verdict((0, 0), (0, 0), min_events=1)
    assert result.decision == "inconclusive"
    assert "canary has only 0 events and the baseline has only 0 events" in result.explanation


# --------------------------------------------------------------------------- decisions


@pytest.mark.parametrize(
    ("canary", "baseline", "tolerance"),
    [
        ((50, 10_000), (50, 10_000), 0.0),
        ((50, 10_000), (50, 10_000), 0.001),
        ((0, 10_000), (0, 10_000), 0.0),
        ((0, 200), (0, 200), 0.0),
        ((10_000, 10_000), (10_000, 10_000), 0.0),
        ((120, 1_000), (1_200, 10_000), 0.0),
    ],
)
def test_it_promotes_identical_error_ratios(canary, baseline, tolerance: float) -> None:
    result = verdict(canary, baseline, tolerance=tolerance)
    assert result.decision == Decision.PROMOTE
    assert result.figures["difference"] == 0
    assert "the same as the baseline's" in result.explanation


def test_it_rolls_back_a_clear_regression() -> None:
    result = verdict((120, 10_000), (50, 10_000), tolerance=0.001)
    assert result.decision == Decision.ROLLBACK
    assert result.figures["method"] == METHOD_SCORE
    assert result.figures["p_value"] < 0.0001
    assert result.explanation.startswith(
        "Roll back: the canary failed 120 of 10,000 events (1.2%) and the baseline 50 of "
        "10,000 (0.5%), so the canary's error ratio is 0.7 percentage points higher, with "
        "0.1 percentage points allowed."
    )
    assert "probability less than 0.0001" in result.explanation
    assert "95% confidence" in result.explanation


def test_it_promotes_a_regression_within_tolerance() -> None:
    # 0.9 points worse on lots of traffic: certainly worse, but not beyond 1 point.
    result = verdict((19_000, 1_000_000), (10_000, 1_000_000), tolerance=0.01)
    assert result.figures["difference"] == pytest.approx(0.009)
    assert result.decision == Decision.PROMOTE
    assert "0.9 percentage points higher, with 1 percentage point allowed" in (result.explanation)
    assert "no significant regression" in result.explanation


def test_it_rolls_back_the_same_regression_without_tolerance() -> None:
    result = verdict((19_000, 1_000_000), (10_000, 1_000_000), tolerance=0.0)
    assert result.decision == Decision.ROLLBACK
    assert "with no increase allowed" in result.explanation


def test_it_rolls_back_just_beyond_tolerance_on_enough_traffic() -> None:
    result = verdict((21_000, 1_000_000), (10_000, 1_000_000), tolerance=0.01)
    assert result.decision == Decision.ROLLBACK


def test_it_promotes_a_canary_that_is_better() -> None:
    result = verdict((10, 1_000), (20, 1_000))
    assert result.decision == Decision.PROMOTE
    assert "1 percentage point lower" in result.explanation


def test_it_does_not_roll_back_on_one_unlucky_error() -> None:
    result = verdict((1, 100), (0, 100))
    assert result.decision == Decision.PROMOTE
    assert result.figures["method"] == METHOD_FISHER


def test_it_lets_confidence_decide_a_borderline_regression() -> None:
    # Pooled z = 1.99, one-sided p = 0.023.
    assert verdict((130, 10_000), (100, 10_000), confidence=0.95).decision == "rollback"
    assert verdict((130, 10_000), (100, 10_000), confidence=0.99).decision == "promote"


# --------------------------------------------------------------------------- the statistics


def test_it_is_the_pooled_two_proportion_z_test_without_tolerance() -> None:
    result = verdict((130, 10_000), (100, 10_000))
    pooled = 230 / 20_000
    z = (0.013 - 0.010) / math.sqrt(pooled * (1 - pooled) * (2 / 10_000))
    assert result.figures["z"] == pytest.approx(z)
    assert result.figures["p_value"] == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)))


def test_it_uses_fisher_exact_on_few_errors_without_tolerance() -> None:
    # Fisher's tea-tasting table: 3 of 4 against 1 of 4, one-sided p = 17/70.
    result = verdict((3, 4), (1, 4), min_events=4)
    assert result.figures["method"] == METHOD_FISHER
    assert result.figures["z"] is None
    assert result.figures["p_value"] == pytest.approx(17 / 70)
    assert result.decision == "promote"


def test_it_uses_fisher_exact_for_a_lone_error_against_a_spotless_baseline() -> None:
    result = verdict((1, 1_000), (0, 100_000))
    assert result.figures["p_value"] == pytest.approx(1_000 / 101_000)
    assert result.decision == "rollback"


def test_it_stays_defined_when_neither_side_has_errors_and_there_is_tolerance() -> None:
    result = verdict((0, 1_000), (0, 1_000), tolerance=0.01)
    assert result.figures["method"] == METHOD_SCORE
    assert math.isfinite(result.figures["z"])
    assert result.figures["z"] < 0


def farrington_manning_closed_form(x1: int, n1: int, x2: int, n2: int, delta: float):
    """The published cubic-root solution, to check the bisection against."""
    p1, p2, theta = x1 / n1, x2 / n2, n2 / n1
    a = 1 + theta
    b = -(1 + theta + p1 + theta * p2 + delta * (theta + 2))
    c = delta**2 + delta * (2 * p1 + theta + 1) + p1 + theta * p2
    d = -p1 * delta * (1 + delta)
    v = b**3 / (27 * a**3) - b * c / (6 * a**2) + d / (2 * a)
    u = math.copysign(math.sqrt(b**2 / (9 * a**2) - c / (3 * a)), v)
    w = (math.pi + math.acos(v / u**3)) / 3
    canary = 2 * u * math.cos(w) - b / (3 * a)
    return canary, canary - delta


@pytest.mark.parametrize(
    ("x1", "n1", "x2", "n2", "delta"),
    [
        (120, 10_000, 50, 10_000, 0.001),
        (30, 200, 12, 300, 0.05),
        (5, 1_000, 2, 50_000, 0.002),
        (400, 500, 350, 500, 0.1),
    ],
)
def test_it_fits_h0_as_farrington_and_manning_publish(x1, n1, x2, n2, delta) -> None:
    assert _restricted_mle(x1, n1, x2, n2, delta) == pytest.approx(
        farrington_manning_closed_form(x1, n1, x2, n2, delta), rel=1e-9
    )


def log_likelihood(x1: int, n1: int, x2: int, n2: int, p1: float, p2: float) -> float:
    def term(count: int, p: float) -> float:
        if count == 0:
            return 0.0
        return count * math.log(p) if p > 0 else -math.inf

    return term(x1, p1) + term(n1 - x1, 1 - p1) + term(x2, p2) + term(n2 - x2, 1 - p2)


totals = st.integers(min_value=1, max_value=100_000)


@settings(max_examples=300)
@given(n1=totals, n2=totals, data=st.data(), delta=st.floats(min_value=1e-6, max_value=0.9))
def test_it_fits_h0_at_the_constrained_likelihood_maximum(n1, n2, data, delta) -> None:
    x1 = data.draw(st.integers(min_value=0, max_value=n1))
    x2 = data.draw(st.integers(min_value=0, max_value=n2))
    canary, baseline = _restricted_mle(x1, n1, x2, n2, delta)
    assert canary - baseline == pytest.approx(delta, abs=1e-12)
    assert 0 <= baseline <= canary <= 1
    best = log_likelihood(x1, n1, x2, n2, canary, baseline)
    for nudge in (-1e-4, -1e-7, 1e-7, 1e-4):
        other = min(max(baseline + nudge, 0.0), 1.0 - delta)
        assert best >= log_likelihood(x1, n1, x2, n2, other + delta, other) - 1e-9 * abs(best)


@settings(max_examples=200)
@given(
    n1=st.integers(min_value=10, max_value=10_000),
    n2=st.integers(min_value=10, max_value=10_000),
    data=st.data(),
    delta=st.floats(min_value=0.0, max_value=0.5),
)
def test_it_grows_more_suspicious_with_every_extra_canary_error(n1, n2, data, delta) -> None:
    x1 = data.draw(st.integers(min_value=0, max_value=n1 - 1))
    x2 = data.draw(st.integers(min_value=0, max_value=n2))
    _, p_fewer = _score_test(x1, n1, x2, n2, delta)
    _, p_more = _score_test(x1 + 1, n1, x2, n2, delta)
    assert p_more <= p_fewer + 1e-12
    assert 0.0 <= p_more <= 1.0


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("counts", "field"),
    [
        ((11, 10, 10, 10), "canary_good"),
        ((-1, 10, 10, 10), "canary_good"),
        ((0, -10, 10, 10), "canary_total"),
        ((10, 10, 11, 10), "baseline_good"),
        ((10, 10, 0, -1), "baseline_total"),
        ((10, 10, 5.0, 10), "baseline_good"),
    ],
)
def test_it_rejects_bad_counts_naming_the_field(counts: tuple, field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field} ") as caught:
        canary_verdict(*counts, tolerance=0.0, min_events=1)
    assert caught.value.field == field


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"tolerance": -0.001}, "tolerance"),
        ({"tolerance": 1.0}, "tolerance"),
        ({"tolerance": float("nan")}, "tolerance"),
        ({"confidence": 1.0}, "confidence"),
        ({"confidence": 0.3}, "confidence"),
        ({"confidence": "95%"}, "confidence"),
        ({"min_events": 0}, "min_events"),
        ({"min_events": 10.5}, "min_events"),
    ],
)
def test_it_rejects_bad_options_naming_the_field(options: dict, field: str) -> None:
    arguments = {"tolerance": 0.0, "min_events": 10} | options
    with pytest.raises(InvalidInput, match=f"^{field} ") as caught:
        canary_verdict(90, 100, 90, 100, **arguments)
    assert caught.value.field == field


def test_it_reports_its_figures() -> None:
    result = verdict((120, 10_000), (50, 10_000), tolerance=0.001)
    assert result.figures == {
        "canary_good": 9_880,
        "canary_total": 10_000,
        "canary_bad": 120,
        "canary_error_ratio": 0.012,
        "baseline_good": 9_950,
        "baseline_total": 10_000,
        "baseline_bad": 50,
        "baseline_error_ratio": 0.005,
        "difference": pytest.approx(0.007),
        "tolerance": 0.001,
        "confidence": 0.95,
        "alpha": pytest.approx(0.05),
        "min_events": 100,
        "method": METHOD_SCORE,
        "z": pytest.approx(4.6705, abs=1e-4),
        "p_value": pytest.approx(1.5e-6, rel=0.01),
    }
