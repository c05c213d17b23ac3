"""Miner endpoints: our own shapes and the deployed daemons' (``../shared/docs``'s miner
protocol) on the same routes. A miner key always acts as its own miner: the ``miner_id``
names those daemons send (in the query, a header or the path) are informational and never
make a request fail; an admin key acts on the miner the path names."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Annotated, Any

from fastapi import Body, Query
from starlette.convertors import StringConvertor, register_url_convertor

from aitbc.auth.principal import Principal
from aitbc.bookings.preemption import Notice
from aitbc.http.context import Context, ContextDep
from aitbc.http.deps import MinerDep, MinerOrAdminDep
from aitbc.http.errors import error_responses
from aitbc.http.pagination import Limit
from aitbc.http.routing import APIRouter
from aitbc.jobs import service as jobs
from aitbc.jobs.schemas import JobPublic, StateFilter
from aitbc.kit.money import MoneyQuery, maybe_units
from aitbc.kit.types import Moment
from aitbc.miners import protocol, service
from aitbc.miners.queries import GpuRecord, MinerRecord
from aitbc.miners.schemas import (
    CapabilitiesUpdate,
    MinerEarnings,
    MinerGpuRef,
    MinerHeartbeat,
    MinerPublic,
    MinerRegister,
    PreemptionNotice,
)

router = APIRouter(prefix="/v1/miners", tags=["miners"])


class _MinerName(StringConvertor):
    """A miner id in a path: any segment but the words of the miner's own routes, so that
    ``/v1/miners/heartbeat`` is never read as a miner called "heartbeat" (an OPTIONS or a
    DELETE there would otherwise find ``/v1/miners/{miner_id}``)."""

    regex = "(?!(?:register|heartbeat|poll)$)[^/]+"


register_url_convertor("miner", _MinerName())

MinerName = Annotated[
    str | None,
    Query(
        max_length=128,
        description="The daemon's own name for itself: informational (the key decides).",
    ),
]


def _public(
    miner: MinerRecord, gpus: list[GpuRecord], notices: Sequence[Notice] = ()
) -> MinerPublic:
    return MinerPublic(
        miner_id=miner.id,
        deregistered_at=miner.deregistered_at,
        region=miner.region,
        concurrency=miner.concurrency,
        inflight=miner.inflight,
        status=miner.reported_status,  # type: ignore[arg-type]
        last_heartbeat=miner.last_heartbeat,
        gpus=[MinerGpuRef(slot=g.slot, gpu_id=g.id) for g in gpus],
        preemptions=[
            PreemptionNotice(
                booking_id=n.booking_id,
                gpu_id=n.gpu_id,
                job_id=n.job_id,
                gpu_taken_at=n.gpu_taken_at,
            )
            for n in notices
        ],
    )


def _acting(principal: Principal, named: str) -> str:
    return named if principal.role == "admin" else principal.owner_id


async def _changed(ctx: Context, change: Callable[..., Any], **asked: Any) -> MinerPublic:
    """The miner as one of its changes left it: every change is given the time and the
    settings, and answers the miner, its GPUs and (a heartbeat) its preemption notices."""
    miner, gpus, *notices = await ctx.write(change, now=ctx.now(), settings=ctx.settings, **asked)
    return _public(miner, gpus, *notices)


@router.post("/register", responses=error_responses(401, 403, 422))
async def register_miner(
    body: MinerRegister, ctx: ContextDep, principal: MinerDep, miner_id: MinerName = None
) -> MinerPublic:
    """Register (or re-register) the calling miner and its GPUs"""
    asked = protocol.registration(body)
    return await _changed(ctx, service.register, miner_id=principal.owner_id, asked=asked)


@router.post("/heartbeat", responses=error_responses(401, 403, 404, 422))
async def miner_heartbeat(
    ctx: ContextDep,
    principal: MinerDep,
    # Optional, documented by its model (deployed clients send no body at all).
    body: Annotated[MinerHeartbeat, Body()] = None,  # type: ignore[assignment]
    miner_id: MinerName = None,
) -> MinerPublic:
    """Report liveness, in-flight work and GPU health (the body may be left out)"""
    beat = protocol.beat(body or MinerHeartbeat())
    return await _changed(ctx, service.heartbeat, miner_id=principal.owner_id, beat=beat)


@router.put("/{miner_id:miner}/capabilities", responses=error_responses(401, 403, 404, 422))
async def update_capabilities(
    miner_id: str, body: CapabilitiesUpdate, ctx: ContextDep, principal: MinerOrAdminDep
) -> MinerPublic:
    """Replace the miner's capabilities; the GPUs in them are registered as described"""
    return await _changed(
        ctx,
        service.update_capabilities,
        miner_id=_acting(principal, miner_id),
        capabilities=body.capabilities,
        gpus=protocol.daemon_gpus(body.capabilities),
    )


@router.delete("/{miner_id:miner}", responses=error_responses(401, 403, 404))
async def deregister(miner_id: str, ctx: ContextDep, principal: MinerOrAdminDep) -> MinerPublic:
    """Deregister: offline at once, GPUs delisted (booked ones once their bookings end)"""
    return await _changed(ctx, service.deregister, miner_id=_acting(principal, miner_id))


@router.get("/{miner_id:miner}/earnings", responses=error_responses(401, 403, 404, 422))
async def earnings(
    miner_id: str,
    ctx: ContextDep,
    principal: MinerOrAdminDep,
    from_time: Moment | None = None,
    to_time: Moment | None = None,
) -> MinerEarnings:
    """What the miner has been paid (in a time range), and what its open bookings hold"""
    found = await ctx.read(
        service.earnings,
        miner_id=_acting(principal, miner_id),
        since=from_time,
        until=to_time,
        now=ctx.now(),
    )
    return MinerEarnings.of(found)


@router.get("/{miner_id:miner}/jobs", responses=error_responses(401, 403, 422))
async def miner_jobs(
    miner_id: str,
    ctx: ContextDep,
    principal: MinerOrAdminDep,
    limit: Limit = 50,
    status: Annotated[StateFilter, Query(description="The job's state")] = None,
    type: Annotated[str | None, Query(max_length=64, description="The payload's type")] = None,
    min_reward: Annotated[
        MoneyQuery | None, Query(description="Only jobs that paid at least this much")
    ] = None,
) -> list[JobPublic]:
    """Jobs run on the miner's GPUs, newest first"""
    now = ctx.now()
    found = await ctx.read(
        jobs.list_jobs,
        principal=Principal(owner_id=_acting(principal, miner_id), role="miner", key_id=None),
        now=now,
        limit=limit,
        offset=0,
        filters=jobs.JobFilters(
            state=status,
            job_type=type,
            min_cost_units=maybe_units(min_reward),
        ),
    )
    return [JobPublic.of(job, now) for job in found]
