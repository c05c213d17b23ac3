"""Bulk data for benchmarks: miners and GPUs written straight into a migrated database."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime

from sqlalchemy import MetaData, Table, insert

from aitbc.auth.service import create_key
from aitbc.db import create_db_engine
from aitbc.gpus.naming import model_key
from aitbc.ledger.postings import deposit
from aitbc.models import GpuAiModel, GpuModelKey, Miner
from aitbc.store.conn import Conn
from aitbc.store.query import Query
from aitbc.store.store import Store

MODELS = [
    ("RTX 4090", 24, 450_000),
    ("RTX 3090", 24, 250_000),
    ("RTX 4080", 16, 350_000),
    ("A100", 80, 1_800_000),
    ("H100", 80, 2_900_000),
    ("L40S", 48, 1_100_000),
    ("RTX A6000", 48, 800_000),
]
AI_MODELS = ["llama2-7b", "llama2-13b", "mistral-7b", "sdxl", "whisper-large"]
REGIONS = ["eu-west", "eu-central", "us-east", "us-west", "ap-south"]


def seed_gpus(url: str, *, gpus: int, gpus_per_miner: int = 8, seed: int = 7) -> list[str]:
    rng = random.Random(seed)
    now = datetime.now(UTC)
    engine = create_db_engine(url)
    miners, rows, ai_rows = [], [], []
    keys: set[str] = set()
    for m in range((gpus + gpus_per_miner - 1) // gpus_per_miner):
        miner_id = f"bench-miner-{m:05d}"
        region = rng.choice(REGIONS)
        miners.append(
            {
                "id": miner_id,
                "region": region,
                "concurrency": 4,
                "inflight": 0,
                "reported_status": "online",
                "capabilities": {},
                "last_heartbeat": now,
                "created_at": now,
                "updated_at": now,
            }
        )
        for slot in range(min(gpus_per_miner, gpus - m * gpus_per_miner)):
            name, memory, price = rng.choice(MODELS)
            gpu_id = f"gpu_bench{m:05d}{slot:02d}"
            price_units = price + rng.randint(-50_000, 50_000)
            reviews = rng.randint(0, 40)
            served = rng.sample(AI_MODELS, rng.randint(1, 3))
            rows.append(
                {
                    "id": gpu_id,
                    "miner_id": miner_id,
                    "slot": str(slot),
                    "model": name,
                    "model_key": model_key(name),
                    "memory_gb": memory,
                    "cuda_cores": None,
                    "compute_capability": "8.9",
                    "cuda_version": "12.4",
                    "region": region,
                    "price_units": price_units,
                    "effective_price_units": price_units,
                    "pricing_mode": "fixed",
                    "description": None,
                    "ai_models": served,
                    "health": {},
                    "health_at": None,
                    "rating_sum": sum(rng.randint(3, 5) for _ in range(reviews)),
                    "review_count": reviews,
                    "total_bookings": rng.randint(0, 100),
                    "created_at": now,
                    "updated_at": now,
                    "delisted_at": None,
                }
            )
            keys.add(model_key(name))
            ai_rows.extend({"gpu_id": gpu_id, "model_key": model_key(a)} for a in served)
    # Bulk rows through SQLAlchemy Core on the models' tables: seeding, not the service.
    with engine.begin() as conn:
        conn.execute(insert(Miner), miners)
        # The table as the database has it: an earlier version's schema (bench/side_by_side.py)
        # lacks the columns added since, which keep their defaults here.
        conn.execute(insert(Table("gpus", MetaData(), autoload_with=conn)), rows)
        conn.execute(insert(GpuAiModel), ai_rows)
        conn.execute(insert(GpuModelKey), [{"model_key": k} for k in sorted(keys)])
    if engine.dialect.name == "postgresql":  # the statistics autovacuum would gather soon after
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("ANALYZE")
    engine.dispose()
    return [r["id"] for r in rows]


def seed_clients(url: str, *, count: int, prefix: str = "perf-client") -> list[str]:
    """``count`` clients with API keys, a large balance and an (empty) escrow account, as
    ``../shared/bench/booking-shape.pgbench.sql`` expects them; their keys."""
    now = datetime.now(UTC)

    async def work(conn: Conn) -> list[str]:
        keys = []
        for i in range(count):
            owner = f"{prefix}-{i}"
            _, secret = await create_key(conn, role="client", owner_id=owner, now=now)
            await deposit(conn, owner_id=owner, amount_units=10**15, now=now)
            await conn.execute(_ESCROW, owner)
            keys.append(secret)
        return keys

    async def run() -> list[str]:
        store = Store(url)
        await store.open()
        try:
            return await store.write(work)
        finally:
            await store.close()

    return asyncio.run(run())


_ESCROW = Query(
    "INSERT INTO accounts (owner_id, kind, balance_units) VALUES ($1, 'escrow', 0) "
    "ON CONFLICT (owner_id, kind) DO NOTHING"
)
