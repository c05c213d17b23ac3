"""Series drawn in the terminal with plotext: the price history of a model and the rating
history of a GPU. Colour only on a terminal."""

from __future__ import annotations

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


def price_chart(points: list[dict[str, Any]], *, coloured: bool = False, width: int = WIDTH) -> str:
    if not points:
        return "(no price history yet)"
    prices = [p["current_price"] for p in points]
    caption = (
        f"current price, {_span(points, 'at')}: "
        f"low {min(prices, key=float)}, high {max(prices, key=float)}, last {prices[-1]}"
    )
    chart = line_chart(
        "current price per hour",
        [p["at"] for p in points],
        [float(p) for p in prices],
        coloured=coloured,
        width=width,
    )
    return f"{caption}\n{chart}"


def rating_chart(
    points: list[dict[str, Any]], *, coloured: bool = False, width: int = WIDTH
) -> str:
    rated = [p for p in points if p.get("average_rating") is not None]
    if not rated:
        return "(no ratings yet)"
    ratings = [p["average_rating"] for p in rated]
    caption = (
        f"average rating, {_span(rated, 'period_start')}: "
        f"from {ratings[0]} to {ratings[-1]} over {rated[-1]['review_count']} reviews"
    )
    chart = line_chart(
        "average rating (1-5)",
        [p["period_start"] for p in rated],
        [float(r) for r in ratings],
        coloured=coloured,
        width=width,
    )
    return f"{caption}\n{chart}"
