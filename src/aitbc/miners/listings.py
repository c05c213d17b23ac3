"""A provider's listings in the GPU registry: single-GPU registration (the CLI's path), price
and description updates, delisting and relisting. The reads are ``aitbc.gpus``'s."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from aitbc.auth.principal import Principal
from aitbc.bookings.settlement import settle_due
from aitbc.config import Settings
from aitbc.errors import Conflict, Forbidden, Invalid, NotFound
from aitbc.gpus.naming import named_key
from aitbc.gpus.prices import check_price
from aitbc.kit.ids import new_id
from aitbc.kit.money import maybe_units, to_units
from aitbc.miners import queries as q
from aitbc.miners.queries import GpuRecord
from aitbc.miners.service import (
    after_hearing,
    ai_models_of,
    initial_uptime,
    new_gpu,
    refresh_effective_price,
    remember_model_key,
    set_ai_model_keys,
    sync_offers,
    touch_miner,
)
from aitbc.store.conn import Conn

DEFAULT_MINER_HEADER = "default"


@dataclass(frozen=True, slots=True)
class Listing:
    """One GPU listed on its own (the CLI's ``gpu register``); ``name`` is its model."""

    name: str
    memory_gb: int | None = None
    cuda_cores: int | None = None
    compute_capability: str | None = None
    cuda_version: str | None = None
    region: str | None = None
    price: Decimal | None = None
    pricing_mode: str = "fixed"
    description: str | None = None
    ai_models: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Change:
    """What a GPU's miner changes; ``description`` only when ``describe`` (it may be None)."""

    price: Decimal | None = None
    pricing_mode: str | None = None
    describe: bool = False
    description: str | None = None
    interruptible: bool | None = None
    set_min_bid: bool = False  # min_bid (None: back to the setting's share)
    min_bid: Decimal | None = None


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


async def register_gpu(
    conn: Conn, *, miner_id: str, spec: Listing, settings: Settings, now: datetime
) -> GpuRecord:
    heard = await touch_miner(conn, miner_id=miner_id, now=now, region=spec.region)
    miner = heard.miner
    price = spec.price if spec.price is not None else settings.default_price
    check_price(price, settings)
    gpu_id = new_id("gpu")
    gpu = new_gpu(
        gpu_id=gpu_id,
        miner_id=miner.id,
        slot=gpu_id,
        now=now,
        uptime=await initial_uptime(conn, miner.id),
    )
    gpu.model = spec.name.strip()
    gpu.model_key = named_key(spec.name)
    gpu.memory_gb = spec.memory_gb or 0
    gpu.cuda_cores = spec.cuda_cores
    gpu.compute_capability = spec.compute_capability
    gpu.cuda_version = spec.cuda_version
    gpu.region = spec.region or miner.region
    gpu.price_units = gpu.effective_price_units = to_units(price)
    gpu.pricing_mode = spec.pricing_mode
    gpu.description = spec.description
    await refresh_effective_price(conn, gpu)
    keys = ai_models_of(gpu, spec.ai_models)
    await gpu.insert(conn)
    await remember_model_key(conn, gpu.model_key)
    await set_ai_model_keys(conn, gpu, keys)
    await after_hearing(conn, heard, now=now, settings=settings)
    return gpu


async def owned_gpu_for_update(conn: Conn, *, gpu_id: str, principal: Principal) -> GpuRecord:
    row = await conn.fetchrow(q.GPU_LOCKED, gpu_id)
    if row is None:
        raise NotFound(f"No GPU {gpu_id!r}.", code="gpu_not_found")
    gpu = GpuRecord.from_row(row)
    if principal.role != "admin" and gpu.miner_id != principal.owner_id:
        raise Forbidden("Only the GPU's miner (or an admin) may change it.", code="not_gpu_owner")
    return gpu


async def update_gpu(
    conn: Conn, *, gpu: GpuRecord, change: Change, now: datetime, settings: Settings
) -> GpuRecord:
    if change.price is not None:
        gpu.price_units = to_units(check_price(change.price, settings))
    if change.describe:
        gpu.description = change.description
    if change.pricing_mode is not None:
        gpu.pricing_mode = change.pricing_mode
    if change.interruptible is not None:
        gpu.interruptible = change.interruptible
    if change.set_min_bid:
        gpu.min_bid_units = maybe_units(change.min_bid)
    await refresh_effective_price(conn, gpu)
    gpu.updated_at = now
    await gpu.save(
        conn,
        "price_units",
        "description",
        "pricing_mode",
        "effective_price_units",
        "updated_at",
        "interruptible",
        "min_bid_units",
    )
    await sync_offers(conn, miner_id=gpu.miner_id, now=now, settings=settings)
    return gpu


async def delist_gpu(conn: Conn, *, gpu: GpuRecord, now: datetime, settings: Settings) -> GpuRecord:
    """Refused while a booking is running or reserved; future clients must not lose a GPU
    they paid for."""
    await settle_due(
        conn,
        now=now,
        fee_bps=settings.platform_fee_bps,
        policy=settings.outage_policy,
        gpu_id=gpu.id,
    )
    if await conn.fetchval(q.OPEN_BOOKING_ON, gpu.id) is not None:
        raise Conflict(
            "This GPU has a booking or reservation that has not ended.", code="gpu_booked"
        )
    if gpu.delisted_at is None:
        gpu.delisted_at = gpu.updated_at = now
        await gpu.save(conn, "delisted_at", "updated_at")
        await sync_offers(conn, miner_id=gpu.miner_id, now=now, settings=settings)
    return gpu


async def relist_gpu(conn: Conn, *, gpu: GpuRecord, now: datetime, settings: Settings) -> GpuRecord:
    """Its owner (or an admin) lists a delisted GPU again; nothing else does."""
    if gpu.delisted_at is not None:
        gpu.delisted_at = None
        gpu.updated_at = now
        await gpu.save(conn, "delisted_at", "updated_at")
        await sync_offers(conn, miner_id=gpu.miner_id, now=now, settings=settings)
    return gpu
