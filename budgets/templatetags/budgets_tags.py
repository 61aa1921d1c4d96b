"""Formatting for budget figures: shares, burn rates and spans of time."""

from __future__ import annotations

from datetime import timedelta

from django import template

register = template.Library()


@register.filter
def pct(value, digits: int = 1) -> str:
    """0.853 -> "85.3 %"."""
    if value is None:
        return "—"
    return f"{float(value) * 100:.{int(digits)}f} %"


@register.filter
def target_pct(value) -> str:
    """0.999 -> "99.9 %" (as many digits as the target has)."""
    if value is None:
        return "—"
    text = f"{float(value) * 100:.4f}".rstrip("0").rstrip(".")
    return f"{text} %"


@register.filter
def rate(value) -> str:
    """A burn rate: 14.4 -> "14.4x"."""
    if value is None:
        return "—"
    value = float(value)
    return f"{value:.0f}x" if value >= 100 else f"{value:.2g}x" if value < 10 else f"{value:.1f}x"


@register.filter
def span(value: timedelta | None) -> str:
    """A duration for people: "3 d 4 h", "45 min", "never"."""
    if value is None:
        return "never"
    seconds = int(value.total_seconds())
    if seconds <= 0:
        return "now"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    if days >= 365:
        return "over a year"
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{max(minutes, 1)} min"


@register.filter
def seconds(value) -> str:
    """A number of seconds as span() writes it."""
    return span(timedelta(seconds=int(value))) if value is not None else "—"


@register.filter
def burn_class(value, threshold=1.0) -> str:
    """CSS badge class for a burn rate: good under 1x, warn above, bad above ``threshold``."""
    value = float(value or 0)
    if value > float(threshold):
        return "bad"
    return "warn" if value > 1 else "good"


@register.filter
def remaining_class(value) -> str:
    value = float(value)
    if value <= 0.2:
        return "bad"
    return "warn" if value <= 0.5 else "good"


@register.filter
def bar(value) -> int:
    """A share as a bar width in percent, clamped to 0..100."""
    return max(0, min(100, round(float(value or 0) * 100)))
