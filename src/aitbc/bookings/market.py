"""What a GPU costs now, for a renter choosing how to rent it: its on-demand price, the
least interruptible bid it takes, the lowest bid that would win it now (above the bid of an
interruptible booking holding it; none while it is held on demand), and the bids that
recently won it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from functools import cache
from typing import Any

from aitbc.gpus.bids import least_sql, notice_end, winning_sql
from aitbc.gpus.status import OPEN_STATUS
from aitbc.kit.money import units_text
from aitbc.store.conn import Conn
from aitbc.store.query import Params, Query, built
from aitbc.store.values import as_time, iso

RECENT_CLEARING = 10
# $1 now, $2 the end of a notice given now (gpus.bids.notice_end).
_HOLDER = (
    f"SELECT {{what}} FROM bookings b WHERE b.gpu_id = g.id AND b.status = {OPEN_STATUS} "
    "AND b.start_time < $2 AND b.end_time > $1 ORDER BY b.start_time LIMIT 1"
)


@cache
def _gpu_now(share: Decimal) -> Query:
    return Query(
        f"SELECT g.effective_price_units, g.interruptible, {least_sql(share)} AS least, "
        f"({_HOLDER.format(what='b.rental_type')}) AS held_by, "
        f"({_HOLDER.format(what='b.end_time')}) AS until, "
        f"{winning_sql('$1', '$2', share)} AS winning FROM gpus g WHERE g.id = $3"
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


async def market_now(
    conn: Conn, gpu_id: str, *, now: datetime, share: Decimal, notice_seconds: int
) -> MarketNow | None:
    row = await conn.fetchrow(_gpu_now(share), now, notice_end(now, notice_seconds), gpu_id)
    if row is None:
        return None
    cleared = [
        (as_time(r["created_at"]), r["price_units"])
        for r in await conn.fetch(_CLEARED, gpu_id, RECENT_CLEARING)
    ]
    return MarketNow(
        on_demand_units=row["effective_price_units"],
        interruptible=bool(row["interruptible"]),
        min_bid_units=row["least"],
        held_by=row["held_by"],
        held_until=None if row["until"] is None else as_time(row["until"]),
        lowest_winning_bid_units=row["winning"],
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


# The GPUs of ``ids`` that take bids, with what wins each ($1 now, $2 the notice's end).
_WINNING_EACH = "SELECT {winning} AS winning FROM gpus g WHERE g.interruptible AND g.id IN ({ids})"
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
    p = Params(now, notice_end(now, notice_seconds))
    query = _WINNING_EACH.format(winning=winning_sql("$1", "$2", share), ids=p.add_all(gpu_ids))
    winning = [row["winning"] for row in await conn.fetch(built(query), *p.values)]
    listed = Params()
    cleared_query = _CLEARED_ON.format(ids=listed.add_all(gpu_ids), limit=RECENT_CLEARING)
    cleared = [
        (as_time(r["created_at"]), r["price_units"])
        for r in await conn.fetch(built(cleared_query), *listed.values)
    ]
    bids = [b for b in winning if b is not None]
    return ModelMarket(len(winning), min(bids) if bids else None, cleared)
