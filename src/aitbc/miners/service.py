"""Miners: registration creates or updates one registry entry per GPU; heartbeats keep the
miner and its GPUs online."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from aitbc.errors import NotFound
from aitbc.gpus.naming import model_key
from aitbc.kit.ids import new_id
from aitbc.kit.money import to_units
from aitbc.miners.schemas import MinerGpuSpec, MinerHeartbeat, MinerRegister
from aitbc.models import Gpu, GpuAiModel, Miner
from aitbc.pricing.market import refresh_effective_price
from aitbc.store.conn import SessionConn, drive
from aitbc.store.query import Query


def touch_miner(
    session: Session, *, miner_id: str, now: datetime, region: str | None = None
) -> Miner:
    """The miner row, created if new, with a fresh heartbeat (registering counts as one)."""
    miner = session.get(Miner, miner_id, with_for_update=True)
    if miner is None:
        miner = Miner(
            id=miner_id,
            region=region,
            concurrency=1,
            inflight=0,
            reported_status="online",
            capabilities={},
            last_heartbeat=now,
            created_at=now,
            updated_at=now,
        )
        session.add(miner)
    else:
        miner.last_heartbeat = now
        miner.reported_status = "online"
        miner.updated_at = now
    session.flush()
    return miner


_REMEMBER_MODEL_KEY = Query(
    "INSERT INTO gpu_model_keys (model_key) VALUES ($1) ON CONFLICT (model_key) DO NOTHING"
)


def remember_model_key(session: Session, key: str) -> None:
    """Make the key findable by the list's model filter (see gpus.listing)."""
    drive(SessionConn(session).execute(_REMEMBER_MODEL_KEY, key))


def set_ai_models(session: Session, gpu: Gpu, names: list[str]) -> None:
    keys = sorted({model_key(n) for n in names if model_key(n)})
    gpu.ai_models = sorted({n.strip() for n in names if n.strip()})
    existing = set(session.scalars(select(GpuAiModel.model_key).where(GpuAiModel.gpu_id == gpu.id)))
    for stale in existing - set(keys):
        row = session.get(GpuAiModel, (gpu.id, stale))
        if row is not None:
            session.delete(row)
    session.add_all(GpuAiModel(gpu_id=gpu.id, model_key=k) for k in keys if k not in existing)


def _apply_spec(gpu: Gpu, spec: MinerGpuSpec, region: str | None, now: datetime) -> None:
    gpu.model = spec.model.strip()
    gpu.model_key = model_key(spec.model)
    gpu.memory_gb = spec.memory_gb
    gpu.cuda_version = spec.cuda_version
    gpu.compute_capability = spec.compute_capability
    gpu.cuda_cores = spec.cuda_cores
    gpu.price_units = to_units(spec.price_per_hour)
    gpu.effective_price_units = gpu.price_units
    gpu.pricing_mode = spec.pricing_mode
    gpu.description = spec.description
    gpu.region = region
    gpu.updated_at = now


def register(
    session: Session, *, miner_id: str, body: MinerRegister, now: datetime
) -> tuple[Miner, list[Gpu]]:
    miner = touch_miner(session, miner_id=miner_id, now=now, region=body.region)
    miner.region = body.region
    miner.concurrency = body.concurrency
    miner.capabilities = body.capabilities
    existing = {g.slot: g for g in session.scalars(select(Gpu).where(Gpu.miner_id == miner_id))}
    gpus = []
    for index, spec in enumerate(body.gpus):
        slot = spec.slot or str(index)
        gpu = existing.get(slot)
        if gpu is None:
            gpu = Gpu(
                id=new_id("gpu"),
                miner_id=miner_id,
                slot=slot,
                health={},
                rating_sum=0,
                review_count=0,
                total_bookings=0,
                created_at=now,
            )
            session.add(gpu)
        gpu.delisted_at = None
        _apply_spec(gpu, spec, body.region, now)
        refresh_effective_price(session, gpu)
        session.flush()
        remember_model_key(session, gpu.model_key)
        set_ai_models(session, gpu, spec.ai_models)
        gpus.append(gpu)
    session.flush()
    return miner, gpus


def heartbeat(
    session: Session, *, miner_id: str, body: MinerHeartbeat, now: datetime
) -> tuple[Miner, list[Gpu]]:
    miner = session.get(Miner, miner_id, with_for_update=True)
    if miner is None:
        raise NotFound(f"Miner {miner_id!r} has not registered yet.", code="miner_not_registered")
    miner.last_heartbeat = now
    miner.updated_at = now
    miner.reported_status = body.status
    miner.inflight = body.inflight
    gpus = list(session.scalars(select(Gpu).where(Gpu.miner_id == miner_id).order_by(Gpu.slot)))
    by_slot = {g.slot: g for g in gpus}
    for report in body.gpus:
        gpu = by_slot.get(report.slot)
        if gpu is None:
            raise NotFound(
                f"Miner {miner_id!r} has no GPU in slot {report.slot!r}.", code="gpu_not_found"
            )
        health: dict[str, Any] = report.model_dump(exclude={"slot"}, exclude_none=True)
        gpu.health = health
        gpu.health_at = now
    session.flush()
    return miner, gpus
