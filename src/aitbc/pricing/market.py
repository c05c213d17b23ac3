"""Recomputing model prices (writes) and the effective price of each GPU."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aitbc.config import Settings
from aitbc.gpus import status
from aitbc.pricing import engine
from aitbc.store.conn import Conn, Row
from aitbc.store.query import Query
from aitbc.store.values import as_time

RECENT_WINDOW = timedelta(hours=1)
log = logging.getLogger("aitbc.pricing")


@dataclass(frozen=True, slots=True)
class Inputs:
    supply: int
    busy: int
    recent_bookings: int
    base_units: int  # the median listed price (engine.base_price_units)

    @property
    def utilisation(self) -> int:
        return engine.utilisation_bp(self.busy, self.supply)


@dataclass(frozen=True, slots=True)
class Figures:
    inputs: Inputs
    base_units: int
    multiplier_bp: int

    @property
    def current_units(self) -> int:
        return engine.scale(self.base_units, self.multiplier_bp)


def _scope(kind: str, param: str) -> str:
    """The GPUs of a model: a GPU model's by key, an AI model's by the models they serve."""
    if kind == "gpu":
        return f"g.model_key = {param}"
    return f"g.id IN (SELECT a.gpu_id FROM gpu_ai_models a WHERE a.model_key = {param})"


def _per_kind(make: Callable[[str], str]) -> dict[str, Query]:
    return {kind: Query(make(kind)) for kind in ("gpu", "ai")}


_FROM = "FROM gpus g JOIN miners m ON m.id = g.miner_id"
# $1 the model's key, $2 now, $3 the heartbeat cutoff.
_LISTED_ROWS = _per_kind(
    lambda kind: (
        "SELECT g.id, g.model, g.region, g.price_units, g.effective_price_units, "
        f"g.rating_sum, g.review_count, {status.status_sql('$2', '$3')} AS status "
        f"{_FROM} WHERE {_scope(kind, '$1')} AND g.delisted_at IS NULL"
    )
)
_COUNTS = _per_kind(
    lambda kind: (
        "SELECT count(*) AS listed, "
        f"count(CASE WHEN {status.offline_sql('$2')} THEN NULL ELSE 1 END) AS online "
        f"{_FROM} WHERE {_scope(kind, '$1')} AND g.delisted_at IS NULL"
    )
)
# From the bookings that cover now (few), each GPU probed by its key.
_BUSY = _per_kind(
    lambda kind: (
        "SELECT count(DISTINCT b.gpu_id) FROM bookings b "
        "WHERE b.status = 'open' AND b.start_time <= $2 AND b.end_time > $2 AND EXISTS ("
        f"SELECT 1 {_FROM} WHERE g.id = b.gpu_id AND {_scope(kind, '$1')} "
        f"AND g.delisted_at IS NULL AND NOT {status.offline_sql('$3')})"
    )
)
_MEDIAN = _per_kind(
    lambda kind: (
        f"SELECT g.price_units FROM gpus g WHERE {_scope(kind, '$1')} "
        "AND g.delisted_at IS NULL ORDER BY g.price_units LIMIT 1 OFFSET $2"
    )
)
# Bookings made lately on the listed and online GPUs, but for those that ended charging
# nothing (a reservation cancelled before it began): demand that costs nothing to make and
# take back would let anyone raise a model's price.
_RECENT = _per_kind(
    lambda kind: (
        "SELECT count(*) FROM bookings b JOIN gpus g ON g.id = b.gpu_id "
        "JOIN miners m ON m.id = g.miner_id "
        f"WHERE {_scope(kind, '$1')} AND b.created_at > $2 "
        "AND (b.status = 'open' OR b.charged_units > 0) "
        f"AND g.delisted_at IS NULL AND NOT {status.offline_sql('$3')}"
    )
)
_STORED_COLUMNS = (
    "kind, model_key, base_price_units, current_price_units, multiplier_bp, utilisation_bp, "
    "recent_bookings, supply, updated_at"
)
_STORED = Query(f"SELECT {_STORED_COLUMNS} FROM model_prices WHERE kind = $1 AND model_key = $2")
_STORED_LOCKED = Query(
    f"SELECT {_STORED_COLUMNS} FROM model_prices WHERE kind = $1 AND model_key = $2 "
    "FOR UPDATE SKIP LOCKED"
)
_MULTIPLIER = Query("SELECT multiplier_bp FROM model_prices WHERE kind = 'gpu' AND model_key = $1")
_SAVE = Query(
    """
    INSERT INTO model_prices (kind, model_key, base_price_units, current_price_units,
        multiplier_bp, utilisation_bp, recent_bookings, supply, updated_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    ON CONFLICT (kind, model_key) DO UPDATE SET
        base_price_units = excluded.base_price_units,
        current_price_units = excluded.current_price_units,
        multiplier_bp = excluded.multiplier_bp, utilisation_bp = excluded.utilisation_bp,
        recent_bookings = excluded.recent_bookings, supply = excluded.supply,
        updated_at = excluded.updated_at
    """
)
_REMEMBER = Query(
    """
    INSERT INTO price_history (kind, model_key, at, base_price_units, current_price_units,
        multiplier_bp, utilisation_bp, recent_bookings, supply)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
    """
)
# Dynamic-mode GPUs of the model follow its multiplier (engine.scale, in SQL). Only the rows
# whose price moves are written: a GPU row written is a new revision (its rendered card is
# made again, gpus.cards) and a lock a booking of it would wait for.
_SCALED = f"(price_units * $2 + {engine.BP // 2}) / {engine.BP}"
_APPLY_MULTIPLIER = Query(
    f"UPDATE gpus SET effective_price_units = {_SCALED} WHERE model_key = $1 "
    f"AND pricing_mode = 'dynamic' AND effective_price_units <> {_SCALED}"
)
# Open offers of the model's GPUs take their new effective prices.
_FOLLOW_PRICES = Query(
    """
    UPDATE offers SET updated_at = $2, price_units =
        (SELECT g.effective_price_units FROM gpus g WHERE g.id = offers.gpu_id)
    WHERE status = 'open'
      AND gpu_id IN (SELECT g.id FROM gpus g WHERE g.model_key = $1)
      AND price_units <> (SELECT g.effective_price_units FROM gpus g WHERE g.id = offers.gpu_id)
    """
)
_UPDATED_AT = Query("SELECT updated_at FROM model_prices WHERE kind = $1 AND model_key = $2")
_CLAIM = Query.postgresql_only("SELECT pg_try_advisory_xact_lock(hashtext($1))")


async def listed_rows(
    conn: Conn, kind: str, key: str, now: datetime, heartbeat_timeout: int
) -> list[Row]:
    """The model's listed GPUs with their status."""
    return await conn.fetch(_LISTED_ROWS[kind], key, now, status.cutoff(now, heartbeat_timeout))


async def gather(conn: Conn, kind: str, key: str, now: datetime, heartbeat_timeout: int) -> Inputs:
    """The model's market as of ``now``, counted in the database (no row per GPU comes back):
    its listed and online GPUs, the online ones a booking covers now, the bookings made
    lately, and the median listed price (the lower middle, as engine.base_price_units)."""
    cutoff = status.cutoff(now, heartbeat_timeout)
    counts = await conn.fetchrow(_COUNTS[kind], key, cutoff)
    assert counts is not None
    busy = await conn.fetchval(_BUSY[kind], key, now, cutoff)
    median = None
    if counts["listed"]:
        median = await conn.fetchval(_MEDIAN[kind], key, (counts["listed"] - 1) // 2)
    recent = await conn.fetchval(_RECENT[kind], key, now - RECENT_WINDOW, cutoff)
    return Inputs(
        supply=counts["online"],
        busy=busy or 0,
        recent_bookings=recent or 0,
        base_units=median or 0,
    )


def figures(previous_bp: int | None, inputs: Inputs) -> Figures:
    target = engine.target_multiplier_bp(
        utilisation=inputs.utilisation, recent_bookings=inputs.recent_bookings, supply=inputs.supply
    )
    multiplier = engine.next_multiplier_bp(previous_bp or engine.BP, target)
    return Figures(
        inputs=inputs,
        base_units=inputs.base_units,
        multiplier_bp=multiplier,
    )


async def stored(conn: Conn, kind: str, key: str, *, lock: bool = False) -> Row | None:
    """The model's stored price (``model_prices``), if it has one."""
    return await conn.fetchrow(_STORED_LOCKED if lock else _STORED, kind, key)


async def recompute(
    conn: Conn, *, kind: str, key: str, now: datetime, settings: Settings, previous_bp: int | None
) -> Figures:
    result = figures(
        previous_bp, await gather(conn, kind, key, now, settings.heartbeat_timeout_seconds)
    )
    inputs = result.inputs
    values = (
        result.base_units,
        result.current_units,
        result.multiplier_bp,
        inputs.utilisation,
        inputs.recent_bookings,
        inputs.supply,
    )
    await conn.execute(_SAVE, kind, key, *values, now)
    await conn.execute(_REMEMBER, kind, key, now, *values)
    if kind == "gpu":
        await conn.execute(_APPLY_MULTIPLIER, key, result.multiplier_bp)
        await conn.execute(_FOLLOW_PRICES, key, now)
    return result


async def effective_price(
    conn: Conn, *, model_key: str, price_units: int, pricing_mode: str
) -> int:
    """What a GPU of this price and pricing mode lists at: its own price, or (dynamic) its
    price scaled by its model's demand multiplier."""
    multiplier = engine.BP
    if pricing_mode == "dynamic":
        multiplier = await conn.fetchval(_MULTIPLIER, model_key) or engine.BP
    return engine.scale(price_units, multiplier)


async def _claim(conn: Conn, kind: str, key: str) -> bool:
    """On PostgreSQL, an advisory lock for this model's recomputation, or False when another
    transaction holds it. (SQLite's write transactions are serial already.)"""
    if conn.dialect != "postgresql":
        return True
    return bool(await conn.fetchval(_CLAIM, f"aitbc-price:{kind}:{key}"))


async def recompute_if_stale(
    conn: Conn, *, kind: str, key: str, now: datetime, settings: Settings
) -> bool:
    """Recompute unless the stored price is fresh or another transaction is recomputing it.
    Called in a transaction of its own that holds no other locks (the sweeper's, one per
    model, or the one that follows a booking), so waiting for GPU rows cannot close a cycle."""
    fresh = now - timedelta(seconds=settings.pricing_interval_seconds)
    updated_at = await conn.fetchval(_UPDATED_AT, kind, key)
    if updated_at is not None and as_time(updated_at) > fresh:
        return False
    if not await _claim(conn, kind, key):
        return False
    row = await stored(conn, kind, key, lock=True)
    if row is not None and as_time(row["updated_at"]) > fresh:
        return False
    previous = row["multiplier_bp"] if row is not None else None
    await recompute(conn, kind=kind, key=key, now=now, settings=settings, previous_bp=previous)
    return True


def is_stale(updated_at: datetime | None, *, now: datetime, settings: Settings) -> bool:
    fresh = now - timedelta(seconds=settings.pricing_interval_seconds)
    return updated_at is None or updated_at <= fresh


# The model keys with a listed GPU, each found by an index probe, so that the sweeper's every
# tick costs the same at any registry size: GPU models from the registered keys; AI models by
# skipping through their index from one distinct key to the next.
_LISTED_GPU_MODELS = Query(
    "SELECT k.model_key FROM gpu_model_keys k WHERE EXISTS "
    "(SELECT 1 FROM gpus g WHERE g.model_key = k.model_key AND g.delisted_at IS NULL)"
)
_LISTED_AI_MODELS = Query(
    """
    WITH RECURSIVE k(model_key) AS (
        SELECT min(model_key) FROM gpu_ai_models
        UNION ALL
        SELECT (SELECT min(a.model_key) FROM gpu_ai_models a WHERE a.model_key > k.model_key)
        FROM k WHERE k.model_key IS NOT NULL)
    SELECT k.model_key FROM k WHERE k.model_key IS NOT NULL AND EXISTS (
        SELECT 1 FROM gpu_ai_models a JOIN gpus g ON g.id = a.gpu_id
        WHERE a.model_key = k.model_key AND g.delisted_at IS NULL)
    """
)


_FRESH_PRICES = Query("SELECT kind, model_key FROM model_prices WHERE updated_at > $1")


async def stale_models(conn: Conn, *, now: datetime, settings: Settings) -> list[tuple[str, str]]:
    """Every listed GPU model and AI model whose stored price is missing or stale."""
    fresh = now - timedelta(seconds=settings.pricing_interval_seconds)
    gpu_keys = await conn.fetch_values(_LISTED_GPU_MODELS)
    ai_keys = await conn.fetch_values(_LISTED_AI_MODELS)
    up_to_date = {(kind, key) for kind, key in await conn.fetch_values(_FRESH_PRICES, fresh)}
    wanted = {("gpu", row[0]) for row in gpu_keys} | {("ai", row[0]) for row in ai_keys}
    return sorted(wanted - up_to_date)


# -- keeping the history bounded -----------------------------------------------------------

FULL_HISTORY = timedelta(hours=24)
HOURLY_HISTORY = timedelta(days=90)
_DROP_OLD = Query("DELETE FROM price_history WHERE at < $1")
# Before $1, only the last recomputation of each hour stays (the point the hourly chart
# shows). The stored text of an SQLite time starts with its hour; PostgreSQL truncates.
_THIN_OUT = Query(
    """
    DELETE FROM price_history WHERE at < $1 AND id NOT IN (
        SELECT max(id) FROM price_history WHERE at < $1
        GROUP BY kind, model_key, substr(at, 1, 13))
    """,
    postgresql="""
    DELETE FROM price_history WHERE at < $1 AND id NOT IN (
        SELECT max(id) FROM price_history WHERE at < $1
        GROUP BY kind, model_key, date_trunc('hour', at))
    """,
)


async def prune_history(conn: Conn, *, now: datetime) -> None:
    """Every point of the last 24 hours; one an hour (the hour's last) back to 90 days;
    nothing older. At one recomputation a minute that is at most 1,440 + 2,136 points per
    model, however long the service runs."""
    await conn.execute(_DROP_OLD, now - HOURLY_HISTORY)
    await conn.execute(_THIN_OUT, now - FULL_HISTORY)
