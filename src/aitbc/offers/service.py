"""Offers kept in step with the registry, and the marketplace statistics."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from aitbc.gpus import status as rule
from aitbc.gpus.query import average_rating
from aitbc.kit.ids import new_id
from aitbc.kit.money import divide_units
from aitbc.store.conn import Conn, Row
from aitbc.store.query import Query, built
from aitbc.store.values import as_json, as_time, maybe_time

DEFAULT_SLA = "standard"
_OFFER_FIELDS = ("provider", "capacity", "price_units", "sla", "status", "attributes")

# Syncing: $1 now, $2 the heartbeat cutoff, $3 (when named) the miner.
_SYNC_GPUS = (
    "SELECT g.id, g.miner_id, g.model, g.memory_gb, g.cuda_version, g.compute_capability, "
    "g.cuda_cores, g.region, g.ai_models, g.effective_price_units, "
    f"{rule.status_sql('$1', '$2')} AS status FROM gpus g JOIN miners m ON m.id = g.miner_id"
)
_GPUS_TO_SYNC = Query(_SYNC_GPUS)
_MINERS_GPUS_TO_SYNC = Query(f"{_SYNC_GPUS} WHERE g.miner_id = $3")
_SYNC_OFFERS = (
    "SELECT id, gpu_id, provider, capacity, price_units, sla, status, attributes FROM offers "
    "WHERE gpu_id IS NOT NULL"
)
_OFFERS_TO_SYNC = Query(f"{_SYNC_OFFERS} FOR UPDATE")
_MINERS_OFFERS_TO_SYNC = Query(
    f"{_SYNC_OFFERS} AND gpu_id IN (SELECT id FROM gpus WHERE miner_id = $1) FOR UPDATE"
)
_CLOSE = Query("UPDATE offers SET status = 'closed', updated_at = $2 WHERE id = $1")
_CREATE = Query(
    "INSERT INTO offers (id, gpu_id, source, created_at, updated_at, provider, capacity, "
    "price_units, sla, status, attributes) VALUES ($1, $2, 'miner_sync', $3, $3, $4, $5, $6, "
    "$7, $8, $9)"
)
_UPDATE = Query(
    "UPDATE offers SET updated_at = $2, provider = $3, capacity = $4, price_units = $5, "
    "sla = $6, status = $7, attributes = $8 WHERE id = $1"
)
_CLOSE_SILENT = Query(
    "UPDATE offers SET status = 'closed', updated_at = $1 WHERE status = 'open' AND gpu_id IN "
    "(SELECT g.id FROM gpus g JOIN miners m ON m.id = g.miner_id "
    f"WHERE g.delisted_at IS NOT NULL OR {rule.offline_sql('$2')})"
)

# An offer's status as it is shown and filtered: what its GPU allows now, in the GPU's words.
# ``open`` only while the GPU can be booked; ``booked`` while it is; ``closed`` once the offer
# was closed or its GPU is offline or delisted (before the sweeper closes it). $1 now, $2 the
# heartbeat cutoff.
_GPU_STATUS = rule.status_sql("$1", "$2")
_SHOWN = (
    f"SELECT o.*, g.id AS found_gpu, g.model AS gpu_model, g.memory_gb, g.total_bookings, "
    f"g.rating_sum, g.review_count, {_GPU_STATUS} AS gpu_status, "
    f"({rule.current_booking_sql('$1')} LIMIT 1) AS booking_expires, "
    "CASE WHEN o.status = 'closed' THEN 'closed' "
    f"WHEN ({_GPU_STATUS}) IN ('offline', 'delisted') THEN 'closed' "
    f"WHEN ({_GPU_STATUS}) = 'booked' THEN 'booked' ELSE 'open' END AS shown "
    "FROM offers o LEFT JOIN gpus g ON g.id = o.gpu_id LEFT JOIN miners m ON m.id = g.miner_id"
)
_STATS = Query(
    "SELECT count(*), coalesce(sum(CASE WHEN shown = 'open' THEN capacity ELSE 0 END), 0), "
    f"coalesce(sum(price_units), 0) FROM ({_SHOWN}) x WHERE shown <> 'closed'"
)
_ACTIVE_BIDS = Query("SELECT count(*) FROM bids WHERE status = 'open' AND expires_at > $1")


@dataclass(frozen=True, slots=True)
class Offer:
    """An offer as shown: its status in its GPU's words, and the GPU's live figures (None
    for an offer without a GPU)."""

    id: str
    provider: str
    capacity: int
    price_units: int
    sla: str
    status: str
    gpu_id: str | None
    gpu_model: str | None
    gpu_memory: int | None
    gpu_status: str | None
    booking_expires: datetime | None
    total_bookings: int | None
    average_rating: Decimal | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Synced:
    created: int
    updated: int
    closed: int
    unchanged: int


@dataclass(frozen=True, slots=True)
class Stats:
    offers: int  # not closed: open or booked now
    open_capacity: int
    average_price_units: int
    active_bids: int


def _desired(gpu: Row) -> dict[str, Any]:
    return {
        "provider": gpu["miner_id"],
        "capacity": 1,
        "price_units": gpu["effective_price_units"],
        "sla": DEFAULT_SLA,
        "status": "open",
        "attributes": {
            "gpu_model": gpu["model"],
            "gpu_memory_gb": gpu["memory_gb"],
            "cuda_version": gpu["cuda_version"],
            "compute_capability": gpu["compute_capability"],
            "cuda_cores": gpu["cuda_cores"],
            "region": gpu["region"],
            "ai_models": list(as_json(gpu["ai_models"]) or []),
        },
    }


def _values(desired: dict[str, Any]) -> list[Any]:
    return [json.dumps(desired[k]) if k == "attributes" else desired[k] for k in _OFFER_FIELDS]


async def sync(
    conn: Conn, *, now: datetime, heartbeat_timeout: int, miner_id: str | None = None
) -> Synced:
    """One open offer per listed GPU of an online miner; offers of offline or delisted GPUs
    close. Only real changes are written, so a second run changes nothing. With ``miner_id``,
    only that miner's GPUs (what its registration, heartbeat or changes call)."""
    cutoff = rule.cutoff(now, heartbeat_timeout)
    if miner_id is None:
        gpus = await conn.fetch(_GPUS_TO_SYNC, now, cutoff)
        found = await conn.fetch(_OFFERS_TO_SYNC)
    else:
        gpus = await conn.fetch(_MINERS_GPUS_TO_SYNC, now, cutoff, miner_id)
        found = await conn.fetch(_MINERS_OFFERS_TO_SYNC, miner_id)
    offers = {o["gpu_id"]: o for o in found}
    counts = dict.fromkeys(("created", "updated", "closed", "unchanged"), 0)
    for gpu in gpus:
        offer = offers.get(gpu["id"])
        if gpu["status"] in ("offline", "delisted"):
            if offer is not None and offer["status"] == "open":
                await conn.execute(_CLOSE, offer["id"], now)
                counts["closed"] += 1
            elif offer is not None:
                counts["unchanged"] += 1
            continue
        desired = _desired(gpu)
        if offer is None:
            await conn.execute(_CREATE, new_id("off"), gpu["id"], now, *_values(desired))
            counts["created"] += 1
        elif any(
            (as_json(offer[k]) if k == "attributes" else offer[k]) != v for k, v in desired.items()
        ):
            await conn.execute(_UPDATE, offer["id"], now, *_values(desired))
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    return Synced(**counts)


