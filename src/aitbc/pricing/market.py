"""Recomputing model prices (writes) and the effective price of each GPU."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_, select, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from aitbc.config import Settings
from aitbc.db import Database
from aitbc.gpus.query import status_columns
from aitbc.models import Booking, Gpu, GpuAiModel, Miner, ModelPrice, Offer, PriceHistory
from aitbc.models.booking import OPEN
from aitbc.pricing import engine
from aitbc.store.conn import Conn, SessionConn, drive
from aitbc.store.query import Query

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


def scope(kind: str, key: str) -> ColumnElement[bool]:
    if kind == "gpu":
        return Gpu.model_key == key
    return Gpu.id.in_(select(GpuAiModel.gpu_id).where(GpuAiModel.model_key == key))


def listed_rows(
    session: Session, kind: str, key: str, now: datetime, heartbeat_timeout: int
) -> list[Any]:
    status, _ = status_columns(now, heartbeat_timeout)
    return list(
        session.execute(
            select(Gpu, status)
            .join(Miner, Miner.id == Gpu.miner_id)
            .where(scope(kind, key), Gpu.delisted_at.is_(None))
        )
    )


def gather(session: Session, kind: str, key: str, now: datetime, heartbeat_timeout: int) -> Inputs:
    """The model's market as of ``now``, counted in the database (no row per GPU comes back):
    its listed and online GPUs, the online ones a booking covers now, the bookings made
    lately, and the median listed price (the lower middle, as engine.base_price_units)."""
    cutoff = now - timedelta(seconds=heartbeat_timeout)
    offline = case((or_(Miner.last_heartbeat < cutoff, Miner.reported_status == "offline"), 1))
    listed = (scope(kind, key), Gpu.delisted_at.is_(None))
    count, supply = session.execute(
        select(func.count(), func.count(case((offline.is_(None), 1))))
        .select_from(Gpu)
        .join(Miner, Miner.id == Gpu.miner_id)
        .where(*listed)
    ).one()
    # From the bookings that cover now (few), each GPU probed by its key.
    online_listed = (
        select(Gpu.id)
        .join(Miner, Miner.id == Gpu.miner_id)
        .where(Gpu.id == Booking.gpu_id, *listed, offline.is_(None))
    )
    busy = session.scalar(
        select(func.count(Booking.gpu_id.distinct())).where(
            Booking.status == OPEN,
            Booking.start_time <= now,
            Booking.end_time > now,
            online_listed.exists(),
        )
    )
    median = None
    if count:
        median = session.scalar(
            select(Gpu.price_units)
            .where(*listed)
            .order_by(Gpu.price_units)
            .offset((count - 1) // 2)
            .limit(1)
        )
    recent = session.scalar(
        select(func.count())
        .select_from(Booking)
        .join(Gpu, Gpu.id == Booking.gpu_id)
        .where(scope(kind, key), Booking.created_at > now - RECENT_WINDOW)
    )
    return Inputs(
        supply=supply,
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


def stored(session: Session, kind: str, key: str, *, lock: bool = False) -> ModelPrice | None:
    query = select(ModelPrice).where(ModelPrice.kind == kind, ModelPrice.model_key == key)
    if lock:
        query = query.with_for_update(skip_locked=True).execution_options(populate_existing=True)
    return session.scalars(query).first()


def recompute(
    session: Session, *, kind: str, key: str, now: datetime, settings: Settings
) -> ModelPrice:
    row = stored(session, kind, key)
    result = figures(
        row.multiplier_bp if row else None,
        gather(session, kind, key, now, settings.heartbeat_timeout_seconds),
    )
    if row is None:
        row = ModelPrice(kind=kind, model_key=key)
        session.add(row)
    row.base_price_units = result.base_units
    row.current_price_units = result.current_units
    row.multiplier_bp = result.multiplier_bp
    row.utilisation_bp = result.inputs.utilisation
    row.recent_bookings = result.inputs.recent_bookings
    row.supply = result.inputs.supply
    row.updated_at = now
    session.add(
        PriceHistory(
            kind=kind,
            model_key=key,
            at=now,
            base_price_units=row.base_price_units,
            current_price_units=row.current_price_units,
            multiplier_bp=row.multiplier_bp,
            utilisation_bp=row.utilisation_bp,
            recent_bookings=row.recent_bookings,
            supply=row.supply,
        )
    )
    if kind == "gpu":
        apply_multiplier(session, model_key=key, multiplier_bp=row.multiplier_bp)
        follow_prices(session, model_key=key, now=now)
    session.flush()
    return row


def apply_multiplier(session: Session, *, model_key: str, multiplier_bp: int) -> None:
    """Dynamic-mode GPUs of the model follow its multiplier (engine.scale, in SQL). Only the
    rows whose price moves are written: a GPU row written is a new revision (its rendered
    card is made again, gpus.cards) and a lock a booking of it would wait for."""
    scaled = (Gpu.price_units * multiplier_bp + engine.BP // 2) // engine.BP
    session.execute(
        update(Gpu)
        .where(
            Gpu.model_key == model_key,
            Gpu.pricing_mode == "dynamic",
            Gpu.effective_price_units != scaled,
        )
        .values(effective_price_units=scaled)
        .execution_options(synchronize_session=False)
    )


def follow_prices(session: Session, *, model_key: str, now: datetime) -> None:
    """Open offers of the model's GPUs take their new effective prices."""
    price = select(Gpu.effective_price_units).where(Gpu.id == Offer.gpu_id).scalar_subquery()
    session.execute(
        update(Offer)
        .where(
            Offer.status == "open",
            Offer.gpu_id.in_(select(Gpu.id).where(Gpu.model_key == model_key)),
            Offer.price_units != price,
        )
        .values(price_units=price, updated_at=now)
        .execution_options(synchronize_session=False)
    )


