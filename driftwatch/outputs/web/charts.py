"""Inline SVG charts: grouped bars of two distributions and a line of a statistic over runs.

Geometry is computed in a fixed viewBox, then written out as SVG markup here rather than in a template: a page of
50 features has ~1,000 bars and ~3,000 points, and a template expression per attribute costs more than the rest
of the page. Every text that reaches the markup (labels, tooltips) goes through `markupsafe.escape`; everything
else is a number formatted here or a fixed string.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

#: Bar chart viewBox: width, height, left margin (for the axis labels), bottom margin.
BAR_WIDTH, BAR_HEIGHT = 320.0, 120.0
BAR_LEFT, BAR_BOTTOM = 34.0, 16.0
#: Horizontal (category) bar chart: label column width and the height of one category's row.
LABEL_WIDTH, ROW_HEIGHT = 118.0, 18.0
#: Line chart viewBox.
LINE_WIDTH, LINE_HEIGHT, LINE_PAD = 160.0, 44.0, 4.0


@dataclass(frozen=True)
class Bar:
    """One bar: its box in the viewBox, which series it belongs to (`reference` | `current`) and a tooltip."""

    x: float
    y: float
    width: float
    height: float
    series: str
    title: str


@dataclass(frozen=True)
class Label:
    """A text label at (x, y); `anchor` is the SVG text-anchor."""

    x: float
    y: float
    text: str
    anchor: str = "middle"
    new: bool = False


@dataclass(frozen=True)
class BarChart:
    """A chart of reference vs current shares: its viewBox size, bars, labels and y-axis ticks."""

    width: float
    height: float
    bars: tuple[Bar, ...]
    labels: tuple[Label, ...]
    ticks: tuple[Label, ...]
    grid: tuple[float, ...]  # y (vertical chart) or x (horizontal chart) of the tick lines
    horizontal: bool


def _scale_top(shares: Sequence[float]) -> float:
    """A round top for the share axis: the next 5% step above the largest share (at least 5%)."""
    peak = max(shares, default=0.0)
    return max(0.05, math.ceil(peak * 20 - 1e-9) / 20)


def vertical_bars(
    groups: Sequence[str], reference: Sequence[float], current: Sequence[float], axis: Sequence[Label] = ()
) -> BarChart:
    """Grouped vertical bars, one group per bin (reference left, current right), shares 0 at the bottom."""
    top = _scale_top([*reference, *current])
    plot_w, plot_h = BAR_WIDTH - BAR_LEFT - 2, BAR_HEIGHT - BAR_BOTTOM - 6
    step = plot_w / max(len(groups), 1)
    bar_w = step * 0.4
    bars = []
    for i, (name, r, c) in enumerate(zip(groups, reference, current, strict=True)):
        x0 = BAR_LEFT + i * step + step * 0.1
        for offset, share, series in ((0.0, r, "reference"), (bar_w, c, "current")):
            h = plot_h * min(share, top) / top
            bars.append(Bar(x0 + offset, 6 + plot_h - h, bar_w, h, series, f"{name}: {series} {share:.1%}"))
    ticks = tuple(Label(BAR_LEFT - 4, 6 + plot_h - plot_h * f + 3, _percent(top * f), "end") for f in (0, 0.5, 1))
    grid = tuple(6 + plot_h - plot_h * f for f in (0.5, 1))
    return BarChart(BAR_WIDTH, BAR_HEIGHT, tuple(bars), tuple(axis), ticks, grid, False)


def bin_axis(edges: Sequence[float], text: Sequence[str]) -> tuple[Label, ...]:
    """Labels of the inner edges under a vertical bin chart: at most five, evenly picked, at their bin bounds."""
    if not edges:
        return ()
    plot_w = BAR_WIDTH - BAR_LEFT - 2
    step = plot_w / (len(edges) + 1)
    picks = sorted({round(k * (len(edges) - 1) / 4) for k in range(5)}) if len(edges) > 5 else range(len(edges))
    labels: list[Label] = []
    for i in picks:
        if not labels or labels[-1].text != text[i]:  # a point-mass bin's two edges print alike
            labels.append(Label(BAR_LEFT + (i + 1) * step, BAR_HEIGHT - 3, text[i]))
    return tuple(labels)


def horizontal_bars(
    names: Sequence[str], reference: Sequence[float], current: Sequence[float], new: Sequence[bool]
) -> BarChart:
    """Grouped horizontal bars, one row per category (reference above, current below), names on the left."""
    top = _scale_top([*reference, *current])
    height = ROW_HEIGHT * len(names) + 16
    plot_w = BAR_WIDTH - LABEL_WIDTH - 8
    bar_h = ROW_HEIGHT * 0.38
    bars, labels = [], []
    for i, (name, r, c, fresh) in enumerate(zip(names, reference, current, new, strict=True)):
        y0 = 2 + i * ROW_HEIGHT
        shown = _shorten(name, 13) + " (new)" if fresh else _shorten(name, 22)
        labels.append(Label(LABEL_WIDTH - 4, y0 + ROW_HEIGHT * 0.55, shown, "end", fresh))
        for offset, share, series in ((0.0, r, "reference"), (bar_h, c, "current")):
            w = plot_w * min(share, top) / top
            bars.append(Bar(LABEL_WIDTH, y0 + 1 + offset, w, bar_h, series, f"{name}: {series} {share:.1%}"))
    ticks = tuple(
        Label(LABEL_WIDTH + plot_w * f, height - 3, _percent(top * f), anchor)
        for f, anchor in ((0, "middle"), (0.5, "middle"), (1, "end"))
    )
    grid = tuple(LABEL_WIDTH + plot_w * f for f in (0.5, 1))
    return BarChart(BAR_WIDTH, height, tuple(bars), tuple(labels), ticks, grid, True)


def _percent(share: float) -> str:
    """An axis tick: whole percents, one decimal where needed (12.5%)."""
    percent = share * 100
    return f"{percent:.0f}%" if abs(percent - round(percent)) < 1e-9 else f"{percent:.1f}%"


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


@dataclass(frozen=True)
class Line:
    """A statistic over runs: the polyline's points (viewBox coordinates), the value range and the last value."""

    width: float
    height: float
    points: str
    dots: tuple[tuple[float, float], ...]
    low: float
    high: float


