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


def line_chart(
    title: str, times: list[str], values: list[float], *, coloured: bool, width: int = WIDTH
) -> str:
    """A line through the points, dates along the bottom, values up the side."""
    figure = plotext.figure
    figure.clear()
    figure.plot_size(max(30, min(width, 120)), HEIGHT)
    figure.theme("default" if coloured else "colorless")
    figure.title(title)
    moments = [_when(t) for t in times]
    within_a_day = (max(moments) - min(moments)).total_seconds() <= 86_400
    figure.date().activate(form="%H:%M" if within_a_day else "%Y-%m-%d")
    figure.draw(figure.signal(moments, values).lines())
    drawn: str = figure.build().string(colorless=not coloured)
    figure.clear()
    return drawn


def _span(points: list[dict[str, Any]], time_key: str) -> str:
    return f"{cell_text(points[0][time_key])} .. {cell_text(points[-1][time_key])}"


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
