"""Miners: registration creates or updates one registry entry per GPU; heartbeats keep the
miner and its GPUs online, and carry their health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aitbc.config import Settings
from aitbc.errors import NotFound
from aitbc.gpus.naming import model_key
from aitbc.gpus.prices import check_price
from aitbc.kit.ids import new_id
from aitbc.kit.money import from_units, to_units
from aitbc.miners import presence, protocol
from aitbc.miners.schemas import (
    DaemonGpuSpec,
    MinerEarnings,
    MinerGpuSpec,
    MinerHeartbeat,
    MinerRegister,
)
from aitbc.models import (
    Account,
    Booking,
    Gpu,
    GpuAiModel,
    Job,
    LedgerEntry,
    LedgerTransaction,
    Miner,
)
from aitbc.models.account import MAIN
from aitbc.models.booking import OPEN
from aitbc.offers import service as offers
from aitbc.pricing.market import effective_price
from aitbc.store.conn import SessionConn, drive
from aitbc.store.query import Query


def refresh_effective_price(session: Session, gpu: Gpu) -> None:
    """After a GPU's own price or pricing mode changed (or it was made)."""
    gpu.effective_price_units = drive(
        effective_price(
            SessionConn(session),
            model_key=gpu.model_key,
            price_units=gpu.price_units,
            pricing_mode=gpu.pricing_mode,
        )
    )


@dataclass(frozen=True, slots=True)
class Heard:
    """A miner, locked, heard now; when it was heard before (None: a new miner), and when it
    had deregistered, if it had until now."""

    miner: Miner
    previous: datetime | None
    left_at: datetime | None = None


def touch_miner(
    session: Session, *, miner_id: str, now: datetime, region: str | None = None
) -> Heard:
    """The miner row, created if new, with a fresh heartbeat (registering counts as one).
    The caller finishes with ``after_hearing`` once it has written the miner's GPUs."""
    miner = session.get(Miner, miner_id, with_for_update=True)
    previous = None if miner is None else miner.last_heartbeat
    left_at = None if miner is None else miner.deregistered_at
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
        miner.deregistered_at = None
        miner.updated_at = now
    session.flush()
    return Heard(miner, previous, left_at)


def after_hearing(
    session: Session, heard: Heard, *, now: datetime, settings: Settings, changed: bool = True
) -> None:
    """Record the miner's presence, settle what a long silence did to its bookings, and keep
    its offers in step when its GPUs ``changed`` or it was offline until now. Runs last: its
    GPUs first, then bookings and offers, is the order every transaction takes them in."""
    session.flush()
    timeout = settings.heartbeat_timeout_seconds
    came_back = heard.previous is None or now - heard.previous > timedelta(seconds=timeout)
    drive(
        presence.heard(
            SessionConn(session),
            miner_id=heard.miner.id,
            previous=heard.previous,
            now=now,
            policy=settings.outage_policy,
            fee_bps=settings.platform_fee_bps,
        )
    )
    if changed or came_back:
        sync_offers(session, miner_id=heard.miner.id, now=now, settings=settings)


def sync_offers(session: Session, *, miner_id: str, now: datetime, settings: Settings) -> None:
    session.flush()  # the offers are written from the GPUs' rows as they stand
    drive(
        offers.sync(
            SessionConn(session),
            now=now,
            heartbeat_timeout=settings.heartbeat_timeout_seconds,
            miner_id=miner_id,
        )
    )


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


def _apply_spec(
    gpu: Gpu, spec: MinerGpuSpec, region: str | None, now: datetime, settings: Settings
) -> None:
    price = spec.price_per_hour
    if price is None:  # a daemon's GPU: its price stays as it was set
        price = settings.default_price if gpu.price_units is None else from_units(gpu.price_units)
    else:
        check_price(price, settings)
    gpu.model = spec.model.strip()
    gpu.model_key = model_key(spec.model)
    gpu.memory_gb = spec.memory_gb
    gpu.cuda_version = spec.cuda_version
    gpu.compute_capability = spec.compute_capability
    gpu.cuda_cores = spec.cuda_cores
    gpu.price_units = to_units(price)
    gpu.effective_price_units = gpu.price_units
    gpu.pricing_mode = spec.pricing_mode
    gpu.description = spec.description
    gpu.region = region
    gpu.updated_at = now


def _specs(body: MinerRegister) -> list[MinerGpuSpec]:
    if body.gpus:
        return body.gpus
    return [DaemonGpuSpec.model_validate(spec) for spec in protocol.gpus_in(body.capabilities)]


