"""Miners: registration creates or updates one registry entry per GPU; heartbeats keep the
miner and its GPUs online, and carry their health."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aitbc.bookings.preemption import Notice, in_notice
from aitbc.config import Settings
from aitbc.errors import Invalid, NotFound
from aitbc.gpus.naming import model_key, named_key
from aitbc.gpus.prices import check_price
from aitbc.kit.ids import new_id
from aitbc.kit.money import to_units
from aitbc.miners import announce, presence
from aitbc.miners import queries as q
from aitbc.miners.queries import GpuRecord, MinerRecord
from aitbc.offers import service as offers
from aitbc.pricing.market import effective_price
from aitbc.store.conn import Conn
from aitbc.store.query import built


async def refresh_effective_price(conn: Conn, gpu: GpuRecord) -> None:
    """After a GPU's own price or pricing mode changed (or it was made)."""
    gpu.effective_price_units = await effective_price(
        conn, model_key=gpu.model_key, price_units=gpu.price_units, pricing_mode=gpu.pricing_mode
    )


@dataclass(frozen=True, slots=True)
class GpuDescription:
    """A GPU as its miner describes it. ``price`` None: a daemon's GPU, which keeps the price
    it has (a new one gets the default)."""

    model: str
    memory_gb: int
    price: Decimal | None
    slot: str | None = None
    cuda_version: str | None = None
    compute_capability: str | None = None
    cuda_cores: int | None = None
    ai_models: list[str] = field(default_factory=list)
    pricing_mode: str = "fixed"
    description: str | None = None


@dataclass(frozen=True, slots=True)
class Registration:
    region: str | None
    concurrency: int
    capabilities: dict[str, Any]
    gpus: list[GpuDescription]


@dataclass(frozen=True, slots=True)
class Beat:
    """A heartbeat: the miner's status (ours: online, draining or offline), its work in
    flight, and health figures per GPU slot (or the whole host's, for each of its GPUs)."""

    status: str
    inflight: int
    per_gpu: list[tuple[str, dict[str, Any]]]
    host: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Earnings:
    miner_id: str
    since: datetime | None
    until: datetime | None
    earned_units: int
    bookings_paid: int
    jobs_completed: int
    pending_units: int
    by_gpu: list[GpuEarned]


@dataclass(frozen=True, slots=True)
class GpuEarned:
    gpu_id: str
    model: str
    earned_units: int
    bookings_paid: int


@dataclass(frozen=True, slots=True)
class Heard:
    """A miner, locked, heard now; when it was heard before (None: a new miner), and when it
    had deregistered, if it had until now."""

    miner: MinerRecord
    previous: datetime | None
    left_at: datetime | None = None


async def touch_miner(
    conn: Conn, *, miner_id: str, now: datetime, region: str | None = None
) -> Heard:
    """The miner row, created if new, with a fresh heartbeat (registering counts as one).
    The caller finishes with ``after_hearing`` once it has written the miner's GPUs."""
    created = await conn.execute(q.NEW_MINER, miner_id, region, now)
    row = await conn.fetchrow(q.MINER_LOCKED, miner_id)
    assert row is not None
    miner = MinerRecord.from_row(row)
    if created:
        return Heard(miner, None, None)
    previous, left_at = miner.last_heartbeat, miner.deregistered_at
    miner.last_heartbeat = now
    miner.reported_status = "online"
    miner.deregistered_at = None
    miner.updated_at = now
    await miner.save(conn)
    return Heard(miner, previous, left_at)


async def after_hearing(
    conn: Conn, heard: Heard, *, now: datetime, settings: Settings, changed: bool = True
) -> None:
    """Record the miner's presence, settle what a long silence did to its bookings, and keep
    its offers in step when its GPUs ``changed`` or it was offline until now. Runs last: its
    GPUs first, then bookings and offers, is the order every transaction takes them in."""
    timeout = settings.heartbeat_timeout_seconds
    came_back = heard.previous is None or now - heard.previous > timedelta(seconds=timeout)
    await presence.heard(
        conn,
        miner_id=heard.miner.id,
        previous=heard.previous,
        now=now,
        policy=settings.outage_policy,
        fee_bps=settings.platform_fee_bps,
    )
    if came_back and heard.previous is not None:
        await announce.back(conn, miner_id=heard.miner.id, silent_since=heard.previous, now=now)
    if changed or came_back:
        await sync_offers(conn, miner_id=heard.miner.id, now=now, settings=settings)


