"""What a GPU costs now, for a renter choosing how to rent it: its on-demand price, the
least interruptible bid it takes, the lowest bid that would win it now (above the bid of an
interruptible booking holding it; none while it is held on demand), and the bids that
recently won it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from aitbc.bookings.preemption import INTERRUPTIBLE, winning_bid
from aitbc.config import Settings
from aitbc.kit.money import units_text
from aitbc.store.conn import Conn
from aitbc.store.query import Query
from aitbc.store.values import as_time, iso

RECENT_CLEARING = 10
# The GPU, with the booking holding it now (an open one covering now, or a preempted one
# in its notice), if any.
_GPU_NOW = Query(
    """
    SELECT g.effective_price_units, g.interruptible, g.min_bid_units, h.rental_type,
           h.price_units AS held_units, h.until
    FROM gpus g LEFT JOIN (
        SELECT rental_type, price_units,
               CASE WHEN status = 'open' THEN end_time ELSE ended_at END AS until
        FROM bookings WHERE gpu_id = $1 AND start_time <= $2
          AND ((status = 'open' AND end_time > $2) OR (status = 'preempted' AND ended_at > $2))
        ORDER BY start_time DESC LIMIT 1) h ON true
    WHERE g.id = $1
    """
)
_CLEARED = Query(
    "SELECT price_units, created_at FROM bookings WHERE gpu_id = $1 "
    "AND rental_type = 'interruptible' ORDER BY created_at DESC, id DESC LIMIT $2"
)


@dataclass(frozen=True, slots=True)
class MarketNow:
    on_demand_units: int
    interruptible: bool
    min_bid_units: int
    held_by: str | None  # the holder's rental type now, or None when free
    held_until: datetime | None
    lowest_winning_bid_units: int | None  # None: no bid wins it now
    cleared: list[tuple[datetime, int]]  # recent winning bids, newest first

    def public(self) -> dict[str, Any]:
        return {
            "on_demand_price_per_hour": units_text(self.on_demand_units),
            "interruptible": self.interruptible,
            "min_bid_per_hour": units_text(self.min_bid_units),
            "held_by": self.held_by,
            "held_until": iso(self.held_until),
            "lowest_winning_bid": None
            if self.lowest_winning_bid_units is None
            else units_text(self.lowest_winning_bid_units),
            "recent_clearing_prices": [
                {"at": iso(at), "bid_per_hour": units_text(units)} for at, units in self.cleared
            ],
        }


def share_points(settings: Settings) -> int:
    """AITBC_MIN_BID_SHARE in basis points (it has at most four decimals)."""
    return int(settings.min_bid_share * 10_000)


def least_bid(price_units: int, min_bid_units: int | None, share: Decimal) -> int:
    """The least bid a GPU takes: its provider's, or ``share`` of its price (rounded down
    to the micro-unit, as the SQL of bookings.best has it)."""
    if min_bid_units is not None:
        return min_bid_units
    return price_units * int(share * 10_000) // 10_000


async def market_now(conn: Conn, gpu_id: str, *, now: datetime, share: Decimal) -> MarketNow | None:
    row = await conn.fetchrow(_GPU_NOW, gpu_id, now)
    if row is None:
        return None
    price = row["effective_price_units"]
    least = least_bid(price, row["min_bid_units"], share)
    held_by = row["rental_type"]
    winning: int | None = least
    if held_by == INTERRUPTIBLE:
        winning = max(least, winning_bid(row["held_units"]))
    elif held_by is not None:
        winning = None  # held on demand: no bid displaces it
    if not row["interruptible"] or (winning is not None and winning >= price):
        winning = None
    cleared = [
        (as_time(r["created_at"]), r["price_units"])
        for r in await conn.fetch(_CLEARED, gpu_id, RECENT_CLEARING)
    ]
    return MarketNow(
        on_demand_units=price,
        interruptible=bool(row["interruptible"]),
        min_bid_units=least,
        held_by=held_by,
        held_until=None if row["until"] is None else as_time(row["until"]),
        lowest_winning_bid_units=winning,
        cleared=cleared,
    )
