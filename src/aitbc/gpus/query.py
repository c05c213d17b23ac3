"""GPU status as SQLAlchemy expressions, for the ORM-side readers (matching, pricing,
metrics). The request path's own reads are in ``gpus.listing``; both derive status by the
same rule: delisted, else offline (heartbeat older than the timeout, or reported offline),
else booked (an open booking covers now), else available."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_, select
from sqlalchemy.orm import Session

from aitbc.models import Booking, Gpu, Miner
from aitbc.models.booking import OPEN


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


def average_rating(rating_sum: int, review_count: int) -> Decimal | None:
    if review_count == 0:
        return None
    return (Decimal(rating_sum) / review_count).quantize(Decimal("0.01"), ROUND_HALF_UP)


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


@dataclass(frozen=True, slots=True)
class GpuVitals:
    """A listed GPU's latest figures (``health`` only when reported within the heartbeat
    timeout, else empty) and its uptime in basis points."""

    gpu_id: str
    miner_id: str
    model: str
    health: dict[str, Any]
    uptime_24h_bp: int
    uptime_7d_bp: int


def vitals(session: Session, *, now: datetime, heartbeat_timeout: int) -> list[GpuVitals]:
    fresh_after = now - timedelta(seconds=heartbeat_timeout)
    rows = session.execute(
        select(
            Gpu.id,
            Gpu.miner_id,
            Gpu.model,
            Gpu.health,
            Gpu.health_at,
            Gpu.uptime_24h_bp,
            Gpu.uptime_7d_bp,
        )
        .where(Gpu.delisted_at.is_(None))
        .order_by(Gpu.id)
    )
    return [
        GpuVitals(
            gpu_id,
            miner_id,
            model,
            health if health_at is not None and health_at >= fresh_after and health else {},
            day,
            week,
        )
        for gpu_id, miner_id, model, health, health_at, day, week in rows
    ]