async def sync_offers(conn: Conn, *, miner_id: str, now: datetime, settings: Settings) -> None:
    await offers.sync(
        conn, now=now, heartbeat_timeout=settings.heartbeat_timeout_seconds, miner_id=miner_id
    )


async def remember_model_key(conn: Conn, key: str) -> None:
    """Make the key findable by the list's model filter (see gpus.listing)."""
    await conn.execute(q.REMEMBER_MODEL_KEY, key)


def ai_models_of(gpu: GpuRecord, names: list[str]) -> list[str]:
    """The GPU's AI model names as shown (set on ``gpu``), and their keys."""
    gpu.ai_models = sorted({n.strip() for n in names if n.strip()})
    return sorted({model_key(n) for n in names if model_key(n)})


async def set_ai_model_keys(conn: Conn, gpu: GpuRecord, keys: list[str]) -> None:
    """The GPU's rows in ``gpu_ai_models`` (the AI model filter's index)."""
    existing = {row[0] for row in await conn.fetch_values(q.AI_MODEL_KEYS, gpu.id)}
    for stale in sorted(existing - set(keys)):
        await conn.execute(q.DROP_AI_MODEL, gpu.id, stale)
    for key in keys:
        if key not in existing:
            await conn.execute(q.ADD_AI_MODEL, gpu.id, key)


def _apply_spec(
    gpu: GpuRecord, spec: GpuDescription, region: str | None, now: datetime, settings: Settings
) -> None:
    if spec.price is not None:  # our own shape: the whole listing as described
        check_price(spec.price, settings)
        _list(gpu, spec.price, spec)
    elif gpu.price_units < 0:  # a daemon's new GPU: the default price
        _list(gpu, settings.default_price, spec)
    # A daemon's GPU it listed before keeps what its owner set (the price, its pricing
    # mode, the description): a daemon describes the hardware only.
    gpu.model = spec.model.strip()
    gpu.model_key = named_key(spec.model)
    gpu.memory_gb = spec.memory_gb
    gpu.cuda_version = spec.cuda_version
    gpu.compute_capability = spec.compute_capability
    gpu.cuda_cores = spec.cuda_cores
    gpu.region = region
    gpu.updated_at = now


def _list(gpu: GpuRecord, price: Decimal, spec: GpuDescription) -> None:
    gpu.price_units = to_units(price)
    gpu.effective_price_units = gpu.price_units
    gpu.pricing_mode = spec.pricing_mode
    gpu.description = spec.description


async def register(
    conn: Conn, *, miner_id: str, asked: Registration, now: datetime, settings: Settings
) -> tuple[MinerRecord, list[GpuRecord]]:
    heard = await touch_miner(conn, miner_id=miner_id, now=now, region=asked.region)
    miner = heard.miner
    miner.region = asked.region
    miner.concurrency = asked.concurrency
    miner.capabilities = asked.capabilities
    await miner.save(conn)
    gpus = await _register_gpus(
        conn, miner, asked.gpus, now=now, settings=settings, relist_since=heard.left_at
    )
    await after_hearing(conn, heard, now=now, settings=settings)
    return miner, gpus


async def initial_uptime(conn: Conn, miner_id: str) -> tuple[int, int]:
    """A new GPU's uptime until the sweeper's next refresh: its miner's, as its other GPUs
    show it; a new miner has been online all the time since it registered (100 %)."""
    sibling = await conn.fetchrow(q.SIBLING_UPTIME, miner_id)
    if sibling is None:
        return 10_000, 10_000
    return sibling["uptime_24h_bp"], sibling["uptime_7d_bp"]


