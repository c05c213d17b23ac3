"""A price series drawn in the terminal: one column per point, eight block heights."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[Decimal]) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    span = high - low
    if span == 0:
        return BLOCKS[3] * len(values)
    return "".join(BLOCKS[int((v - low) / span * (len(BLOCKS) - 1))] for v in values)


def price_chart(points: list[dict[str, Any]], width: int = 60) -> str:
    if not points:
        return "(no price history yet)"
    points = points[-width:]
    prices = [Decimal(p["current_price"]) for p in points]
    return "\n".join(
        [
            f"current price, {points[0]['at']} .. {points[-1]['at']}",
            f"{max(prices)} ┤",
            f"{'':>{len(str(max(prices)))}} │{sparkline(prices)}",
            f"{min(prices)} ┤",
        ]
    )