async def close_silent(conn: Conn, *, now: datetime, heartbeat_timeout: int) -> int:
    """Close the open offers of GPUs whose miner fell silent (or which were delisted): the
    sweeper's part, since nothing else happens when a miner just stops."""
    return await conn.execute(_CLOSE_SILENT, now, rule.cutoff(now, heartbeat_timeout))


async def list_offers(
    conn: Conn,
    *,
    now: datetime,
    heartbeat_timeout: int,
    status: str | None,
    provider: str | None,
    limit: int,
    offset: int,
) -> list[Offer]:
    args: list[Any] = [now, rule.cutoff(now, heartbeat_timeout)]
    where = []
    for column, value in (("shown", status), ("provider", provider)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    args += [limit, offset]
    text = (
        f"SELECT * FROM ({_SHOWN}) x {'WHERE ' + ' AND '.join(where) if where else ''} "
        f"ORDER BY created_at DESC, id LIMIT ${len(args) - 1} OFFSET ${len(args)}"
    )
    return [_public(row) for row in await conn.fetch(built(text), *args)]


def _public(row: Row) -> Offer:
    has_gpu = row["found_gpu"] is not None
    return Offer(
        id=row["id"],
        provider=row["provider"],
        capacity=row["capacity"],
        price_units=row["price_units"],
        sla=row["sla"],
        status=row["shown"],
        gpu_id=row["gpu_id"],
        gpu_model=row["gpu_model"] if has_gpu else None,
        gpu_memory=row["memory_gb"] if has_gpu else None,
        gpu_status=row["gpu_status"] if has_gpu else None,
        booking_expires=maybe_time(row["booking_expires"]) if has_gpu else None,
        total_bookings=row["total_bookings"] if has_gpu else None,
        average_rating=average_rating(row["rating_sum"], row["review_count"]) if has_gpu else None,
        attributes=dict(as_json(row["attributes"]) or {}),
        created_at=as_time(row["created_at"]),
        updated_at=as_time(row["updated_at"]),
    )


async def stats(conn: Conn, *, now: datetime, heartbeat_timeout: int) -> Stats:
    """Offers not closed (open or booked now), the capacity of those open now, their average
    price, and the active bids."""
    counted = await conn.fetch_values(_STATS, now, rule.cutoff(now, heartbeat_timeout))
    count, capacity, price_sum = counted[0]
    bids = await conn.fetchval(_ACTIVE_BIDS, now)
    return Stats(
        offers=count,
        open_capacity=int(capacity),
        average_price_units=divide_units(int(price_sum), count) if count else 0,
        active_bids=bids or 0,
    )