def new_gpu(
    *, gpu_id: str, miner_id: str, slot: str, now: datetime, uptime: tuple[int, int]
) -> GpuRecord:
    """A GPU row not yet described (its spec fields are set next, ``_apply_spec``)."""
    return GpuRecord(
        id=gpu_id, miner_id=miner_id, slot=slot, model="GPU", model_key="gpu", memory_gb=0,
        cuda_cores=None, compute_capability=None, cuda_version=None, region=None,
        price_units=-1, effective_price_units=-1, pricing_mode="fixed", description=None,
        ai_models=[], health={}, health_at=None, rating_sum=0, review_count=0,
        total_bookings=0, uptime_24h_bp=uptime[0], uptime_7d_bp=uptime[1], created_at=now,
        updated_at=now, delisted_at=None,
    )  # fmt: skip


async def _register_gpus(
    conn: Conn,
    miner: MinerRecord,
    specs: list[GpuDescription],
    *,
    now: datetime,
    settings: Settings,
    relist_since: datetime | None = None,
) -> list[GpuRecord]:
    """Create or update one GPU per spec, by slot. A GPU its owner delisted stays delisted
    (``relist`` brings it back); one delisted because its miner left (at ``relist_since``
    or later) is listed again when the miner registers anew. A card first registered on its
    own (``gpu register``: no slot yet) is the same card as a spec of its model and memory
    that no slot of the miner's describes yet: it takes that slot rather than a twin."""
    rows = await conn.fetch(q.MINERS_GPUS, miner.id)
    existing = {g.slot: g for g in map(GpuRecord.from_row, rows)}
    unslotted = [g for slot, g in existing.items() if slot == g.id]
    uptime = await initial_uptime(conn, miner.id)
    gpus: list[GpuRecord] = []
    for index, spec in enumerate(specs):
        slot = spec.slot or str(index)
        if any(gpu.slot == slot for gpu in gpus):
            raise Invalid(
                f"Two GPUs are in slot {slot!r}: name each its own.", code="duplicate_slot"
            )
        gpu = existing.get(slot)
        if gpu is None:
            gpu = _same_card(unslotted, spec)
            if gpu is not None:
                unslotted.remove(gpu)
                gpu.slot = slot
        is_new = gpu is None
        if gpu is None:
            gpu = new_gpu(
                gpu_id=new_id("gpu"), miner_id=miner.id, slot=slot, now=now, uptime=uptime
            )
        if gpu.delisted_at is not None and relist_since and gpu.delisted_at >= relist_since:
            gpu.delisted_at = None
        _apply_spec(gpu, spec, miner.region, now, settings)
        await refresh_effective_price(conn, gpu)
        keys = ai_models_of(gpu, spec.ai_models)
        if is_new:
            await gpu.insert(conn)
        else:
            await gpu.save(conn, *q.SPEC_FIELDS)
        await remember_model_key(conn, gpu.model_key)
        await set_ai_model_keys(conn, gpu, keys)
        gpus.append(gpu)
    return gpus


def _same_card(unslotted: list[GpuRecord], spec: GpuDescription) -> GpuRecord | None:
    key, memory = model_key(spec.model), spec.memory_gb
    return next((g for g in unslotted if g.model_key == key and g.memory_gb == memory), None)


async def update_capabilities(
    conn: Conn, *, miner_id: str, capabilities: dict[str, Any], gpus: list[GpuDescription],
    now: datetime, settings: Settings,
) -> tuple[MinerRecord, list[GpuRecord]]:  # fmt: skip
    """A daemon's new capabilities: its GPUs (``gpus``, as the capabilities describe them)
    registered anew."""
    miner = await _registered(conn, miner_id)
    miner.capabilities = capabilities
    miner.updated_at = now
    await miner.save(conn)
    registered = await _register_gpus(conn, miner, gpus, now=now, settings=settings)
    await sync_offers(conn, miner_id=miner_id, now=now, settings=settings)
    return miner, registered


async def deregister(
    conn: Conn, *, miner_id: str, now: datetime, settings: Settings
) -> tuple[MinerRecord, list[GpuRecord]]:
    """The miner leaves: offline at once (so nothing new is booked, and the outage rules
    end what runs), its GPUs delisted now or, when booked, once their bookings have ended
    (the sweeper)."""
    miner = await _registered(conn, miner_id)
    miner.reported_status = "offline"
    miner.deregistered_at = miner.deregistered_at or now
    miner.updated_at = now
    await miner.save(conn)
    await delist_free_gpus(conn, miner_id=miner_id, now=now)
    gpus = [GpuRecord.from_row(row) for row in await conn.fetch(q.MINERS_GPUS, miner_id)]
    await sync_offers(conn, miner_id=miner_id, now=now, settings=settings)
    return miner, gpus