def register(
    session: Session, *, miner_id: str, body: MinerRegister, now: datetime, settings: Settings
) -> tuple[Miner, list[Gpu]]:
    heard = touch_miner(session, miner_id=miner_id, now=now, region=body.region)
    miner = heard.miner
    miner.region = body.region
    miner.concurrency = body.concurrency
    miner.capabilities = body.capabilities
    gpus = _register_gpus(
        session, miner, _specs(body), now=now, settings=settings, relist_since=heard.left_at
    )
    after_hearing(session, heard, now=now, settings=settings)
    return miner, gpus


def initial_uptime(session: Session, miner_id: str) -> tuple[int, int]:
    """A new GPU's uptime until the sweeper's next refresh: its miner's, as its other GPUs
    show it; a new miner has been online all the time since it registered (100 %)."""
    sibling = session.execute(
        select(Gpu.uptime_24h_bp, Gpu.uptime_7d_bp).where(Gpu.miner_id == miner_id).limit(1)
    ).first()
    return (sibling[0], sibling[1]) if sibling is not None else (10_000, 10_000)


def _register_gpus(
    session: Session,
    miner: Miner,
    specs: list[MinerGpuSpec],
    *,
    now: datetime,
    settings: Settings,
    relist_since: datetime | None = None,
) -> list[Gpu]:
    """Create or update one GPU per spec, by slot. A GPU its owner delisted stays delisted
    (``relist`` brings it back); one delisted because its miner left (at ``relist_since``
    or later) is listed again when the miner registers anew. A card first registered on its
    own (``gpu register``: no slot yet) is the same card as a spec of its model and memory
    that no slot of the miner's describes yet: it takes that slot rather than a twin."""
    existing = {g.slot: g for g in session.scalars(select(Gpu).where(Gpu.miner_id == miner.id))}
    unslotted = [g for slot, g in existing.items() if slot == g.id]
    day, week = initial_uptime(session, miner.id)
    gpus = []
    for index, spec in enumerate(specs):
        slot = spec.slot or str(index)
        gpu = existing.get(slot)
        if gpu is None:
            gpu = _same_card(unslotted, spec)
            if gpu is not None:
                unslotted.remove(gpu)
                gpu.slot = slot
        if gpu is None:
            gpu = Gpu(
                id=new_id("gpu"),
                miner_id=miner.id,
                slot=slot,
                health={},
                rating_sum=0,
                review_count=0,
                total_bookings=0,
                created_at=now,
                uptime_24h_bp=day,
                uptime_7d_bp=week,
            )
            session.add(gpu)
        if gpu.delisted_at is not None and relist_since and gpu.delisted_at >= relist_since:
            gpu.delisted_at = None
        _apply_spec(gpu, spec, miner.region, now, settings)
        refresh_effective_price(session, gpu)
        session.flush()
        remember_model_key(session, gpu.model_key)
        set_ai_models(session, gpu, spec.ai_models)
        gpus.append(gpu)
    session.flush()
    return gpus


def _same_card(unslotted: list[Gpu], spec: MinerGpuSpec) -> Gpu | None:
    key, memory = model_key(spec.model), spec.memory_gb
    return next((g for g in unslotted if g.model_key == key and g.memory_gb == memory), None)


def update_capabilities(
    session: Session, *, miner_id: str, capabilities: dict[str, Any], now: datetime,
    settings: Settings,
) -> tuple[Miner, list[Gpu]]:  # fmt: skip
    """A daemon's new capabilities: its GPUs registered as they now describe them."""
    miner = _registered(session, miner_id)
    miner.capabilities = capabilities
    miner.updated_at = now
    specs: list[MinerGpuSpec] = [
        DaemonGpuSpec.model_validate(s) for s in protocol.gpus_in(capabilities)
    ]
    gpus = _register_gpus(session, miner, specs, now=now, settings=settings)
    sync_offers(session, miner_id=miner_id, now=now, settings=settings)
    return miner, gpus


def deregister(
    session: Session, *, miner_id: str, now: datetime, settings: Settings
) -> tuple[Miner, list[Gpu]]:
    """The miner leaves: offline at once (so nothing new is booked, and the outage rules
    end what runs), its GPUs delisted now or, when booked, once their bookings have ended
    (the sweeper)."""
    miner = _registered(session, miner_id)
    miner.reported_status = "offline"
    miner.deregistered_at = miner.deregistered_at or now
    miner.updated_at = now
    gpus = list(session.scalars(select(Gpu).where(Gpu.miner_id == miner_id).order_by(Gpu.slot)))
    delist_free_gpus(session, miner_id=miner_id, now=now)
    sync_offers(session, miner_id=miner_id, now=now, settings=settings)
    return miner, gpus


