"""Choosing GPUs for bids and jobs: available now, meeting the constraints, cheapest first,
then the best rated, then the most reviewed. A job with a bid takes the GPUs its bid wins
now instead (free, or held only by lower bids: gpus.bids), the cheapest win first."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from aitbc.gpus import bids, status
from aitbc.gpus.filters import conditions
from aitbc.gpus.naming import like_pattern
from aitbc.store.conn import Conn
from aitbc.store.query import Params, built

RULE = "cheapest available GPU that meets the constraints, then best rated, then most reviewed"
_ORDER = (
    "g.effective_price_units ASC, "
    "g.rating_sum * 1.0 / NULLIF(g.review_count, 0) DESC NULLS LAST, "
    "g.review_count DESC, g.id ASC"
)


@dataclass(frozen=True, slots=True)
class Constraints:
    gpu_model_key: str | None = None
    memory_min_gb: int | None = None
    ai_model_key: str | None = None
    region: str | None = None
    max_price_units: int | None = None
    miner_id: str | None = None
    bid_units: int | None = None  # interruptible, at this bid per hour
    seconds: int = 0  # how long (what a bid must win)


async def candidates(
    conn: Conn,
    *,
    constraints: Constraints,
    now: datetime,
    heartbeat_timeout: int,
    min_bid_share: Decimal | None = None,
    exclude: Collection[str] = (),
    limit: int = 5,
) -> list[str]:
    """The best GPUs for the constraints, up to ``limit``. On demand: the free ones; when
    none is, those held now only by interruptible bookings (which an on-demand booking
    displaces). With a bid: those it wins now, the cheapest win first."""
    if constraints.bid_units is not None:
        assert min_bid_share is not None, "a bid is won from the least bid's share"
        return await _read(conn, constraints, now, heartbeat_timeout, exclude, limit, min_bid_share)
    found = await _read(conn, constraints, now, heartbeat_timeout, exclude, limit)
    if not found:
        found = await _read(conn, constraints, now, heartbeat_timeout, exclude, limit, held=True)
    return found


async def _read(
    conn: Conn,
    c: Constraints,
    now: datetime,
    heartbeat_timeout: int,
    exclude: Collection[str],
    limit: int,
    min_bid_share: Decimal | None = None,
    *,
    held: bool = False,
) -> list[str]:
    params = Params(now, status.cutoff(now, heartbeat_timeout))
    order = _ORDER
    listed_online = ["g.delisted_at IS NULL", f"NOT {status.offline_sql('$2')}"]
    if min_bid_share is not None:
        assert c.bid_units is not None
        end = params.add(now + timedelta(seconds=c.seconds))
        winning = bids.winning_sql("$1", end, min_bid_share)
        where = [
            *listed_online,
            f"{winning} <= {(bid := params.add(c.bid_units))}",
            f"g.effective_price_units > {bid}",  # a bid is below the on-demand price
        ]
        order = f"{winning}, {_ORDER}"
    elif held:
        current = status.current_booking_sql("$1")
        where = [
            *listed_online,
            f"EXISTS ({current})",
            f"NOT EXISTS ({current} AND b.rental_type <> 'interruptible')",
        ]
    else:
        where = [status.available_sql("$1", "$2")]
    if c.gpu_model_key:
        where.append(f"g.model_key LIKE {params.add(like_pattern(c.gpu_model_key))} ESCAPE '\\'")
    where += conditions(
        params,
        region=c.region,
        memory_min=c.memory_min_gb,
        price_max_units=c.max_price_units,
        miner_id=c.miner_id,
        ai_model_key=c.ai_model_key,
    )
    if exclude:
        where.append(f"g.id NOT IN ({params.add_all(exclude)})")
    limit_mark = params.add(limit)
    query = built(
        "SELECT g.id FROM gpus g JOIN miners m ON m.id = g.miner_id "
        f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT {limit_mark}"
    )
    return [row[0] for row in await conn.fetch_values(query, *params.values)]