def line(values: Sequence[float | None]) -> Line | None:
    """A line through the finite `values` (oldest first; gaps skipped), scaled from 0 to the largest; None if
    fewer than one value is finite."""
    known = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if not known:
        return None
    high = max(max(v for _, v in known), 1e-9)
    span_x = LINE_WIDTH - 2 * LINE_PAD
    span_y = LINE_HEIGHT - 2 * LINE_PAD
    last = max(len(values) - 1, 1)
    dots = tuple((LINE_PAD + span_x * i / last, LINE_PAD + span_y * (1 - v / high)) for i, v in known)
    return Line(LINE_WIDTH, LINE_HEIGHT, " ".join(f"{x:.1f},{y:.1f}" for x, y in dots), dots, 0.0, high)


def bars_svg(chart: BarChart, caption_id: str) -> Markup:
    """The SVG element of a bar chart, labelled by the element with id `caption_id`."""
    parts = [
        f'<svg class="chart" viewBox="0 0 {chart.width:.0f} {chart.height:.0f}" role="img" '
        f'aria-labelledby="{escape(caption_id)}">'
    ]
    for g in chart.grid:
        if chart.horizontal:
            parts.append(f'<line class="gridline" x1="{g:.1f}" x2="{g:.1f}" y1="0" y2="{chart.height - 12:.1f}"/>')
        else:
            parts.append(
                f'<line class="gridline" x1="{BAR_LEFT:.0f}" x2="{chart.width:.0f}" y1="{g:.1f}" y2="{g:.1f}"/>'
            )
    for b in chart.bars:
        parts.append(
            f'<rect class="bar {b.series}" x="{b.x:.2f}" y="{b.y:.2f}" width="{b.width:.2f}" height="{b.height:.2f}">'
            f"<title>{escape(b.title)}</title></rect>"
        )
    for t in (*chart.ticks, *chart.labels):
        css = ' class="new"' if t.new else ""
        parts.append(f'<text x="{t.x:.1f}" y="{t.y:.1f}" text-anchor="{t.anchor}"{css}>{escape(t.text)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def line_svg(chart: Line, label: str) -> Markup:
    """The SVG element of a line over runs, with an accessible name from `label`."""
    base = chart.height - LINE_PAD
    parts = [
        f'<svg viewBox="0 0 {chart.width:.0f} {chart.height:.0f}" role="img" '
        f'aria-label="{escape(label)} over the last {len(chart.dots)} runs, 0 to {chart.high:.3f}">',
        f'<line class="axis" x1="0" x2="{chart.width:.0f}" y1="{base:.1f}" y2="{base:.1f}"/>',
    ]
    if len(chart.dots) > 1:
        parts.append(f'<polyline points="{chart.points}"/>')
    x, y = chart.dots[-1]  # the latest run
    parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2"/>')
    parts.append("</svg>")
    return Markup("".join(parts))
