"""Stacked bar charts of the overview, drawn on the server as inline SVG.

The console's CSP allows no inline script and no inline ``style`` attribute, and it loads
nothing from another host, so a chart is SVG markup built here (presentation attributes only)
and shown as it comes. Each chart is an image with a title and a description (``role="img"``,
``aria-labelledby``); the numbers themselves are in a table next to it (:class:`Chart` gives the
template both). Each series has a colour with at least 3:1 contrast against white *and* a
pattern of its own, and the legend names it, so the bars read without colour (or in print).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from markupsafe import Markup, escape

# (colour, pattern) per series, in order. The colours are dark enough for 3:1 against the white
# page (WCAG 1.4.11); the patterns (white marks over the colour) tell series apart without it.
_STYLES = (
    ("#1e6b34", "solid"),
    ("#8a5a00", "diagonal"),
    ("#b3261e", "dots"),
    ("#0b57b0", "cross"),
    ("#6a1b9a", "horizontal"),
    ("#00695c", "vertical"),
    ("#ad1457", "back-diagonal"),
    ("#37474f", "grid-dots"),
)

_WIDTH, _HEIGHT = 720, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 48, 8, 12, 36


@dataclass(frozen=True)
class Series:
    key: str
    label: str
    colour: str
    pattern: str


@dataclass(frozen=True)
class Chart:
    """One chart: buckets (oldest first), series, and the counts of each."""

    ident: str
    title: str
    description: str
    buckets: tuple[datetime, ...]
    bucket_labels: tuple[str, ...]
    series: tuple[Series, ...]
    counts: Mapping[tuple[int, str], int]
    """(bucket number, series key) → count."""

    def count(self, bucket: int, key: str) -> int:
        return self.counts.get((bucket, key), 0)

    def bucket_total(self, bucket: int) -> int:
        return sum(self.count(bucket, s.key) for s in self.series)

    def series_total(self, key: str) -> int:
        return sum(self.count(b, key) for b in range(len(self.buckets)))

    @property
    def svg(self) -> Markup:
        return Markup(_svg(self))

    def swatch(self, number: int) -> Markup:
        """Series ``number``'s colour and pattern as a small square, for the legend."""
        return legend_swatch(self, number)


def chart(
    ident: str,
    title: str,
    buckets: Sequence[datetime],
    labels: Sequence[str],
    counts: Mapping[tuple[int, str], int],
    series: Sequence[tuple[str, str]],
) -> Chart:
    """A chart of ``counts`` over ``buckets``; ``series`` is (key, label), drawn in order."""
    styled = tuple(
        Series(key, label, *_STYLES[n % len(_STYLES)]) for n, (key, label) in enumerate(series)
    )
    totals = [sum(counts.get((b, k), 0) for k, _ in series) for b in range(len(buckets))]
    busiest = max(totals, default=0)
    description = (
        f"{sum(totals):,} in all over {len(buckets)} bars; the busiest bar holds {busiest:,}. "
        "The same numbers are in the table below the chart."
    )
    return Chart(ident, title, description, tuple(buckets), tuple(labels), styled, dict(counts))


