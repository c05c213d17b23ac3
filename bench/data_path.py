"""Which layer the domain should reach its data through, measured: the same read (one GPU by
id) and the same write transaction (read a row, update it) through

- the store (``aitbc.store``: asyncpg, or sqlite3 on the loop and a writer thread),
- SQLAlchemy's async engine, Core statements (asyncpg; aiosqlite is not installed),
- SQLAlchemy's async ORM session (``session.get`` and a flush),

in one process on uvloop, one caller at a time, so the figure is each layer's own cost per
call on top of the database's.

    .venv/bin/python bench/data_path.py [--calls 3000] [--out FILE]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import harness
import uvloop
from seed import seed_gpus
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from aitbc.migrate import upgrade
from aitbc.models import Gpu, Miner
from aitbc.store.conn import Conn
from aitbc.store.query import Query
from aitbc.store.store import Store

PG = "postgresql+psycopg://postgres@127.0.0.1:5432/aitbc_bench_data_path"
READ = "SELECT id, miner_id, model, memory_gb, price_units, delisted_at FROM gpus WHERE id = $1"
LOCK = "SELECT id, last_heartbeat FROM miners WHERE id = $1 FOR UPDATE"
TOUCH = "UPDATE miners SET last_heartbeat = $2 WHERE id = $1"


async def timed(calls: int, one: Callable[[int], Awaitable[object]]) -> float:
    """Median of five batches, in microseconds per call."""
    for i in range(200):  # warm-up: connections opened, statements prepared
        await one(i)
    batches = []
    for _ in range(5):
        start = time.perf_counter()
        for i in range(calls // 5):
            await one(i)
        batches.append((time.perf_counter() - start) / (calls // 5) * 1e6)
    return statistics.median(batches)


async def measure(calls: int, gpu_ids: list[str], miner_ids: list[str]) -> dict[str, float]:
    results: dict[str, float] = {}
    now = datetime.now(UTC)
    naive_now = now.replace(tzinfo=None)  # what a timestamp column takes through plain asyncpg

    store = Store(PG, pool_size=4)
    await store.open()
    read_q, lock_q, touch_q = Query(READ), Query(LOCK), Query(TOUCH)

    async def store_read(i: int) -> object:
        return await store.fetchrow(read_q, gpu_ids[i % len(gpu_ids)])

    async def store_write(i: int) -> object:
        async def work(conn: Conn) -> int:
            await conn.fetchrow(lock_q, miner_ids[i % len(miner_ids)])
            return await conn.execute(touch_q, miner_ids[i % len(miner_ids)], now)

        return await store.write(work)

    results["store: read"] = await timed(calls, store_read)
    results["store: write transaction"] = await timed(calls, store_write)
    await store.close()

    engine = create_async_engine(PG.replace("+psycopg", "+asyncpg"), pool_size=4, max_overflow=0)
    core_read = text(READ.replace("$1", ":id"))
    core_lock = text(LOCK.replace("$1", ":id"))
    core_touch = text(TOUCH.replace("$1", ":id").replace("$2", ":at"))

    async def core_read_one(i: int) -> object:
        async with engine.connect() as conn:
            return (await conn.execute(core_read, {"id": gpu_ids[i % len(gpu_ids)]})).first()

    async def core_write(i: int) -> object:
        miner = miner_ids[i % len(miner_ids)]
        async with engine.begin() as conn:
            await conn.execute(core_lock, {"id": miner})
            return (await conn.execute(core_touch, {"id": miner, "at": naive_now})).rowcount

    results["SQLAlchemy async Core: read"] = await timed(calls, core_read_one)
    results["SQLAlchemy async Core: write transaction"] = await timed(calls, core_write)

    sessions = async_sessionmaker(engine, expire_on_commit=False, class_=AsyncSession)

    async def orm_read(i: int) -> object:
        async with sessions() as session:
            return await session.get(Gpu, gpu_ids[i % len(gpu_ids)])

    async def orm_write(i: int) -> object:
        miner_id = miner_ids[i % len(miner_ids)]
        async with sessions() as session, session.begin():
            miner = (
                await session.execute(select(Miner).where(Miner.id == miner_id).with_for_update())
            ).scalar_one()
            miner.last_heartbeat = now
            return miner

    async def orm_bulk_write(i: int) -> object:
        miner_id = miner_ids[i % len(miner_ids)]
        async with sessions() as session, session.begin():
            await session.execute(select(Miner.id).where(Miner.id == miner_id).with_for_update())
            await session.execute(
                update(Miner).where(Miner.id == miner_id).values(last_heartbeat=now)
            )
            return None

    results["SQLAlchemy async ORM: read (session.get)"] = await timed(calls, orm_read)
    results["SQLAlchemy async ORM: write transaction (object)"] = await timed(calls, orm_write)
    results["SQLAlchemy async ORM: write transaction (statements)"] = await timed(
        calls, orm_bulk_write
    )
    await engine.dispose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    harness.fresh_database(PG)
    upgrade(PG)
    gpu_ids = seed_gpus(PG, gpus=10_000)
    from sqlalchemy import create_engine

    sync = create_engine(PG)
    with sync.connect() as conn:
        miner_ids = [row[0] for row in conn.execute(text("SELECT id FROM miners"))]
    sync.dispose()
    results = uvloop.run(measure(args.calls, gpu_ids, miner_ids))
    harness.drop_database(PG)
    base_read = results["store: read"]
    base_write = results["store: write transaction"]
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"### The data path, per call (PostgreSQL {harness.postgres_version()}, {stamp})",
        "",
        "| layer and operation | µs per call | against the store |",
        "|---|---:|---:|",
    ]
    for name, micros in results.items():
        base = base_read if "read" in name.split(":")[1] else base_write
        lines.append(f"| {name} | {micros:,.0f} | {micros / base:.2f} times |")
    report = "\n".join(lines) + "\n"
    print(report)
    if args.out:
        args.out.write_text(report)


if __name__ == "__main__":
    main()
