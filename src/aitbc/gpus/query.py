"""GPU figures for the operators' views (health, metrics), over the one status rule
(``gpus.status``), and the rating every view shows."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from aitbc.gpus import status
from aitbc.store.conn import Conn
from aitbc.store.query import Query
from aitbc.store.values import as_json, maybe_time

_COUNT_BY_STATUS = Query(
    f"SELECT {status.status_sql('$1', '$2')} AS status, count(*) "
    "FROM gpus g JOIN miners m ON m.id = g.miner_id GROUP BY 1"
)
_VITALS = Query(
    "SELECT id, miner_id, model, health, health_at, uptime_24h_bp, uptime_7d_bp FROM gpus "
    "WHERE delisted_at IS NULL ORDER BY id"
)


def average_rating(rating_sum: int, review_count: int) -> Decimal | None:
    if review_count == 0:
        return None
    return (Decimal(rating_sum) / review_count).quantize(Decimal("0.01"), ROUND_HALF_UP)


async def count_by_status(conn: Conn, *, now: datetime, heartbeat_timeout: int) -> dict[str, int]:
    counts = {"available": 0, "booked": 0, "offline": 0, "delisted": 0}
    cutoff = status.cutoff(now, heartbeat_timeout)
    counts.update({name: n for name, n in await conn.fetch_values(_COUNT_BY_STATUS, now, cutoff)})
    return counts


@dataclass(frozen=True, slots=True)
class GpuVitals:
    """A listed GPU's latest figures (``health`` only when reported within the heartbeat
    timeout, else empty) and its uptime in basis points."""

    gpu_id: str
    miner_id: str
    model: str
    health: dict[str, Any]
    uptime_24h_bp: int
    uptime_7d_bp: int


async def vitals(conn: Conn, *, now: datetime, heartbeat_timeout: int) -> list[GpuVitals]:
    fresh_after = status.cutoff(now, heartbeat_timeout)
    found = []
    for gpu_id, miner_id, model, health, health_at, day, week in await conn.fetch_values(_VITALS):
        reported = maybe_time(health_at)
        figures = as_json(health) or {}
        fresh = reported is not None and reported >= fresh_after and figures
        found.append(GpuVitals(gpu_id, miner_id, model, figures if fresh else {}, day, week))
    return found