def refresh_effective_price(session: Session, gpu: Gpu) -> None:
    """After a GPU's own price or pricing mode changed."""
    multiplier = engine.BP
    if gpu.pricing_mode == "dynamic":
        row = stored(session, "gpu", gpu.model_key)
        multiplier = row.multiplier_bp if row else engine.BP
    gpu.effective_price_units = engine.scale(gpu.price_units, multiplier)


def _claim(session: Session, kind: str, key: str) -> bool:
    """On PostgreSQL, an advisory lock for this model's recomputation, or False when another
    transaction holds it. (SQLite's write transactions are serial already.)"""
    if session.get_bind().dialect.name != "postgresql":
        return True
    return bool(
        session.scalar(
            select(func.pg_try_advisory_xact_lock(func.hashtext(f"aitbc-price:{kind}:{key}")))
        )
    )


def recompute_if_stale(
    session: Session, *, kind: str, key: str, now: datetime, settings: Settings
) -> bool:
    """Recompute unless the stored price is fresh or another transaction is recomputing it.
    Called in a transaction of its own that holds no other locks (the sweeper's, one per
    model, or the one that follows a booking), so waiting for GPU rows cannot close a cycle."""
    fresh = now - timedelta(seconds=settings.pricing_interval_seconds)
    updated_at = session.scalar(
        select(ModelPrice.updated_at).where(ModelPrice.kind == kind, ModelPrice.model_key == key)
    )
    if updated_at is not None and updated_at > fresh:
        return False
    if not _claim(session, kind, key):
        return False
    row = stored(session, kind, key, lock=True)
    if row is not None and row.updated_at > fresh:
        return False
    try:
        with session.begin_nested():
            recompute(session, kind=kind, key=key, now=now, settings=settings)
    except (IntegrityError, OperationalError):
        log.warning("recomputing the %s price of %r failed; the next sweep retries", kind, key)
        return False
    return True


def is_stale(updated_at: datetime | None, *, now: datetime, settings: Settings) -> bool:
    fresh = now - timedelta(seconds=settings.pricing_interval_seconds)
    return updated_at is None or updated_at <= fresh


def reprice_model(db: Database, *, key: str, now: datetime, settings: Settings) -> None:
    """After a booking of a model whose stored price was stale has committed: recompute it
    in a write transaction of its own (a booking must not lock other GPUs after the
    client's accounts)."""
    try:
        with db.session(write=True) as session:
            recompute_if_stale(session, kind="gpu", key=key, now=now, settings=settings)
            session.commit()
    except Exception:  # the booking stands; the sweeper will reprice
        log.exception("repricing after a booking failed")


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


def stale_models(session: Session, *, now: datetime, settings: Settings) -> list[tuple[str, str]]:
    """Every listed GPU model and AI model whose stored price is missing or stale."""
    fresh = now - timedelta(seconds=settings.pricing_interval_seconds)
    conn = SessionConn(session)
    gpu_keys = drive(conn.fetch_values(_LISTED_GPU_MODELS))
    ai_keys = drive(conn.fetch_values(_LISTED_AI_MODELS))
    up_to_date = {
        (kind, key)
        for kind, key in session.execute(
            select(ModelPrice.kind, ModelPrice.model_key).where(ModelPrice.updated_at > fresh)
        )
    }
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
