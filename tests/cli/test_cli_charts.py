"""The terminal charts: a single point or a flat series is said, not drawn on an axis
without a scale; the dates along the bottom differ from one another."""

from __future__ import annotations

import re

from aitbc.cli.chart import price_chart, rating_chart


def test_a_single_point_is_said_not_drawn() -> None:
    shown = price_chart([{"at": "2030-01-01T04:43:00Z", "current_price": "0.400000"}])
    assert shown.splitlines() == [
        "current price, 2030-01-01 04:43:00Z: low 0.400000, high 0.400000, last 0.400000",
        "(one point so far: a chart needs two moments)",
    ]
    rated = [{"period_start": "2030-01-01T00:00:00Z", "average_rating": "4.00", "review_count": 1}]
    assert "a chart needs two moments" in rating_chart(rated)


def test_a_flat_series_is_said_not_drawn() -> None:
    points = [{"at": f"2030-01-01T0{h}:00:00Z", "current_price": "0.400000"} for h in range(3)]
    assert price_chart(points).splitlines()[-1] == "(the same value throughout: nothing to chart)"


def test_the_dates_along_the_bottom_differ() -> None:
    points = [
        {"at": "2030-01-01T04:43:00Z", "current_price": "0.400000"},
        {"at": "2030-01-01T04:43:40Z", "current_price": "0.500000"},
    ]
    drawn = price_chart(points)
    labels = re.findall(r"\d{2}:\d{2}:\d{2}", drawn.splitlines()[-1])
    assert len(labels) >= 2 and len(set(labels)) == len(labels), drawn
    assert "-0.6" not in drawn and "0.500" in drawn
