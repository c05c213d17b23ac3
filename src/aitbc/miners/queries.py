"""The miners domain's reads and writes: a miner's row and its GPUs' registry rows as plain
records, and the statements that read and write them."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar

from aitbc.store.conn import Conn
from aitbc.store.query import Query, insert_into, update_by_id
from aitbc.store.records import FromRow


@dataclass(slots=True)
class MinerRecord(FromRow):
    id: str
    region: str | None
    concurrency: int
    inflight: int
    reported_status: str
    capabilities: dict[str, Any]
    last_heartbeat: datetime
    created_at: datetime
    updated_at: datetime
    deregistered_at: datetime | None

    async def save(self, conn: Conn) -> None:
        """Write back what a miner's calls change."""
        await conn.execute(
            _SAVE_MINER,
            self.id,
            self.region,
            self.concurrency,
            self.inflight,
            self.reported_status,
            json.dumps(self.capabilities),
            self.last_heartbeat,
            self.updated_at,
            self.deregistered_at,
        )


_MINER_COLUMNS = (
    "id, region, concurrency, inflight, reported_status, capabilities, last_heartbeat, "
    "created_at, updated_at, deregistered_at"
)
MINER_LOCKED = Query(f"SELECT {_MINER_COLUMNS} FROM miners WHERE id = $1 FOR UPDATE")
MINER = Query(f"SELECT {_MINER_COLUMNS} FROM miners WHERE id = $1")
# A new miner, or nothing when it exists (a concurrent first registration included).
NEW_MINER = Query(
    f"INSERT INTO miners ({_MINER_COLUMNS}) VALUES ($1, $2, 1, 0, 'online', '{{}}', $3, $3, $3, "
    "NULL) ON CONFLICT (id) DO NOTHING"
)
_SAVE_MINER = Query(
    "UPDATE miners SET region = $2, concurrency = $3, inflight = $4, reported_status = $5, "
    "capabilities = $6, last_heartbeat = $7, updated_at = $8, deregistered_at = $9 "
    "WHERE id = $1"
)


@dataclass(slots=True)
class GpuRecord(FromRow):
    """A GPU's registry row (its rendered form is ``gpus.listing``'s)."""

    JSON: ClassVar[frozenset[str]] = frozenset({"ai_models", "health"})

    id: str
    miner_id: str
    slot: str
    model: str
    model_key: str
    memory_gb: int
    cuda_cores: int | None
    compute_capability: str | None
    cuda_version: str | None
    region: str | None
    price_units: int
    effective_price_units: int
    pricing_mode: str
    description: str | None
    ai_models: list[str]
    health: dict[str, Any]
    health_at: datetime | None
    rating_sum: int
    review_count: int
    total_bookings: int
    uptime_24h_bp: int
    uptime_7d_bp: int
    created_at: datetime
    updated_at: datetime
    delisted_at: datetime | None
    interruptible: bool = True  # interruptible rentals allowed (docs/market.md)
    min_bid_units: int | None = None  # the least bid; None: the setting's share of the price

    def _value(self, name: str) -> Any:
        value = getattr(self, name)
        return json.dumps(value) if name in self.JSON else value

    async def insert(self, conn: Conn) -> None:
        await conn.execute(_INSERT_GPU, *(self._value(name) for name in GPU_FIELDS))

    async def save(self, conn: Conn, *names: str) -> None:
        """Write back the named columns (a GPU row written is a new revision: only what
        changed is written)."""
        values = (self._value(name) for name in names)
        await conn.execute(update_by_id("gpus", names), self.id, *values)


GPU_FIELDS = tuple(f.name for f in fields(GpuRecord))
_GPU_COLUMNS = ", ".join(GPU_FIELDS)
_INSERT_GPU = insert_into("gpus", GPU_FIELDS)
GPU_LOCKED = Query(f"SELECT {_GPU_COLUMNS} FROM gpus WHERE id = $1 FOR UPDATE")
MINERS_GPUS = Query(f"SELECT {_GPU_COLUMNS} FROM gpus WHERE miner_id = $1 ORDER BY slot")
# The fields a miner's description of a GPU sets (miners.service._apply_spec).
SPEC_FIELDS = (
    "slot", "model", "model_key", "memory_gb", "cuda_version", "compute_capability",
    "cuda_cores", "price_units", "effective_price_units", "pricing_mode", "description",
    "region", "updated_at", "delisted_at", "ai_models",
)  # fmt: skip

SIBLING_UPTIME = Query("SELECT uptime_24h_bp, uptime_7d_bp FROM gpus WHERE miner_id = $1 LIMIT 1")
REMEMBER_MODEL_KEY = Query(
    "INSERT INTO gpu_model_keys (model_key) VALUES ($1) ON CONFLICT (model_key) DO NOTHING"
)
AI_MODEL_KEYS = Query("SELECT model_key FROM gpu_ai_models WHERE gpu_id = $1")
DROP_AI_MODEL = Query("DELETE FROM gpu_ai_models WHERE gpu_id = $1 AND model_key = $2")
ADD_AI_MODEL = Query("INSERT INTO gpu_ai_models (gpu_id, model_key) VALUES ($1, $2)")
DELIST_FREE = Query(
    "UPDATE gpus SET delisted_at = $2, updated_at = $2 WHERE miner_id = $1 "
    "AND delisted_at IS NULL AND NOT EXISTS "
    "(SELECT 1 FROM bookings b WHERE b.gpu_id = gpus.id AND b.status = 'open')"
)
OPEN_BOOKING_ON = Query("SELECT id FROM bookings WHERE gpu_id = $1 AND status = 'open' LIMIT 1")

# Earnings: what the miner was paid at its bookings' close, less the platform's fee.
CLOSING_KINDS = (
    "booking_completed", "booking_released", "booking_interrupted", "booking_cancelled",
    "booking_preempted",
)  # fmt: skip
# What bookings paid the miner ($1), within a range its caller adds (on t.created_at).
_PAID_FROM = (
    "FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id "
    "JOIN accounts a ON a.id = e.account_id "
    "WHERE a.owner_id = $1 AND a.kind = 'main' AND e.amount_units > 0 "
    f"AND t.kind IN ({', '.join(repr(k) for k in CLOSING_KINDS)})"
)
PAID = f"SELECT coalesce(sum(e.amount_units), 0), count(e.id) {_PAID_FROM}"
# The same by GPU, most earned first (its GROUP BY follows the range).
PAID_BY_GPU = (
    "SELECT b.gpu_id, g.model, sum(e.amount_units) AS earned, count(e.id) AS paid "
    + _PAID_FROM.replace(
        "JOIN accounts a",
        "JOIN bookings b ON b.id = t.booking_id JOIN gpus g ON g.id = b.gpu_id JOIN accounts a",
    )
)
PAID_BY_GPU_END = " GROUP BY b.gpu_id, g.model ORDER BY earned DESC, b.gpu_id"
JOBS_DONE = "SELECT count(*) FROM jobs WHERE miner_id = $1 AND state = 'completed'"
PENDING = Query(
    "SELECT coalesce(sum(total_units - outage_refund_units), 0) FROM bookings "
    "WHERE miner_id = $1 AND status = 'open'"
)
