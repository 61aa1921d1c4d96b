"""Canary verdicts: is the canary's error ratio worse than the baseline's beyond a tolerance?

Pure Python, standard library only, no Django.

The question is one-sided: H0 "canary error ratio <= baseline error ratio + tolerance"
against H1 "canary error ratio > baseline error ratio + tolerance". Rejecting H0 at the
chosen confidence means rollback; otherwise promote. Either side with fewer than
``min_events`` events gives "inconclusive" without testing.

The test is the Farrington-Manning score z-test for a difference of two proportions with a
margin. With a zero tolerance it is exactly the classic pooled two-proportion z-test; with a
positive tolerance its variance comes from the proportions fitted under H0, so it stays
well defined when a side has no errors at all (the unpooled Wald z-test divides by zero
there). When the tolerance is zero and a 2x2 cell is expected to hold fewer than 5 events,
the normal approximation is poor and the one-sided Fisher exact test is used instead.
docs/budgets.md gives the formulas and the reasons.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import StrEnum
from numbers import Integral, Real

from .budget import InvalidInput, validate_counts

__all__ = ["FISHER_MIN_EXPECTED", "Decision", "Verdict", "canary_verdict"]

FISHER_MIN_EXPECTED = 5  # below this expected count in any cell, use Fisher (tolerance 0)
METHOD_SCORE = "Farrington-Manning score z-test"
METHOD_FISHER = "Fisher exact test"


class Decision(StrEnum):
    PROMOTE = "promote"
    ROLLBACK = "rollback"
    INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True, slots=True)
class Verdict:
    decision: Decision
    explanation: str
    figures: dict[str, object] = field(default_factory=dict)


def _normal_sf(z: float) -> float:
    """P(Z > z) for a standard normal Z (erfc keeps precision far in the tail)."""
    return 0.5 * math.erfc(z / math.sqrt(2.0))


def _restricted_mle(
    canary_bad: int, canary_total: int, baseline_bad: int, baseline_total: int, margin: float
) -> tuple[float, float]:
    """Maximum-likelihood (canary, baseline) error ratios subject to canary - baseline = margin.

    This is the Farrington-Manning (1990) fit under H0. With margin 0 it is the pooled
    ratio. Otherwise the log-likelihood is concave in the baseline ratio q, so its
    derivative falls monotonically over [0, 1 - margin] and bisection finds the root to
    full float precision (the published cubic-root formula loses digits near 0 and 1).
    """
    if margin == 0:
        pooled = (canary_bad + baseline_bad) / (canary_total + baseline_total)
        return pooled, pooled
    terms = (  # (events, sign, offset): events * d/dq log(q + offset or 1 - q - offset)
        (canary_bad, 1.0, margin),
        (canary_total - canary_bad, -1.0, margin),
        (baseline_bad, 1.0, 0.0),
        (baseline_total - baseline_bad, -1.0, 0.0),
    )

    def slope(q: float) -> float:
        total = 0.0
        for count, sign, offset in terms:
            if count:
                base = q + offset if sign > 0 else 1.0 - q - offset
                if base <= 0:
                    return math.inf * sign
                total += sign * count / base
        return total

    low, high = 0.0, 1.0 - margin
    if slope(low) <= 0:
        return margin, 0.0
    if slope(high) >= 0:
        return 1.0, high
    for _ in range(2000):
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if slope(middle) > 0:
            low = middle
        else:
            high = middle
    baseline = (low + high) / 2
    return baseline + margin, baseline


def _score_test(
    canary_bad: int, canary_total: int, baseline_bad: int, baseline_total: int, margin: float
) -> tuple[float, float]:
    """(z, one-sided p-value) of H1: canary ratio - baseline ratio > margin."""
    canary_fit, baseline_fit = _restricted_mle(
        canary_bad, canary_total, baseline_bad, baseline_total, margin
    )
    variance = (
        canary_fit * (1 - canary_fit) / canary_total
        + baseline_fit * (1 - baseline_fit) / baseline_total
    )
    excess = canary_bad / canary_total - baseline_bad / baseline_total - margin
    if variance <= 0:  # both sides all good or all bad, margin 0: no evidence either way
        z = 0.0 if abs(excess) < 1e-12 else math.copysign(math.inf, excess)
    else:
        z = excess / math.sqrt(variance)
    return z, _normal_sf(z)


def _log_choose(n: int, k: int) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def _fisher_greater(
    canary_bad: int, canary_total: int, baseline_bad: int, baseline_total: int
) -> float:
    """One-sided Fisher exact p-value: P(canary errors >= observed | all margins fixed)."""
    bad = canary_bad + baseline_bad
    good = canary_total + baseline_total - bad
    low, high = max(0, canary_total - good), min(bad, canary_total)
    logs = [_log_choose(bad, x) + _log_choose(good, canary_total - x) for x in range(low, high + 1)]
    top = max(logs)
    weights = [math.exp(value - top) for value in logs]
    return min(1.0, math.fsum(weights[canary_bad - low :]) / math.fsum(weights))


def _percent(ratio: float) -> str:
    return f"{ratio * 100:.3g}%"


def _points(difference: float) -> str:
    value = f"{abs(difference) * 100:.3g}"
    return f"{value} percentage point{'' if value == '1' else 's'}"


def _p_value(p: float) -> str:
    return "less than 0.0001" if p < 0.0001 else f"{p:.2g}"


def _finite_real(value: object, name: str) -> Real:
    if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value):
        raise InvalidInput(name, f"must be a finite number, got {value!r}")
    return value


def _validate_options(tolerance: object, confidence: object, min_events: object) -> None:
    # Reassigned so that the range checks below see the narrowed type.
    tolerance = _finite_real(tolerance, "tolerance")
    confidence = _finite_real(confidence, "confidence")
    # Real declares < and <= only, so the bounds are written with the value on the left.
    if tolerance < 0 or not tolerance < 1:
        raise InvalidInput("tolerance", f"must satisfy 0 <= tolerance < 1, got {tolerance}")
    if confidence < 0.5 or not confidence < 1:
        raise InvalidInput("confidence", f"must satisfy 0.5 <= confidence < 1, got {confidence}")
    if isinstance(min_events, bool) or not isinstance(min_events, Integral) or min_events < 1:
        raise InvalidInput("min_events", f"must be a whole number >= 1, got {min_events!r}")


def canary_verdict(
    canary_good: int,
    canary_total: int,
    baseline_good: int,
    baseline_total: int,
    *,
    tolerance: float,
    confidence: float = 0.95,
    min_events: int,
) -> Verdict:
    """Promote, roll back or wait, from good/total event counts of canary and baseline.

    ``tolerance`` is the error-ratio increase accepted (0.001 = 0.1 percentage point).
    Rollback when "canary error ratio > baseline error ratio + tolerance" is significant at
    ``confidence`` (p-value below ``1 - confidence``); promote otherwise; inconclusive when
    either side has fewer than ``min_events`` events.
    """
    canary_good, canary_total = validate_counts(
        canary_good, canary_total, good_field="canary_good", total_field="canary_total"
    )
    baseline_good, baseline_total = validate_counts(
        baseline_good, baseline_total, good_field="baseline_good", total_field="baseline_total"
    )
    _validate_options(tolerance, confidence, min_events)
    tolerance, confidence = float(tolerance), float(confidence)
    alpha = 1.0 - confidence
    canary_bad, baseline_bad = canary_total - canary_good, baseline_total - baseline_good
    figures: dict[str, object] = {
        "canary_good": canary_good,
        "canary_total": canary_total,
        "canary_bad": canary_bad,
        "canary_error_ratio": canary_bad / canary_total if canary_total else None,
        "baseline_good": baseline_good,
        "baseline_total": baseline_total,
        "baseline_bad": baseline_bad,
        "baseline_error_ratio": baseline_bad / baseline_total if baseline_total else None,
        "difference": None,
        "tolerance": tolerance,
        "confidence": confidence,
        "alpha": alpha,
        "min_events": int(min_events),
        "method": None,
        "z": None,
        "p_value": None,
    }
    short = [
        f"the {side} has only {total:,} event{'' if total == 1 else 's'}"
        for side, total in (("canary", canary_total), ("baseline", baseline_total))
        if total < min_events
    ]
    if short:
        return Verdict(
            Decision.INCONCLUSIVE,
            f"Inconclusive: not enough traffic to judge yet; {' and '.join(short)}, "
            f"and each side needs at least {min_events:,} before the comparison is made.",
            figures,
        )

    canary_ratio, baseline_ratio = canary_bad / canary_total, baseline_bad / baseline_total
    difference = canary_ratio - baseline_ratio
    total_bad = canary_bad + baseline_bad
    total_events = canary_total + baseline_total
    smallest_expected = min(
        side * count / total_events
        for side in (canary_total, baseline_total)
        for count in (total_bad, total_events - total_bad)
    )
    if tolerance == 0 and smallest_expected < FISHER_MIN_EXPECTED:
        method, z = METHOD_FISHER, None
        p_value = _fisher_greater(canary_bad, canary_total, baseline_bad, baseline_total)
    else:
        method = METHOD_SCORE
        z, p_value = _score_test(canary_bad, canary_total, baseline_bad, baseline_total, tolerance)
    figures.update(difference=difference, method=method, z=z, p_value=p_value)

    observed = (
        f"the canary failed {canary_bad:,} of {canary_total:,} events "
        f"({_percent(canary_ratio)}) and the baseline {baseline_bad:,} of "
        f"{baseline_total:,} ({_percent(baseline_ratio)}), so the canary's error ratio is "
    )
    if difference > 0:
        observed += f"{_points(difference)} higher"
    elif difference < 0:
        observed += f"{_points(difference)} lower"
    else:
        observed += "the same as the baseline's"
    observed += (
        f", with {_points(tolerance)} allowed" if tolerance else ", with no increase allowed"
    )
    chance = (
        f"a result at least this bad for the canary would show up by chance with probability "
        f"{_p_value(p_value)}, and rolling back needs less than {alpha:.2g} "
        f"({confidence * 100:g}% confidence, {method})"
    )
    if p_value < alpha:
        return Verdict(
            Decision.ROLLBACK,
            f"Roll back: {observed}. If the canary were really within the allowance, {chance}.",
            figures,
        )
    return Verdict(
        Decision.PROMOTE,
        f"Promote: {observed}. That is no significant regression: within the allowance, {chance}.",
        figures,
    )
