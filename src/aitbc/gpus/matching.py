"""Choosing GPUs for bids and jobs: available now, meeting the constraints, cheapest first,
then the best rated, then the most reviewed."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aitbc.gpus import status
from aitbc.gpus.naming import like_pattern
from aitbc.store.conn import Conn
from aitbc.store.query import built

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
    args: list[Any] = [now, status.cutoff(now, heartbeat_timeout)]
    where = [status.available_sql("$1", "$2")]

    def condition(template: str, value: Any) -> None:
        args.append(value)
        where.append(template.format(f"${len(args)}"))

    c = constraints
    if c.gpu_model_key:
        condition("g.model_key LIKE {} ESCAPE '\\'", like_pattern(c.gpu_model_key))
    if c.memory_min_gb is not None:
        condition("g.memory_gb >= {}", c.memory_min_gb)
    if c.ai_model_key:
        condition(
            "g.id IN (SELECT a.gpu_id FROM gpu_ai_models a WHERE a.model_key = {})",
            c.ai_model_key,
        )
    if c.region:
        condition("lower(g.region) = {}", c.region.lower())
    if c.max_price_units is not None:
        condition("g.effective_price_units <= {}", c.max_price_units)
    if c.miner_id:
        condition("g.miner_id = {}", c.miner_id)
    if exclude:
        first = len(args) + 1
        args.extend(exclude)
        marks = ", ".join(f"${i}" for i in range(first, len(args) + 1))
        where.append(f"g.id NOT IN ({marks})")
    args.append(limit)
    query = built(
        "SELECT g.id FROM gpus g JOIN miners m ON m.id = g.miner_id "
        f"WHERE {' AND '.join(where)} ORDER BY {_ORDER} LIMIT ${len(args)}"
    )
    return [row[0] for row in await conn.fetch_values(query, *args)]