def _scale_top(largest: int) -> int:
    """The y axis's top: ``largest`` rounded up to a multiple of a round step (1, 2 or 5 ×
    10^n) about a quarter of it, so the tallest bar fills most of the chart."""
    if largest <= 4:
        return max(largest, 1)
    magnitude = 1
    while True:
        for step in (magnitude, 2 * magnitude, 5 * magnitude):
            if step * 4 >= largest:
                return -(-largest // step) * step
        magnitude *= 10


def _patterns(chart: Chart) -> list[str]:
    out = []
    for n, s in enumerate(chart.series):
        pid = f"{chart.ident}-p{n}"
        marks = {
            "solid": "",
            "diagonal": '<path d="M0 8 L8 0" stroke="#fff" stroke-width="1.5"/>',
            "back-diagonal": '<path d="M0 0 L8 8" stroke="#fff" stroke-width="1.5"/>',
            "dots": '<circle cx="4" cy="4" r="1.5" fill="#fff"/>',
            "grid-dots": '<circle cx="2" cy="2" r="1" fill="#fff"/>'
            '<circle cx="6" cy="6" r="1" fill="#fff"/>',
            "cross": '<path d="M0 4 H8 M4 0 V8" stroke="#fff" stroke-width="1"/>',
            "horizontal": '<path d="M0 4 H8" stroke="#fff" stroke-width="1.5"/>',
            "vertical": '<path d="M4 0 V8" stroke="#fff" stroke-width="1.5"/>',
        }[s.pattern]
        out.append(
            f'<pattern id="{pid}" width="8" height="8" patternUnits="userSpaceOnUse">'
            f'<rect width="8" height="8" fill="{s.colour}"/>{marks}</pattern>'
        )
    return out


def _svg(chart: Chart) -> str:
    n = max(len(chart.buckets), 1)
    plot_w = _WIDTH - _LEFT - _RIGHT
    plot_h = _HEIGHT - _TOP - _BOTTOM
    top = _scale_top(max((chart.bucket_total(b) for b in range(len(chart.buckets))), default=0))
    slot = plot_w / n
    bar = max(slot * 0.75, 1.0)
    ident = escape(chart.ident)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {_WIDTH} {_HEIGHT}" '
        f'width="100%" class="chart" role="img" '
        f'aria-labelledby="{ident}-title {ident}-desc" focusable="false">',
        f'<title id="{ident}-title">{escape(chart.title)}</title>',
        f'<desc id="{ident}-desc">{escape(chart.description)}</desc>',
        "<defs>",
        *_patterns(chart),
        "</defs>",
    ]
    base = _TOP + plot_h
    # The y axis: 0, half and the top, with faint grid lines.
    for value in sorted({0, top // 2, top}):
        y = base - plot_h * value / top
        parts.append(
            f'<line x1="{_LEFT}" x2="{_WIDTH - _RIGHT}" y1="{y:.1f}" y2="{y:.1f}" '
            'stroke="#d6d6d6" stroke-width="1"/>'
            f'<text x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11" '
            f'fill="#3d3d3d">{value:,}</text>'
        )
    # At most about 12 labels on the x axis, and each with room for its text (about 6.5 px a
    # character at 11 px), so dated hourly labels ("06 Dec 14:00") do not overlap.
    longest = max((len(label) for label in chart.bucket_labels), default=0)
    every = max(1, -(-n // 12), math.ceil((longest * 6.5 + 8) / slot))
    for b in range(len(chart.buckets)):
        x = _LEFT + slot * b + (slot - bar) / 2
        y = float(base)
        for number, s in enumerate(chart.series):
            value = chart.count(b, s.key)
            if not value:
                continue
            h = plot_h * value / top
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="url(#{ident}-p{number})" stroke="#fff" stroke-width="0.5">'
                f"<title>{escape(chart.bucket_labels[b])}: {escape(s.label)} {value:,}</title>"
                "</rect>"
            )
        if b % every == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{base + 16}" text-anchor="middle" '
                f'font-size="11" fill="#3d3d3d">{escape(chart.bucket_labels[b])}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def legend_swatch(chart: Chart, number: int) -> Markup:
    """A small SVG square in series ``number``'s colour and pattern, for the legend."""
    s = chart.series[number]
    pid = f"{chart.ident}-l{number}"
    marks = _patterns(chart)[number].replace(f'id="{chart.ident}-p{number}"', f'id="{pid}"')
    return Markup(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="16" height="16" viewBox="0 0 16 16" '
        f'aria-hidden="true" focusable="false"><defs>{marks}</defs>'
        f'<rect width="16" height="16" fill="url(#{pid})" stroke="{s.colour}"/></svg>'
    )
