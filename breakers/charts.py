"""Server-rendered SVG of the breaker pages: the board's failure-rate sparkline and the
detail page's state timeline.

The detail page's larger failure-rate chart is budgets.charts.line_chart. These two shapes do
not fit it: a sparkline has no axes, legend or padding at 120 x 28, and the timeline draws
bands, not lines. Same habits as budgets.charts: plain strings, every text escaped, colours
from CSS classes, a viewBox so the SVG scales with its container.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

# Tick spacings of the timeline, in seconds; the first that gives at most 8 ticks is used.
TICK_STEPS = [60, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400]


def sparkline(
    values: Sequence[float | None],
    *,
    y_max: float = 100.0,
    width: int = 120,
    height: int = 28,
    title: str = "",
    threshold: float | None = None,
    css: str = "",
    scale: bool = False,
    unit: str = "%",
) -> SafeString:
    """A line of ``values`` (oldest first) from 0 to ``y_max``. ``None`` (nothing was called
    that minute) leaves a gap; a lone point between gaps is drawn as a dot. ``css`` is added
    to the svg's class (the board colours the line by the breaker's state); ``scale`` fits
    ``y_max`` to the values and the threshold and labels it, so 2 % is not a flat line."""
    pad = 2.0
    label_w = 26 if scale else 0
    if scale:
        top = max([v for v in values if v is not None] + [threshold or 0.0, 0.0])
        y_max = min(y_max, nice_ceiling(top))
    plot_w = width - label_w
    step = (plot_w - 2 * pad) / max(len(values) - 1, 1)

    def y(value: float) -> float:
        return pad + (height - 2 * pad) * (1 - max(0.0, min(value, y_max)) / y_max)

    klass = f"spark {css}".strip()
    parts = [
        f'<svg class="{escape(klass)}" viewBox="0 0 {width} {height}" width="{width}" '
        f'height="{height}" role="img" aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<line class="base" x1="0" x2="{plot_w}" y1="{y(0):.1f}" y2="{y(0):.1f}"/>',
    ]
    if scale:
        parts.append(
            f'<line class="axis" x1="{plot_w}" x2="{plot_w}" y1="{y(y_max):.1f}" '
            f'y2="{y(0):.1f}"/><text class="scale" x="{width}" y="{y(y_max) + 6:.1f}" '
            f'text-anchor="end">{y_max:g}{escape(unit)}</text>'
            f'<text class="scale" x="{width}" y="{y(0):.1f}" text-anchor="end">0</text>'
        )
    if threshold is not None and 0 < threshold <= y_max:
        parts.append(
            f'<line class="limit" x1="0" x2="{plot_w}" y1="{y(threshold):.1f}" '
            f'y2="{y(threshold):.1f}"/>'
        )
    segment: list[tuple[float, float]] = []

    def flush() -> None:
        if len(segment) == 1:
            (px, py) = segment[0]
            parts.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="1.5"/>')
        elif segment:
            points = " ".join(f"{px:.1f},{py:.1f}" for px, py in segment)
            parts.append(f'<polyline points="{points}"/>')
        segment.clear()

    for index, value in enumerate(values):
        if value is None:
            flush()
        else:
            segment.append((pad + index * step, y(value)))
    flush()
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5, 10, 20, 50, 100 ... at or above ``value`` (at least 1)."""
    step = 1.0
    while True:
        for factor in (1, 2, 5):
            if value <= step * factor:
                return step * factor
        step *= 10


@dataclass(frozen=True)
class Band:
    """A stretch of time in one state. ``at`` is set for the band a transition opened; the
    band before the first transition shown has none."""

    state: str
    start: datetime
    end: datetime
    note: str = ""
    at: datetime | None = None


def _ticks(start: datetime, end: datetime) -> list[datetime]:
    span = (end - start).total_seconds()
    step = next((s for s in TICK_STEPS if span / s <= 8), TICK_STEPS[-1])
    first = int(start.timestamp()) // step * step + step
    out = []
    moment = first
    while moment < end.timestamp():
        out.append(datetime.fromtimestamp(moment, tz=UTC))
        moment += step
    return out


def _hms(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%S")


def timeline(
    bands: Sequence[Band],
    *,
    start: datetime,
    end: datetime,
    title: str = "",
    width: int = 720,
    height: int = 64,
) -> SafeString:
    """State bands from ``start`` to ``end``, with tick labels in UTC."""
    pad_l, pad_r, band_top, band_h = 8, 36, 4, 30
    plot_w = width - pad_l - pad_r
    span = (end - start).total_seconds() or 1.0

    def x(moment: datetime) -> float:
        return pad_l + plot_w * max(0.0, min(1.0, (moment - start).total_seconds() / span))

    parts = [
        f'<svg class="timeline" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<rect class="track" x="{pad_l}" y="{band_top}" width="{plot_w}" height="{band_h}"/>',
    ]
    for band in bands:
        x1, x2 = x(band.start), x(band.end)
        css = f"band state-{band.state}" + ("" if band.at else " lead")
        data = f' data-at="{escape(band.at.isoformat())}"' if band.at else ""
        label = band.state.replace("_", " ")
        note = f": {band.note}" if band.note else ""
        parts.append(
            f'<rect class="{escape(css)}"{data} x="{x1:.1f}" y="{band_top}" '
            f'width="{max(x2 - x1, 1.0):.1f}" height="{band_h}"><title>'
            f"{escape(label)} {_hms(band.start)} - {_hms(band.end)} UTC{escape(note)}"
            f"</title></rect>"
        )
    axis_y = band_top + band_h
    for tick in _ticks(start, end):
        tx = x(tick)
        parts.append(
            f'<line class="tick" x1="{tx:.1f}" x2="{tx:.1f}" y1="{axis_y}" y2="{axis_y + 4}"/>'
            f'<text x="{tx:.1f}" y="{axis_y + 15}" text-anchor="middle">'
            f"{tick.strftime('%H:%M')}</text>"
        )
    parts.append(f'<text x="{width - 2}" y="{axis_y + 15}" text-anchor="end">UTC</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped
