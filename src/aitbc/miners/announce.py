"""``gpu.offline`` and ``gpu.back`` (events.log): once per silence of a miner, for each of
its listed GPUs, to its provider and the renters with a booking of the GPU that has not
ended. The sweeper notices a silence (``gone_silent``, marking the miner); the heartbeat
that ends it says so (``back``), and tells of the silence too if no sweep noticed it."""

from __future__ import annotations

from datetime import datetime, timedelta

from aitbc.events.log import emit
from aitbc.store.conn import Conn
from aitbc.store.query import Query
from aitbc.store.values import as_time, iso

_SILENT = Query(
    "SELECT id, last_heartbeat FROM miners WHERE last_heartbeat <= $1 "
    "AND offline_noticed_at IS NULL AND deregistered_at IS NULL "
    "ORDER BY last_heartbeat LIMIT $2 FOR UPDATE SKIP LOCKED"
)
_NOTICE = Query(
    "UPDATE miners SET offline_noticed_at = $2 WHERE id = $1 AND offline_noticed_at IS NULL"
)
_NOTICED = Query("SELECT offline_noticed_at FROM miners WHERE id = $1")
_CLEAR = Query("UPDATE miners SET offline_noticed_at = NULL WHERE id = $1")
_GPUS = Query(
    "SELECT id, model, region FROM gpus WHERE miner_id = $1 AND delisted_at IS NULL ORDER BY id"
)
_RENTERS = Query(
    "SELECT DISTINCT gpu_id, client_id FROM bookings "
    "WHERE miner_id = $1 AND status = 'open' AND end_time > $2"
)


async def gone_silent(conn: Conn, *, now: datetime, timeout: int, limit: int = 200) -> int:
    """Announce the miners silent for longer than ``timeout`` seconds that no event has
    told of yet. Returns how many."""
    told = 0
    silent = await conn.fetch(_SILENT, now - timedelta(seconds=timeout), limit)
    for row in silent:
        if await conn.execute(_NOTICE, row["id"], now):
            since = as_time(row["last_heartbeat"])
            await _tell(conn, "offline", row["id"], since=since, now=now)
            told += 1
    return told


async def back(conn: Conn, *, miner_id: str, silent_since: datetime, now: datetime) -> None:
    """The miner is heard after a silence (the heartbeat's transaction, which holds its
    row)."""
    if await conn.fetchval(_NOTICED, miner_id) is None:
        await _tell(conn, "offline", miner_id, since=silent_since, now=now)
    else:
        await conn.execute(_CLEAR, miner_id)
    await _tell(conn, "back", miner_id, since=silent_since, now=now)


async def _tell(conn: Conn, kind: str, miner_id: str, *, since: datetime, now: datetime) -> None:
    renters: dict[str, list[str]] = {}
    for row in await conn.fetch(_RENTERS, miner_id, now):
        renters.setdefault(row["gpu_id"], []).append(row["client_id"])
    for gpu in await conn.fetch(_GPUS, miner_id):
        emit(
            conn,
            f"gpu.{kind}",
            subject_id=gpu["id"],
            data={
                "gpu_id": gpu["id"],
                "model": gpu["model"],
                "region": gpu["region"],
                "miner_id": miner_id,
                "status": "offline" if kind == "offline" else "online",
                "last_heartbeat": iso(since),
                "offline_seconds": int((now - since).total_seconds()) if kind == "back" else None,
            },
            owners=(miner_id, *renters.get(gpu["id"], ())),
            at=now,
        )
