"""Charts drawn on the server as inline SVG (no chart library, no script): the geometry here, the markup in
templates/_bars.svg.j2."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from helpgate.tickets.reports import Day

WIDTH, HEIGHT, AXIS = 720, 180, 20  # the plot's size in SVG units, and room under it for the dates


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    series: str  # "opened" or "solved": the CSS class that colours it
    title: str  # shown on hover


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    labels: list[tuple[float, str]]  # (x, text) under some bars
    top: int  # the value the plot's height stands for


def _label(day: date) -> str:
    return day.strftime("%d %b")


def opened_and_solved(days: list[Day]) -> Chart:
    """Two bars a day, opened then solved, scaled to the busiest day; about eight dates along the bottom."""
    top = max([1, *(max(day.opened, day.solved) for day in days)])
    slot = WIDTH / max(1, len(days))
    bar = max(1.0, slot * 0.4)
    bars: list[Bar] = []
    labels: list[tuple[float, str]] = []
    every = max(1, len(days) // 8)
    for index, day in enumerate(days):
        left = index * slot + slot * 0.1
        for offset, (series, value) in enumerate((("opened", day.opened), ("solved", day.solved))):
            height = HEIGHT * value / top
            bars.append(
                Bar(
                    x=round(left + offset * bar, 2),
                    y=round(HEIGHT - height, 2),
                    width=round(bar, 2),
                    height=round(height, 2),
                    series=series,
                    title=f"{day.day.isoformat()}: {value} {series}",
                )
            )
        if index % every == 0:
            labels.append((round(left, 2), _label(day.day)))
    return Chart(width=WIDTH, height=HEIGHT + AXIS, bars=bars, labels=labels, top=top)


def duration(seconds: float | None) -> str:
    """A duration as people read it: 45 s, 12 min, 3.5 h, 2.1 d; an em dash for none."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"
