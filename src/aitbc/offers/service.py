"""Offers kept in step with the registry, and the marketplace statistics."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, case, func, or_, select, update
from sqlalchemy.orm import Session

from aitbc.gpus.query import average_rating, status_columns
from aitbc.kit.ids import new_id
from aitbc.kit.money import divide_units, from_units
from aitbc.models import Bid, Gpu, Miner, Offer
from aitbc.offers.schemas import MarketplaceStats, OfferPublic, SyncResult

DEFAULT_SLA = "standard"


def _desired(gpu: Gpu) -> dict[str, Any]:
    return {
        "provider": gpu.miner_id,
        "capacity": 1,
        "price_units": gpu.effective_price_units,
        "sla": DEFAULT_SLA,
        "status": "open",
        "attributes": {
            "gpu_model": gpu.model,
            "gpu_memory_gb": gpu.memory_gb,
            "cuda_version": gpu.cuda_version,
            "compute_capability": gpu.compute_capability,
            "cuda_cores": gpu.cuda_cores,
            "region": gpu.region,
            "ai_models": list(gpu.ai_models or []),
        },
    }


def sync(
    session: Session, *, now: datetime, heartbeat_timeout: int, miner_id: str | None = None
) -> SyncResult:
    """One open offer per listed GPU of an online miner; offers of offline or delisted GPUs
    close. Only real changes are written, so a second run changes nothing. With ``miner_id``,
    only that miner's GPUs (what its registration, heartbeat or changes call)."""
    status, _ = status_columns(now, heartbeat_timeout)
    query = select(Gpu, status).join(Miner, Miner.id == Gpu.miner_id)
    wanted = select(Offer).where(Offer.gpu_id.is_not(None))
    if miner_id is not None:
        query = query.where(Gpu.miner_id == miner_id)
        wanted = wanted.where(Offer.gpu_id.in_(select(Gpu.id).where(Gpu.miner_id == miner_id)))
    gpus = session.execute(query).all()
    offers = {o.gpu_id: o for o in session.scalars(wanted.with_for_update())}
    counts = dict.fromkeys(("created", "updated", "closed", "unchanged"), 0)
    for gpu, gpu_status in gpus:
        offer = offers.get(gpu.id)
        if gpu_status in ("offline", "delisted"):
            if offer is not None and offer.status == "open":
                offer.status, offer.updated_at = "closed", now
                counts["closed"] += 1
            elif offer is not None:
                counts["unchanged"] += 1
            continue
        desired = _desired(gpu)
        if offer is None:
            session.add(
                Offer(
                    id=new_id("off"),
                    gpu_id=gpu.id,
                    source="miner_sync",
                    created_at=now,
                    updated_at=now,
                    **desired,
                )
            )
            counts["created"] += 1
        elif any(getattr(offer, k) != v for k, v in desired.items()):
            for key, value in desired.items():
                setattr(offer, key, value)
            offer.updated_at = now
            counts["updated"] += 1
        else:
            counts["unchanged"] += 1
    session.flush()
    return SyncResult(**counts)


def close_silent(session: Session, *, now: datetime, heartbeat_timeout: int) -> int:
    """Close the open offers of GPUs whose miner fell silent (or which were delisted): the
    sweeper's part, since nothing else happens when a miner just stops."""
    cutoff = now - timedelta(seconds=heartbeat_timeout)
    gone = (
        select(Gpu.id)
        .join(Miner, Miner.id == Gpu.miner_id)
        .where(
            or_(
                Gpu.delisted_at.is_not(None),
                Miner.last_heartbeat < cutoff,
                Miner.reported_status == "offline",
            )
        )
    )
    closed = session.execute(
        update(Offer)
        .where(Offer.status == "open", Offer.gpu_id.in_(gone))
        .values(status="closed", updated_at=now)
        .execution_options(synchronize_session=False)
    )
    return int(closed.rowcount or 0)  # type: ignore[attr-defined]


def shown_status(gpu_status: ColumnElement[Any]) -> ColumnElement[str]:
    """An offer's status as it is shown and filtered: what its GPU allows now, in the GPU's
    words. ``open`` only while the GPU can be booked; ``booked`` while it is; ``closed`` once
    the offer was closed or its GPU is offline or delisted (before the sweeper closes it)."""
    return case(
        (Offer.status == "closed", "closed"),
        (gpu_status.in_(("offline", "delisted")), "closed"),
        (gpu_status == "booked", "booked"),
        else_="open",
    )


def list_offers(
    session: Session,
    *,
    now: datetime,
    heartbeat_timeout: int,
    status: str | None,
    provider: str | None,
    limit: int,
    offset: int,
) -> list[OfferPublic]:
    gpu_status, booking_expires = status_columns(now, heartbeat_timeout)
    shown = shown_status(gpu_status)
    query = (
        select(Offer, Gpu, gpu_status, booking_expires, shown)
        .outerjoin(Gpu, Gpu.id == Offer.gpu_id)
        .outerjoin(Miner, Miner.id == Gpu.miner_id)
    )
    if status is not None:
        query = query.where(shown == status)
    if provider is not None:
        query = query.where(Offer.provider == provider)
    query = query.order_by(Offer.created_at.desc(), Offer.id).limit(limit).offset(offset)
    return [_public(*row) for row in session.execute(query)]


def _public(
    offer: Offer, gpu: Gpu | None, gpu_status: str | None, expires: Any, shown: str
) -> OfferPublic:
    return OfferPublic(
        id=offer.id,
        provider=offer.provider,
        capacity=offer.capacity,
        price=from_units(offer.price_units),
        sla=offer.sla,
        status=shown,  # type: ignore[arg-type]
        gpu_id=offer.gpu_id,
        gpu_model=gpu.model if gpu else None,
        gpu_memory=gpu.memory_gb if gpu else None,
        gpu_status=gpu_status if gpu else None,  # type: ignore[arg-type]
        booking_expires=expires if gpu else None,
        total_bookings=gpu.total_bookings if gpu else None,
        average_rating=average_rating(gpu.rating_sum, gpu.review_count) if gpu else None,
        attributes=dict(offer.attributes or {}),
        created_at=offer.created_at,
        updated_at=offer.updated_at,
    )


def stats(session: Session, *, now: datetime, heartbeat_timeout: int) -> MarketplaceStats:
    """Offers not closed (open or booked now), the capacity of those open now, their average
    price, and the active bids."""
    gpu_status, _ = status_columns(now, heartbeat_timeout)
    shown = shown_status(gpu_status)
    count, capacity, price_sum = session.execute(
        select(
            func.count(),
            func.coalesce(func.sum(case((shown == "open", Offer.capacity), else_=0)), 0),
            func.coalesce(func.sum(Offer.price_units), 0),
        )
        .select_from(Offer)
        .outerjoin(Gpu, Gpu.id == Offer.gpu_id)
        .outerjoin(Miner, Miner.id == Gpu.miner_id)
        .where(shown != "closed")
    ).one()
    bids = session.scalar(
        select(func.count()).select_from(Bid).where(Bid.status == "open", Bid.expires_at > now)
    )
    return MarketplaceStats(
        totalOffers=count,
        openCapacity=int(capacity),
        averagePrice=from_units(divide_units(int(price_sum), count) if count else 0),
        activeBids=bids or 0,
    )