_DELIST_FREE = Query(
    "UPDATE gpus SET delisted_at = $2, updated_at = $2 WHERE miner_id = $1 "
    "AND delisted_at IS NULL AND NOT EXISTS "
    "(SELECT 1 FROM bookings b WHERE b.gpu_id = gpus.id AND b.status = 'open')"
)


def delist_free_gpus(session: Session, *, miner_id: str, now: datetime) -> int:
    return drive(SessionConn(session).execute(_DELIST_FREE, miner_id, now))


def _registered(session: Session, miner_id: str) -> Miner:
    miner = session.get(Miner, miner_id, with_for_update=True)
    if miner is None:
        raise NotFound(f"Miner {miner_id!r} has not registered yet.", code="miner_not_registered")
    return miner


def heartbeat(
    session: Session, *, miner_id: str, body: MinerHeartbeat, now: datetime, settings: Settings
) -> tuple[Miner, list[Gpu]]:
    miner = _registered(session, miner_id)
    heard = Heard(miner, miner.last_heartbeat)
    status_before = miner.reported_status
    # A deregistered miner stays offline until it registers again.
    if miner.deregistered_at is None:
        miner.reported_status = protocol.status_of(body.status)
    # Only a miner that says it serves is heard: one that says it is offline (or has left)
    # is silent from its last serving heartbeat on, and its renters are billed as for any
    # silence (bookings.outages), however often it keeps calling.
    serving = miner.reported_status != "offline"
    if serving:
        miner.last_heartbeat = now
    miner.updated_at = now
    inflight = body.inflight if body.inflight is not None else body.current_jobs
    miner.inflight = inflight or 0
    gpus = list(session.scalars(select(Gpu).where(Gpu.miner_id == miner_id).order_by(Gpu.slot)))
    by_slot = {g.slot: g for g in gpus}
    for report in protocol.reports(body, [g.slot for g in gpus if g.delisted_at is None]):
        gpu = by_slot.get(report.slot)
        if gpu is None:
            raise NotFound(
                f"Miner {miner_id!r} has no GPU in slot {report.slot!r}.", code="gpu_not_found"
            )
        health: dict[str, Any] = report.model_dump(exclude={"slot"}, exclude_none=True)
        gpu.health = health
        gpu.health_at = now
    changed = miner.reported_status != status_before
    if serving:
        after_hearing(session, heard, now=now, settings=settings, changed=changed)
    elif changed:
        session.flush()
        sync_offers(session, miner_id=miner_id, now=now, settings=settings)
    return miner, gpus


_CLOSING = ("booking_completed", "booking_released", "booking_interrupted", "booking_cancelled")


def earnings(
    session: Session,
    *,
    miner_id: str,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
) -> MinerEarnings:
    """Paid out to the miner for its bookings (less the platform's fee), within the range."""
    if session.get(Miner, miner_id) is None:
        raise NotFound(f"Miner {miner_id!r} has not registered yet.", code="miner_not_registered")
    paid = (
        select(func.coalesce(func.sum(LedgerEntry.amount_units), 0), func.count(LedgerEntry.id))
        .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
        .join(Account, Account.id == LedgerEntry.account_id)
        .where(
            Account.owner_id == miner_id,
            Account.kind == MAIN,
            LedgerTransaction.kind.in_(_CLOSING),
            LedgerEntry.amount_units > 0,
        )
    )
    finished = select(func.count(Job.id)).where(Job.miner_id == miner_id, Job.state == "completed")
    if since is not None:
        paid = paid.where(LedgerTransaction.created_at >= since)
        finished = finished.where(Job.finished_at >= since)
    if until is not None:
        paid = paid.where(LedgerTransaction.created_at < until)
        finished = finished.where(Job.finished_at < until)
    earned, count = session.execute(paid).one()
    pending = session.scalar(
        select(func.coalesce(func.sum(Booking.total_units - Booking.outage_refund_units), 0)).where(
            Booking.miner_id == miner_id, Booking.status == OPEN
        )
    )
    return MinerEarnings(
        miner_id=miner_id,
        from_time=since,
        to_time=until,
        earned=from_units(int(earned)),
        bookings_paid=int(count),
        jobs_completed=int(session.scalar(finished) or 0),
        pending=from_units(int(pending or 0)),
    )
