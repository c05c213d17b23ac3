"""Choosing GPUs for bids and jobs: available now, meeting the constraints, cheapest first,
then the best rated, then the most reviewed."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from aitbc.gpus import status
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


async def candidates(
    conn: Conn,
    *,
    constraints: Constraints,
    now: datetime,
    heartbeat_timeout: int,
    exclude: Collection[str] = (),
    limit: int = 5,
) -> list[str]:
    params = Params(now, status.cutoff(now, heartbeat_timeout))
    c = constraints
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
        f"WHERE {' AND '.join(where)} ORDER BY {_ORDER} LIMIT {limit_mark}"
    )
    return [row[0] for row in await conn.fetch_values(query, *params.values)]
