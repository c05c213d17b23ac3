"""The one query that reads GPUs with their effective status.

Status is derived at read time from the miner's last heartbeat and the booking windows, so
it is right whether or not any background job has run."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, or_, select
from sqlalchemy.orm import Session

from aitbc.gpus.naming import like_pattern
from aitbc.gpus.schemas import GpuPublic, SortKey
from aitbc.kit.money import from_units
from aitbc.models import Booking, Gpu, Miner
from aitbc.models.booking import OPEN


@dataclass(frozen=True, slots=True)
class GpuFilters:
    available: bool | None = None
    model: str | None = None
    memory_min: int | None = None
    price_max_units: int | None = None
    region: str | None = None
    status: str | None = None
    miner_id: str | None = None


def status_columns(now: datetime, heartbeat_timeout: int) -> tuple[ColumnElement[Any], ...]:
    """(status, booking_expires) as SQL expressions over Gpu joined with Miner."""
    cutoff = now - timedelta(seconds=heartbeat_timeout)
    offline = or_(Miner.last_heartbeat < cutoff, Miner.reported_status == "offline")
    current_end = (
        select(Booking.end_time)
        .where(
            Booking.gpu_id == Gpu.id,
            Booking.status == OPEN,
            Booking.start_time <= now,
            Booking.end_time > now,
        )
        .limit(1)
        .scalar_subquery()
    )
    status = case(
        (Gpu.delisted_at.is_not(None), "delisted"),
        (offline, "offline"),
        (current_end.is_not(None), "booked"),
        else_="available",
    ).label("status")
    booking_expires = current_end.label("booking_expires")
    return status, booking_expires


# Plain columns rather than ORM entities: a list of GPUs is read, never changed, so the
# identity map and change tracking would only cost time.
_COLUMNS = (
    Gpu.id,
    Gpu.miner_id,
    Gpu.model,
    Gpu.memory_gb,
    Gpu.cuda_cores,
    Gpu.compute_capability,
    Gpu.cuda_version,
    Gpu.region,
    Gpu.effective_price_units,
    Gpu.price_units,
    Gpu.pricing_mode,
    Gpu.ai_models,
    Gpu.description,
    Gpu.rating_sum,
    Gpu.review_count,
    Gpu.total_bookings,
    Gpu.created_at,
    Gpu.health,
)


def _base_query(now: datetime, heartbeat_timeout: int) -> Select[Any]:
    status, booking_expires = status_columns(now, heartbeat_timeout)
    return select(*_COLUMNS, Miner.last_heartbeat, status, booking_expires).join(
        Miner, Miner.id == Gpu.miner_id
    )


_SORTS = {
    "price": (Gpu.effective_price_units.asc(), Gpu.id.asc()),
    "memory": (Gpu.memory_gb.desc(), Gpu.effective_price_units.asc(), Gpu.id.asc()),
    "rating": (
        (Gpu.rating_sum * 1.0 / func.nullif(Gpu.review_count, 0)).desc().nulls_last(),
        Gpu.review_count.desc(),
        Gpu.id.asc(),
    ),
    "newest": (Gpu.created_at.desc(), Gpu.id.desc()),
}


def list_gpus(
    session: Session,
    *,
    now: datetime,
    heartbeat_timeout: int,
    filters: GpuFilters,
    sort: SortKey,
    limit: int,
    offset: int,
) -> list[GpuPublic]:
    query = _base_query(now, heartbeat_timeout)
    status = query.selected_columns.status
    if filters.status == "delisted":
        query = query.where(Gpu.delisted_at.is_not(None))
    else:
        query = query.where(Gpu.delisted_at.is_(None))
        if filters.status is not None:
            query = query.where(status == filters.status)
    if filters.available:
        query = query.where(status == "available")
    if filters.model:
        query = query.where(Gpu.model_key.like(like_pattern(filters.model), escape="\\"))
    if filters.memory_min is not None:
        query = query.where(Gpu.memory_gb >= filters.memory_min)
    if filters.price_max_units is not None:
        query = query.where(Gpu.effective_price_units <= filters.price_max_units)
    if filters.region is not None:
        query = query.where(func.lower(Gpu.region) == filters.region.lower())
    if filters.miner_id is not None:
        query = query.where(Gpu.miner_id == filters.miner_id)
    query = query.order_by(*_SORTS[sort]).limit(limit).offset(offset)
    return [_to_public(row) for row in session.execute(query)]


def get_gpu(
    session: Session, *, gpu_id: str, now: datetime, heartbeat_timeout: int
) -> GpuPublic | None:
    row = session.execute(_base_query(now, heartbeat_timeout).where(Gpu.id == gpu_id)).first()
    return None if row is None else _to_public(row)


def average_rating(rating_sum: int, review_count: int) -> Decimal | None:
    if review_count == 0:
        return None
    return (Decimal(rating_sum) / review_count).quantize(Decimal("0.01"), ROUND_HALF_UP)


def _to_public(row: Any) -> GpuPublic:
    return GpuPublic(
        gpu_id=row.id,
        miner_id=row.miner_id,
        model=row.model,
        memory_gb=row.memory_gb,
        cuda_cores=row.cuda_cores,
        compute_capability=row.compute_capability,
        cuda_version=row.cuda_version,
        region=row.region,
        price_per_hour=from_units(row.effective_price_units),
        base_price_per_hour=from_units(row.price_units),
        pricing_mode=row.pricing_mode,
        status=row.status,
        ai_models=list(row.ai_models or []),
        description=row.description,
        average_rating=average_rating(row.rating_sum, row.review_count),
        review_count=row.review_count,
        total_bookings=row.total_bookings,
        booking_expires=row.booking_expires,
        created_at=row.created_at,
        last_heartbeat=row.last_heartbeat,
        health=dict(row.health or {}),
    )


def count_by_status(session: Session, *, now: datetime, heartbeat_timeout: int) -> dict[str, int]:
    status, _ = status_columns(now, heartbeat_timeout)
    query = (
        select(status, func.count())
        .select_from(Gpu)
        .join(Miner, Miner.id == Gpu.miner_id)
        .group_by(status)
    )
    counts = {"available": 0, "booked": 0, "offline": 0, "delisted": 0}
    counts.update({name: n for name, n in session.execute(query).all()})
    return counts
