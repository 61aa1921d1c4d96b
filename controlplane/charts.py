"""Server-rendered SVG charts of every page: line charts over time (burn-down, burn rate,
failure rate) with markers, sparklines, the breaker state timeline, bars and the service
impact graph.

Plain string building with every text escaped; no JavaScript needed to read a chart. The
SVGs scale with their container (``viewBox``) and take their colours from CSS classes. The
apps hand in plain values (datetimes, floats, labels); nothing here knows their models.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

W, H = 720, 240
PAD_L, PAD_R, PAD_T, PAD_B = 52, 16, 26, 28


@dataclass(frozen=True)
class Marker:
    """A vertical line at a moment on a line chart (a breaker transition, a gate decision)."""

    at: datetime
    kind: str  # css class and legend: "breaker", "gate", "replay"
    label: str  # the tooltip


@dataclass(frozen=True)
class Series:
    label: str
    points: Sequence[tuple[datetime, float]]
    css: str  # class of the path: "actual", "even", "burn"
    step: bool = False  # draw as steps (bars of a bucketed rate)


def _fmt_time(moment: datetime, span_days: float) -> str:
    """An axis label in the viewer's zone (the one the page's tables use)."""
    local = timezone.localtime(moment) if timezone.is_aware(moment) else moment
    return local.strftime("%m-%d" if span_days > 2 else "%H:%M")


def _off_scale(
    series: Sequence[Series],
    y_min: float,
    y_max: float,
    y_format: str,
    x,
    plot_top: float,
    plot_bottom: float,
) -> list[str]:
    """Marks for values outside the y range, so a clipped line never hides them: a triangle
    at the edge for each such point (its value in the tooltip) and the extreme one labelled."""
    parts: list[str] = []
    for s in series:
        high = [(m, v) for m, v in s.points if v > y_max]
        low = [(m, v) for m, v in s.points if v < y_min]
        for points, edge, sign in ((high, plot_top, 1), (low, plot_bottom, -1)):
            for moment, value in points:
                px = x(moment)
                tip = edge + 7 * sign
                parts.append(
                    f'<path class="offscale" d="M{px - 4:.1f},{tip:.1f} L{px:.1f},{edge:.1f} '
                    f'L{px + 4:.1f},{tip:.1f} Z"><title>{escape(s.label)}: '
                    f"{escape(y_format.format(value))} (off scale)</title></path>"
                )
            if points:
                moment, value = max(points, key=lambda p: abs(p[1]))
                parts.append(
                    f'<text class="offscale" x="{min(x(moment) + 6, W - PAD_R - 60):.1f}" '
                    f'y="{edge + 16 * sign:.1f}">{"▲" if sign > 0 else "▼"} '
                    f"{escape(y_format.format(value))} off scale</text>"
                )
    return parts


def line_chart(
    series: Sequence[Series],
    *,
    x_start: datetime,
    x_end: datetime,
    y_min: float,
    y_max: float,
    y_format: str = "{:.0%}",
    references: Sequence[tuple[str, float]] = (),
    title: str = "",
    now: datetime | None = None,
    markers: Sequence[Marker] = (),
) -> SafeString:
    """A line chart over time; ``references`` draws labelled horizontal lines, ``markers``
    vertical ones at moments (breaker transitions, gate decisions, replays) with a tooltip."""
    span = (x_end - x_start).total_seconds() or 1.0
    y_span = (y_max - y_min) or 1.0
    plot_w, plot_h = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def x(moment: datetime) -> float:
        return PAD_L + plot_w * max(0.0, min(1.0, (moment - x_start).total_seconds() / span))

    def y(value: float) -> float:
        clamped = max(y_min, min(y_max, value))
        return PAD_T + plot_h * (1 - (clamped - y_min) / y_span)

    parts = [
        f'<svg class="chart" viewBox="0 0 {W} {H}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        f'<rect class="plot" x="{PAD_L}" y="{PAD_T}" width="{plot_w}" height="{plot_h}"/>',
    ]
    for i in range(5):
        value = y_min + y_span * i / 4
        parts.append(
            f'<line class="grid" x1="{PAD_L}" x2="{W - PAD_R}" y1="{y(value):.1f}" '
            f'y2="{y(value):.1f}"/><text x="{PAD_L - 6}" y="{y(value) + 3:.1f}" '
            f'text-anchor="end">{escape(y_format.format(value))}</text>'
        )
    days = span / 86400
    for i in range(5):
        moment = x_start + (x_end - x_start) * i / 4
        parts.append(
            f'<text x="{x(moment):.1f}" y="{H - 8}" text-anchor="middle">'
            f"{escape(_fmt_time(moment, days))}</text>"
        )
    for label, value in references:
        if y_min <= value <= y_max:
            parts.append(
                f'<line class="ref" x1="{PAD_L}" x2="{W - PAD_R}" y1="{y(value):.1f}" '
                f'y2="{y(value):.1f}"/><text class="ref" x="{W - PAD_R - 4}" '
                f'y="{y(value) - 3:.1f}" text-anchor="end">{escape(label)}</text>'
            )
    if now is not None and x_start <= now <= x_end:
        parts.append(
            f'<line class="now" x1="{x(now):.1f}" x2="{x(now):.1f}" y1="{PAD_T}" y2="{H - PAD_B}"/>'
        )
    for marker in markers:  # the caller chose them for the range; x() keeps them inside
        if marker.at < x_start:
            continue
        mx = x(marker.at)
        kind = escape(marker.kind)
        # A wide transparent line under the thin one: the tooltip is easy to hover.
        parts.append(
            f'<g class="marker marker-{kind}" data-kind="{kind}" '
            f'data-at="{escape(marker.at.isoformat())}"><title>{escape(marker.label)}</title>'
            f'<line class="hit" x1="{mx:.1f}" x2="{mx:.1f}" y1="{PAD_T}" y2="{H - PAD_B}"/>'
            f'<line x1="{mx:.1f}" x2="{mx:.1f}" y1="{PAD_T}" y2="{H - PAD_B}"/>'
            f'<circle cx="{mx:.1f}" cy="{PAD_T}" r="3"/></g>'
        )
    for s in series:
        if not s.points:
            continue
        coords = []
        for index, (moment, value) in enumerate(s.points):
            if s.step and index:
                coords.append(f"{x(moment):.1f},{y(s.points[index - 1][1]):.1f}")
            coords.append(f"{x(moment):.1f},{y(value):.1f}")
        parts.append(
            f'<polyline class="{escape(s.css)}" points="{" ".join(coords)}">'
            f"<title>{escape(s.label)}</title></polyline>"
        )
    parts += _off_scale(series, y_min, y_max, y_format, x, PAD_T, H - PAD_B)
    legend_x = PAD_L + 8
    for s in series:
        parts.append(
            f'<text class="legend {escape(s.css)}" x="{legend_x}" y="{PAD_T - 9}">'
            f"■ {escape(s.label)}</text>"
        )
        legend_x += 12 + 7 * len(s.label)
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped


# --------------------------------------------------------------------------- impact graph


@dataclass(frozen=True)
class Node:
    id: int
    label: str
    css: str  # "frozen", "ok", "critical frozen" ...
    note: str = ""


def _levels(nodes: Sequence[Node], edges: Sequence[tuple[int, int]]) -> dict[int, int]:
    """Column of each node: the longest dependency chain above it (cycles are cut)."""
    ids = {n.id for n in nodes}
    level = dict.fromkeys(ids, 0)
    for _ in range(len(ids)):
        changed = False
        for src, dst in edges:
            if src in ids and dst in ids and level[dst] < level[src] + 1 <= len(ids):
                level[dst] = level[src] + 1
                changed = True
        if not changed:
            break
    return level


def graph_svg(
    nodes: Sequence[Node], edges: Sequence[tuple[int, int]], *, title: str = ""
) -> SafeString:
    """Services left to right, each pointing at what it depends on."""
    if not nodes:
        return mark_safe("")
    level = _levels(nodes, edges)
    columns: dict[int, list[Node]] = defaultdict(list)
    for node in sorted(nodes, key=lambda n: n.label):
        columns[level[node.id]].append(node)
    box_w, box_h, gap_x, gap_y = 150, 34, 70, 18
    width = 20 + len(columns) * (box_w + gap_x)
    height = 20 + max(len(c) for c in columns.values()) * (box_h + gap_y)
    where: dict[int, tuple[float, float]] = {}
    for col, members in columns.items():
        for row, node in enumerate(members):
            where[node.id] = (10 + col * (box_w + gap_x), 10 + row * (box_h + gap_y))
    parts = [
        f'<svg class="graph" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z"/>'
        "</marker></defs>",
    ]
    for src, dst in edges:
        if src in where and dst in where:
            (x1, y1), (x2, y2) = where[src], where[dst]
            parts.append(
                f'<line class="edge" x1="{x1 + box_w:.0f}" y1="{y1 + box_h / 2:.0f}" '
                f'x2="{x2:.0f}" y2="{y2 + box_h / 2:.0f}" marker-end="url(#arrow)"/>'
            )
    for node in nodes:
        x, y = where[node.id]
        parts.append(
            f'<g class="node {escape(node.css)}"><title>{escape(node.note or node.label)}'
            f'</title><rect x="{x:.0f}" y="{y:.0f}" width="{box_w}" height="{box_h}" rx="6"/>'
            f'<text x="{x + box_w / 2:.0f}" y="{y + box_h / 2 + 4:.0f}" '
            f'text-anchor="middle">{escape(node.label)}</text></g>'
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped


# --------------------------------------------------------------------------- sparkline


def burn_sparkline(
    values: Sequence[float], *, width: int = 72, height: int = 18, title: str = ""
) -> SafeString:
    """Burn rate per bucket (oldest first), the dashed line at 1x; the scale grows to the
    highest value, so nothing is clipped."""
    return sparkline(
        values,
        y_max=max([1.5, *values]),
        width=width,
        height=height,
        title=title,
        threshold=1.0,
        css="burn",
    )


# --------------------------------------------------------------------------- bars


def bar_chart(
    rows: Sequence[tuple[str, float]], *, title: str = "", value_format: str = "{:.0%}"
) -> SafeString:
    """Horizontal bars, one per (label, value), longest first as given; scaled to the largest
    value so none is clipped. Readable in print: the value is written beside each bar."""
    if not rows:
        return mark_safe("")
    bar_h, gap, label_w, value_w = 18, 8, 160, 70
    height = PAD_T + len(rows) * (bar_h + gap)
    plot_w = W - label_w - value_w - PAD_R
    top = max((value for _, value in rows), default=0.0) or 1.0
    parts = [
        f'<svg class="chart bars" viewBox="0 0 {W} {height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<text class="legend" x="{label_w}" y="{PAD_T - 9}">{escape(title)}</text>',
    ]
    for index, (label, value) in enumerate(rows):
        y = PAD_T + index * (bar_h + gap)
        width = max(0.0, plot_w * value / top)
        parts.append(
            f'<text x="{label_w - 6}" y="{y + bar_h - 5}" text-anchor="end">{escape(label)}</text>'
            f'<rect class="bar" x="{label_w}" y="{y}" width="{width:.1f}" height="{bar_h}">'
            f"<title>{escape(label)}: {escape(value_format.format(value))}</title></rect>"
            f'<text x="{label_w + width + 6:.1f}" y="{y + bar_h - 5}">'
            f"{escape(value_format.format(value))}</text>"
        )
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped


# --------------------------------------------------------------------------- sparkline and timeline

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
    """A time of day in the viewer's zone (the page's), like every other axis."""
    return timezone.localtime(moment).strftime("%H:%M:%S")


def timeline(
    bands: Sequence[Band],
    *,
    start: datetime,
    end: datetime,
    title: str = "",
    width: int = 720,
    height: int = 64,
) -> SafeString:
    """State bands from ``start`` to ``end``, with tick labels in the viewer's zone."""
    zone = timezone.get_current_timezone_name()
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
            f"{escape(label)} {_hms(band.start)} - {_hms(band.end)} {escape(zone)}{escape(note)}"
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
    parts.append(f'<text x="{width - 2}" y="{axis_y + 15}" text-anchor="end">{escape(zone)}</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated text is escaped
