"""The jobs domain's reads and writes: a job's row as a plain record, and the statements that
read and write it."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, ClassVar

from aitbc.bookings.records import COLUMNS, FROM, BookingRecord
from aitbc.store.conn import Conn, Row
from aitbc.store.query import Query, built, insert_into, update_by_id
from aitbc.store.records import record
from aitbc.store.values import as_json


@dataclass(slots=True)
class JobRecord:
    JSON: ClassVar[frozenset[str]] = frozenset({"payload", "result", "metrics"})

    id: str
    client_id: str
    payload: dict[str, Any]
    gpu_model_key: str | None
    memory_min_gb: int | None
    ai_model_key: str | None
    region: str | None
    max_price_units: int | None
    duration_seconds: int
    state: str
    gpu_id: str | None
    miner_id: str | None
    booking_id: str | None
    result: Any
    metrics: dict[str, Any] | None
    job_type: str | None
    payment_cap_units: int | None
    cuda_min: str | None
    bid_units: int | None  # interruptible, at this bid per hour (None: on demand)
    error: str | None
    created_at: datetime
    expires_at: datetime
    assigned_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    claim_expires_at: datetime | None

    @classmethod
    def from_row(cls, row: Row) -> JobRecord:
        return record(cls, row, result=as_json(row["result"]))

    def _value(self, name: str) -> Any:
        value = getattr(self, name)
        if name in self.JSON:
            # A JSON null is stored as SQL NULL (what the columns held from the start).
            return None if value is None else json.dumps(value)
        return value

    async def insert(self, conn: Conn) -> None:
        await conn.execute(_INSERT, *(self._value(name) for name in JOB_FIELDS))

    async def save(self, conn: Conn, *names: str) -> None:
        """Write back the named columns."""
        values = (self._value(name) for name in names)
        await conn.execute(update_by_id("jobs", names), self.id, *values)


JOB_FIELDS = tuple(f.name for f in fields(JobRecord))
JOB_COLUMNS = ", ".join(JOB_FIELDS)
_INSERT = insert_into("jobs", JOB_FIELDS)
SELECT_JOBS = f"SELECT {JOB_COLUMNS} FROM jobs"
JOB = Query(f"{SELECT_JOBS} WHERE id = $1")
JOB_GPU = Query("SELECT gpu_id FROM jobs WHERE id = $1")
JOB_LOCKED = Query(f"{SELECT_JOBS} WHERE id = $1 FOR UPDATE")
JOB_LOCKED_OR_SKIP = Query(f"{SELECT_JOBS} WHERE id = $1 FOR UPDATE SKIP LOCKED")
GPU_LOCKED = Query("SELECT id FROM gpus WHERE id = $1 FOR UPDATE")
GPU_LOCKED_OR_SKIP = Query("SELECT id FROM gpus WHERE id = $1 FOR UPDATE SKIP LOCKED")
CUDA_VERSIONS = "SELECT id, cuda_version FROM gpus WHERE id IN ({})"
TO_EXPIRE = Query(
    "SELECT id FROM jobs WHERE state IN ('queued', 'assigned') AND expires_at <= $1 "
    "ORDER BY expires_at LIMIT $2"
)
# The oldest queued jobs a miner's GPUs may serve (by model: jobs for models it has none of
# would keep the others from its poll).
QUEUED_FOR_MINER = Query(
    "SELECT j.id FROM jobs j WHERE j.state = 'queued' AND j.expires_at > $1 "
    "AND (j.gpu_model_key IS NULL OR EXISTS (SELECT 1 FROM gpus g WHERE g.miner_id = $3 "
    "AND g.model_key = j.gpu_model_key AND g.delisted_at IS NULL)) "
    "ORDER BY j.created_at, j.id LIMIT $2"
)
# The sweeper's walk through the queue (store.rounds.Rounds).
QUEUED_AFTER = Query(
    "SELECT id, created_at FROM jobs WHERE state = 'queued' AND expires_at > $1 "
    "AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4"
)
# The miner's oldest assigned job whose booking has begun (one that preempted an
# interruptible booking begins when the notice ends).
NEXT_FOR_MINER = Query(
    f"SELECT {', '.join('j.' + f for f in JOB_FIELDS)}, b.end_time AS booking_ends_at "
    "FROM jobs j JOIN bookings b ON b.id = j.booking_id "
    "WHERE j.miner_id = $1 AND j.state = 'assigned' AND j.expires_at > $2 "
    "AND b.status = 'open' AND b.end_time > $2 AND b.start_time <= $2 "
    "ORDER BY j.assigned_at, j.id LIMIT 1 FOR UPDATE OF j SKIP LOCKED"
)
# Running jobs whose booking ended by $1 (now less the grace for a result).
UNREPORTED = Query(
    "SELECT j.id FROM jobs j JOIN bookings b ON b.id = j.booking_id "
    "WHERE j.state = 'running' AND b.end_time <= $1 ORDER BY b.end_time LIMIT $2"
)
BOOKING_END = Query("SELECT end_time FROM bookings WHERE id = $1")
EXPIRED_CLAIMS = Query(
    "SELECT id FROM jobs WHERE state = 'running' AND claim_expires_at <= $1 "
    "ORDER BY claim_expires_at LIMIT $2"
)
GPU_MODEL = Query("SELECT model FROM gpus WHERE id = $1")


async def bookings_by_id(conn: Conn, ids: list[str]) -> dict[str, BookingRecord]:
    """The bookings of these ids, as records."""
    if not ids:
        return {}
    marks = ", ".join(f"${i}" for i in range(1, len(ids) + 1))
    rows = await conn.fetch(built(f"SELECT {COLUMNS} FROM {FROM} WHERE b.id IN ({marks})"), *ids)
    return {row["id"]: BookingRecord.from_row(row) for row in rows}


async def gpu_models(conn: Conn, ids: list[str]) -> dict[str, str]:
    if not ids:
        return {}
    marks = ", ".join(f"${i}" for i in range(1, len(ids) + 1))
    rows = await conn.fetch_values(built(f"SELECT id, model FROM gpus WHERE id IN ({marks})"), *ids)
    return {gpu_id: model for gpu_id, model in rows}
