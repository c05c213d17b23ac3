"""The sweeper's work on miners: each GPU's uptime over the last 24 hours and 7 days, from the
miner's presence stretches, and GPUs of miners that left, delisted once their bookings ended.

Uptime counts a stretch of heartbeats as online until its last heartbeat plus the heartbeat
timeout, and is the share of the window since the miner first registered (a host that joined
an hour ago and never missed a heartbeat has 100 %, not 4 %). Only GPUs whose figures change
are written, so a steady host's GPU keeps its row revision (and its cached card)."""

from __future__ import annotations

from datetime import datetime, timedelta

from aitbc.miners import presence
from aitbc.store.conn import Conn
from aitbc.store.query import Query
from aitbc.store.values import as_time

_MINERS = Query("SELECT id, created_at FROM miners")
# All miners in one statement on PostgreSQL (store.query's ``arrays``), row by row on SQLite.
_SET_UPTIME = Query(
    "UPDATE gpus SET uptime_24h_bp = $2, uptime_7d_bp = $3 WHERE miner_id = $1 "
    "AND (uptime_24h_bp <> $2 OR uptime_7d_bp <> $3)",
    arrays="UPDATE gpus g SET uptime_24h_bp = v.day, uptime_7d_bp = v.week "
    "FROM unnest($1::varchar[], $2::integer[], $3::integer[]) AS v(miner_id, day, week) "
    "WHERE g.miner_id = v.miner_id AND (g.uptime_24h_bp <> v.day OR g.uptime_7d_bp <> v.week)",
)
# From the miners (a scan of the few thousand rows, not of every GPU), each probed once.
_LEAVERS = Query(
    "SELECT m.id AS miner_id FROM miners m WHERE m.deregistered_at IS NOT NULL AND EXISTS "
    "(SELECT 1 FROM gpus g WHERE g.miner_id = m.id AND g.delisted_at IS NULL)"
)


def uptimes(
    stretches: list[tuple[datetime, datetime]], *, since: datetime, now: datetime, timeout: int
) -> tuple[int, int]:
    """(24-hour, 7-day) uptime in basis points of a miner first seen at ``since``."""
    found = []
    for window in presence.UPTIME_WINDOWS.values():
        lived = max(now - since, timedelta(seconds=1))
        found.append(
            presence.uptime_bp(stretches, now=now, window=min(window, lived), timeout=timeout)
        )
    return found[0], found[1]


async def refresh_uptime(conn: Conn, *, now: datetime, timeout: int) -> None:
    """Write every GPU's uptime figures as of ``now`` (only those that changed)."""
    longest = max(presence.UPTIME_WINDOWS.values())
    stretches = await presence.stretches_since(conn, now - longest)
    figures = []
    for row in await conn.fetch(_MINERS):
        since = as_time(row["created_at"])
        day, week = uptimes(stretches.get(row["id"], []), since=since, now=now, timeout=timeout)
        figures.append((row["id"], day, week))
    await conn.executemany(_SET_UPTIME, figures)


async def leavers(conn: Conn) -> list[str]:
    """Miners that deregistered and still have GPUs listed (booked when they left)."""
    return [row["miner_id"] for row in await conn.fetch(_LEAVERS)]
