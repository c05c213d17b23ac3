"""A miner's presence: stretches of heartbeats no further apart than the heartbeat timeout.
A heartbeat extends the current stretch, or after a longer silence starts a new one and
settles what the silence did to the miner's bookings (bookings.outages). Uptime is read from
the stretches."""

from __future__ import annotations

from datetime import datetime, timedelta

from aitbc.bookings import outages
from aitbc.config import Policy
from aitbc.store.conn import Conn
from aitbc.store.query import Query
from aitbc.store.values import as_time

_EXTEND = Query("UPDATE miner_presence SET ended_at = $3 WHERE miner_id = $1 AND ended_at = $2")
_START = Query("INSERT INTO miner_presence (miner_id, started_at, ended_at) VALUES ($1, $2, $2)")
_STRETCHES = Query("SELECT miner_id, started_at, ended_at FROM miner_presence WHERE ended_at >= $1")
_PRUNE = Query("DELETE FROM miner_presence WHERE ended_at < $1")
UPTIME_WINDOWS = {"24h": timedelta(hours=24), "7d": timedelta(days=7)}


async def heard(
    conn: Conn,
    *,
    miner_id: str,
    previous: datetime | None,
    now: datetime,
    policy: Policy,
    fee_bps: int,
) -> None:
    """The miner was heard at ``now`` (a heartbeat or a registration); ``previous`` is when
    it was heard before (None for a new miner). The caller holds the miner's row, and has
    written its GPUs already (the lock order: GPUs before bookings)."""
    if previous is not None and now - previous <= timedelta(seconds=policy.timeout):
        if await conn.execute(_EXTEND, miner_id, previous, now):
            return
    elif previous is not None:
        await outages.resolve(
            conn, miner_id=miner_id, silent_from=previous, back=now, policy=policy, fee_bps=fee_bps
        )
    await conn.execute(_START, miner_id, now)


def uptime_bp(
    stretches: list[tuple[datetime, datetime]], *, now: datetime, window: timedelta, timeout: int
) -> int:
    """The share of ``window`` up to ``now`` the miner was online, in basis points: each
    stretch counts until its last heartbeat plus the timeout."""
    since = now - window
    online = timedelta()
    for started, ended in stretches:
        start, end = max(started, since), min(ended + timedelta(seconds=timeout), now)
        if end > start:
            online += end - start
    return min(10_000, int(online / window * 10_000))


async def stretches_since(
    conn: Conn, since: datetime
) -> dict[str, list[tuple[datetime, datetime]]]:
    found: dict[str, list[tuple[datetime, datetime]]] = {}
    for row in await conn.fetch(_STRETCHES, since):
        found.setdefault(row["miner_id"], []).append(
            (as_time(row["started_at"]), as_time(row["ended_at"]))
        )
    return found


async def prune(conn: Conn, *, now: datetime) -> None:
    """Stretches that ended before the longest uptime window are no longer read."""
    await conn.execute(_PRUNE, now - max(UPTIME_WINDOWS.values()) - timedelta(days=1))
