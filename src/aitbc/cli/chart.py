"""Series drawn in the terminal with plotext: the price history of a model and the rating
history of a GPU. Colour only on a terminal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import plotext

from aitbc.cli.output import cell_text

WIDTH, HEIGHT = 72, 14


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _time_form(seconds: float) -> str:
    """How the dates along the bottom read, by the span they cover (labels that differ)."""
    if seconds <= 3600:
        return "%H:%M:%S"
    return "%H:%M" if seconds <= 86_400 else "%Y-%m-%d"


def line_chart(
    title: str, times: list[str], values: list[float], *, coloured: bool, width: int = WIDTH
) -> str:
    """A line through the points, dates along the bottom, values up the side. A single
    moment or a single value is said, not drawn: an axis around one point has no scale (it
    read -0.60 to 1.40 for a price of 0.40, every date the same)."""
    moments = [_when(t) for t in times]
    if len(set(moments)) == 1:
        return "(one point so far: a chart needs two moments)"
    if len(set(values)) == 1:
        return "(the same value throughout: nothing to chart)"
    figure = plotext.figure
    figure.clear()
    figure.plot_size(max(30, min(width, 120)), HEIGHT)
    figure.theme("default" if coloured else "colorless")
    figure.title(title)
    span = (max(moments) - min(moments)).total_seconds()
    figure.date().activate(form=_time_form(span))
    figure.draw(figure.signal(moments, values).lines())
    drawn: str = figure.build().string(colorless=not coloured)
    figure.clear()
    return drawn


def _span(points: list[dict[str, Any]], time_key: str) -> str:
    first, last = cell_text(points[0][time_key]), cell_text(points[-1][time_key])
    return first if first == last else f"{first} .. {last}"


@dataclass(frozen=True)
class Series:
    """One kind of chart: the points' time field and its words for the value drawn."""

    time_key: str
    what: str  # the caption's name for the value
    title: str


PRICE = Series("at", "current price", "current price per hour")
RATING = Series("period_start", "average rating", "average rating (1-5)")


def _captioned(
    series: Series,
    points: list[dict[str, Any]],
    values: list[Any],
    summary: str,
    *,
    coloured: bool,
    width: int,
) -> str:
    """The line through each point's value (``values``, in the points' order) under a
    caption: what it shows, over which span, and ``summary``."""
    caption = f"{series.what}, {_span(points, series.time_key)}: {summary}"
    times = [p[series.time_key] for p in points]
    chart = line_chart(
        series.title, times, [float(v) for v in values], coloured=coloured, width=width
    )
    return f"{caption}\n{chart}"


def price_chart(points: list[dict[str, Any]], *, coloured: bool = False, width: int = WIDTH) -> str:
    if not points:
        return "(no price history yet)"
    prices = [p["current_price"] for p in points]
    summary = f"low {min(prices, key=float)}, high {max(prices, key=float)}, last {prices[-1]}"
    return _captioned(PRICE, points, prices, summary, coloured=coloured, width=width)


def rating_chart(
    points: list[dict[str, Any]], *, coloured: bool = False, width: int = WIDTH
) -> str:
    rated = [p for p in points if p.get("average_rating") is not None]
    if not rated:
        return "(no ratings yet)"
    ratings = [p["average_rating"] for p in rated]
    summary = f"from {ratings[0]} to {ratings[-1]} over {rated[-1]['review_count']} reviews"
    return _captioned(RATING, rated, ratings, summary, coloured=coloured, width=width)
