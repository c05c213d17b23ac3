"""What a GPU costs now, for a renter choosing how to rent it: its on-demand price, the
least interruptible bid it takes, the lowest bid that would win it now (above the bid of an
interruptible booking holding it; none while it is held on demand), and the bids that
recently won it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aitbc.bookings.preemption import INTERRUPTIBLE, winning_bid
from aitbc.config import Settings
from aitbc.kit.money import units_text
from aitbc.store.conn import Conn
from aitbc.store.query import Params, Query, built
from aitbc.store.values import as_time, iso

RECENT_CLEARING = 10
# The GPU, with the open booking a booking made now would have to displace, if any: one
# covering now, or beginning within the notice (the one that preempted the GPU's holder,
# which keeps it for the notice). $2 now, $3 the end of a notice given now.
_GPU_NOW = Query(
    """
    SELECT g.effective_price_units, g.interruptible, g.min_bid_units, h.rental_type,
           h.price_units AS held_units, h.end_time AS until
    FROM gpus g LEFT JOIN (
        SELECT rental_type, price_units, end_time FROM bookings
        WHERE gpu_id = $1 AND status = 'open' AND start_time <= $3 AND end_time > $2
        ORDER BY start_time LIMIT 1) h ON true
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


async def market_now(
    conn: Conn, gpu_id: str, *, now: datetime, share: Decimal, notice_seconds: int
) -> MarketNow | None:
    row = await conn.fetchrow(_GPU_NOW, gpu_id, now, now + timedelta(seconds=notice_seconds))
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


@dataclass(frozen=True, slots=True)
class ModelMarket:
    """Interruptible rentals across a model's GPUs now."""

    open_to_bids: int  # listed GPUs that take bids
    lowest_winning_bid_units: int | None  # the lowest bid that wins one of them now
    cleared: list[tuple[datetime, int]]  # recent winning bids on them, newest first

    def public(self) -> dict[str, Any]:
        return {
            "gpus_open_to_bids": self.open_to_bids,
            "lowest_winning_bid": None
            if self.lowest_winning_bid_units is None
            else units_text(self.lowest_winning_bid_units),
            "recent_clearing_prices": [
                {"at": iso(at), "bid_per_hour": units_text(units)} for at, units in self.cleared
            ],
        }


# As _GPU_NOW, for several GPUs ($1 now, $2 the end of a notice given now).
_HELD_NOW = """
    SELECT g.id, g.effective_price_units, g.min_bid_units, h.rental_type, h.price_units AS held
    FROM gpus g LEFT JOIN bookings h ON h.gpu_id = g.id AND h.status = 'open'
      AND h.start_time <= $2 AND h.end_time > $1
    WHERE g.interruptible AND g.id IN ({ids})
"""
_CLEARED_ON = """
    SELECT price_units, created_at FROM bookings
    WHERE rental_type = 'interruptible' AND gpu_id IN ({ids})
    ORDER BY created_at DESC, id DESC LIMIT {limit}
"""


async def model_market(
    conn: Conn, gpu_ids: list[str], *, now: datetime, share: Decimal, notice_seconds: int
) -> ModelMarket:
    """``market_now`` over several GPUs (a model's, listed and online): how many take
    bids, the lowest bid that wins one of them now, and the bids that won them lately."""
    if not gpu_ids:
        return ModelMarket(0, None, [])
    p = Params(now, now + timedelta(seconds=notice_seconds))
    ids = p.add_all(gpu_ids)
    winning: dict[str, int | None] = {}
    for row in await conn.fetch(built(_HELD_NOW.format(ids=ids)), *p.values):
        price = row["effective_price_units"]
        least = least_bid(price, row["min_bid_units"], share)
        if row["rental_type"] is None:
            bid: int | None = least
        elif row["rental_type"] == INTERRUPTIBLE:
            bid = max(least, winning_bid(row["held"]))
        else:
            bid = None
        if bid is not None and bid >= price:
            bid = None
        if row["id"] in winning:  # two bookings to displace: it takes outbidding both
            earlier = winning[row["id"]]
            bid = None if earlier is None or bid is None else max(earlier, bid)
        winning[row["id"]] = bid
    listed = Params()
    cleared_query = _CLEARED_ON.format(ids=listed.add_all(gpu_ids), limit=RECENT_CLEARING)
    cleared = [
        (as_time(r["created_at"]), r["price_units"])
        for r in await conn.fetch(built(cleared_query), *listed.values)
    ]
    bids = [b for b in winning.values() if b is not None]
    return ModelMarket(len(winning), min(bids) if bids else None, cleared)