async def delist_free_gpus(conn: Conn, *, miner_id: str, now: datetime) -> int:
    return await conn.execute(q.DELIST_FREE, miner_id, now)


async def _registered(conn: Conn, miner_id: str) -> MinerRecord:
    row = await conn.fetchrow(q.MINER_LOCKED, miner_id)
    if row is None:
        raise NotFound(f"Miner {miner_id!r} has not registered yet.", code="miner_not_registered")
    return MinerRecord.from_row(row)


async def heartbeat(
    conn: Conn, *, miner_id: str, beat: Beat, now: datetime, settings: Settings
) -> tuple[MinerRecord, list[GpuRecord], list[Notice]]:
    """Hear the miner; its record, its GPUs and its bookings in a preemption notice (its
    agent stops their jobs: the heartbeat is how it hears when it missed the event)."""
    miner = await _registered(conn, miner_id)
    heard = Heard(miner, miner.last_heartbeat)
    status_before = miner.reported_status
    # A deregistered miner stays offline until it registers again.
    if miner.deregistered_at is None:
        miner.reported_status = beat.status
    # Only a miner that says it serves is heard: one that says it is offline (or has left)
    # is silent from its last serving heartbeat on, and its renters are billed as for any
    # silence (bookings.outages), however often it keeps calling.
    serving = miner.reported_status != "offline"
    if serving:
        miner.last_heartbeat = now
    miner.updated_at = now
    miner.inflight = beat.inflight
    await miner.save(conn)
    gpus = [GpuRecord.from_row(row) for row in await conn.fetch(q.MINERS_GPUS, miner_id)]
    by_slot = {g.slot: g for g in gpus}
    reports = beat.per_gpu
    if not reports and beat.host:
        reports = [(g.slot, beat.host) for g in gpus if g.delisted_at is None]
    for slot, health in reports:
        gpu = by_slot.get(slot)
        if gpu is None:
            raise NotFound(f"Miner {miner_id!r} has no GPU in slot {slot!r}.", code="gpu_not_found")
        gpu.health = health
        gpu.health_at = now
        await gpu.save(conn, "health", "health_at")
    changed = miner.reported_status != status_before
    if serving:
        await after_hearing(conn, heard, now=now, settings=settings, changed=changed)
    elif changed:
        await sync_offers(conn, miner_id=miner_id, now=now, settings=settings)
    return miner, gpus, await in_notice(conn, miner_id, now)


async def earnings(
    conn: Conn,
    *,
    miner_id: str,
    since: datetime | None,
    until: datetime | None,
    now: datetime,
) -> Earnings:
    """Paid out to the miner for its bookings (less the platform's fee), within the range."""
    if await conn.fetchrow(q.MINER, miner_id) is None:
        raise NotFound(f"Miner {miner_id!r} has not registered yet.", code="miner_not_registered")
    paid, finished, by_gpu = q.PAID, q.JOBS_DONE, q.PAID_BY_GPU
    args: list[Any] = [miner_id]
    for value, op in ((since, ">="), (until, "<")):
        if value is not None:
            args.append(value)
            paid += f" AND t.created_at {op} ${len(args)}"
            by_gpu += f" AND t.created_at {op} ${len(args)}"
            finished += f" AND finished_at {op} ${len(args)}"
    earned, count = (await conn.fetch_values(built(paid), *args))[0]
    gpus = [
        GpuEarned(r["gpu_id"], r["model"], int(r["earned"]), int(r["paid"]))
        for r in await conn.fetch(built(by_gpu + q.PAID_BY_GPU_END), *args)
    ]
    jobs_done = await conn.fetchval(built(finished), *args)
    pending = await conn.fetchval(q.PENDING, miner_id)
    return Earnings(
        miner_id=miner_id,
        since=since,
        until=until,
        earned_units=int(earned),
        bookings_paid=int(count),
        jobs_completed=int(jobs_done or 0),
        pending_units=int(pending or 0),
        by_gpu=gpus,
    )
