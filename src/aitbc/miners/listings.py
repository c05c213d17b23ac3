"""A provider's listings in the GPU registry: single-GPU registration (the CLI's path), price
and description updates, delisting and relisting. The reads are ``aitbc.gpus``'s."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from aitbc.auth.principal import Principal
from aitbc.bookings.settlement import settle_due
from aitbc.config import Settings
from aitbc.errors import Conflict, Forbidden, Invalid, NotFound
from aitbc.gpus.naming import model_key
from aitbc.gpus.prices import check_price
from aitbc.gpus.schemas import GpuSpec, GpuUpdate
from aitbc.kit.ids import new_id
from aitbc.kit.money import to_units
from aitbc.miners.service import (
    after_hearing,
    initial_uptime,
    refresh_effective_price,
    remember_model_key,
    set_ai_models,
    sync_offers,
    touch_miner,
)
from aitbc.models import Booking, Gpu
from aitbc.models.booking import OPEN
from aitbc.store.conn import SessionConn, drive

DEFAULT_MINER_HEADER = "default"


def resolve_miner_id(principal: Principal, header_miner_id: str | None) -> str:
    named = (header_miner_id or "").strip()
    if principal.role == "admin":
        if not named or named == DEFAULT_MINER_HEADER:
            raise Invalid(
                "An admin registering a GPU must name the miner in X-Miner-ID.",
                code="miner_id_required",
            )
        return named
    if named and named not in (DEFAULT_MINER_HEADER, principal.owner_id):
        raise Forbidden(
            f"X-Miner-ID {named!r} does not match your key's miner {principal.owner_id!r}.",
            code="miner_id_mismatch",
        )
    return principal.owner_id


def register_gpu(
    session: Session, *, miner_id: str, spec: GpuSpec, settings: Settings, now: datetime
) -> Gpu:
    heard = touch_miner(session, miner_id=miner_id, now=now, region=spec.region)
    miner = heard.miner
    price = spec.price_per_hour if spec.price_per_hour is not None else settings.default_price
    check_price(price, settings)
    day, week = initial_uptime(session, miner.id)
    gpu_id = new_id("gpu")
    gpu = Gpu(
        id=gpu_id,
        miner_id=miner.id,
        slot=gpu_id,
        model=spec.name.strip(),
        model_key=model_key(spec.name),
        memory_gb=spec.memory_gb or 0,
        cuda_cores=spec.cuda_cores,
        compute_capability=spec.compute_capability,
        cuda_version=spec.cuda_version,
        region=spec.region or miner.region,
        price_units=to_units(price),
        effective_price_units=to_units(price),
        pricing_mode=spec.pricing_mode,
        description=spec.description,
        ai_models=[],
        health={},
        rating_sum=0,
        review_count=0,
        total_bookings=0,
        created_at=now,
        updated_at=now,
        uptime_24h_bp=day,
        uptime_7d_bp=week,
    )
    refresh_effective_price(session, gpu)
    session.add(gpu)
    session.flush()
    remember_model_key(session, gpu.model_key)
    set_ai_models(session, gpu, spec.ai_models)
    after_hearing(session, heard, now=now, settings=settings)
    return gpu


def owned_gpu_for_update(session: Session, *, gpu_id: str, principal: Principal) -> Gpu:
    gpu = session.get(Gpu, gpu_id, with_for_update=True)
    if gpu is None:
        raise NotFound(f"No GPU {gpu_id!r}.", code="gpu_not_found")
    if principal.role != "admin" and gpu.miner_id != principal.owner_id:
        raise Forbidden("Only the GPU's miner (or an admin) may change it.", code="not_gpu_owner")
    return gpu


def update_gpu(
    session: Session, *, gpu: Gpu, body: GpuUpdate, now: datetime, settings: Settings
) -> Gpu:
    if body.price_per_hour is not None:
        gpu.price_units = to_units(check_price(body.price_per_hour, settings))
    if "description" in body.model_fields_set:
        gpu.description = body.description
    if body.pricing_mode is not None:
        gpu.pricing_mode = body.pricing_mode
    refresh_effective_price(session, gpu)
    gpu.updated_at = now
    session.flush()
    sync_offers(session, miner_id=gpu.miner_id, now=now, settings=settings)
    return gpu


def delist_gpu(session: Session, *, gpu: Gpu, now: datetime, settings: Settings) -> Gpu:
    """Refused while a booking is running or reserved; future clients must not lose a GPU
    they paid for."""
    drive(
        settle_due(
            SessionConn(session),
            now=now,
            fee_bps=settings.platform_fee_bps,
            policy=settings.outage_policy,
            gpu_id=gpu.id,
        )
    )
    still_open = session.scalar(
        select(Booking.id).where(Booking.gpu_id == gpu.id, Booking.status == OPEN).limit(1)
    )
    if still_open is not None:
        raise Conflict(
            "This GPU has a booking or reservation that has not ended.", code="gpu_booked"
        )
    if gpu.delisted_at is None:
        gpu.delisted_at = now
        gpu.updated_at = now
        session.flush()
        sync_offers(session, miner_id=gpu.miner_id, now=now, settings=settings)
    return gpu


def relist_gpu(session: Session, *, gpu: Gpu, now: datetime, settings: Settings) -> Gpu:
    """Its owner (or an admin) lists a delisted GPU again; nothing else does."""
    if gpu.delisted_at is not None:
        gpu.delisted_at = None
        gpu.updated_at = now
        session.flush()
        sync_offers(session, miner_id=gpu.miner_id, now=now, settings=settings)
    return gpu
