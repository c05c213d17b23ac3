"""Job endpoints, for our own clients and the deployed ones (``../shared/docs``'s job
protocol): submit, read, wait for the result (425 until the job ends), cancel, history and
receipts; and the miner's side: a long poll for work, results and failures."""

from __future__ import annotations

import asyncio
from asyncio import FIRST_COMPLETED
from typing import Annotated, Any

from fastapi import Body, Query, Request, Response

from aitbc.bookings.router import rental_bid
from aitbc.http import disconnect, idempotency
from aitbc.http.context import Context, ContextDep, context
from aitbc.http.deps import AnyKeyDep, CheckKey, ClientDep, ClientOrAdminDep, MinerDep
from aitbc.http.errors import error_responses
from aitbc.http.idempotency import IdempotencyKey
from aitbc.http.pagination import Limit, Offset
from aitbc.http.routing import APIRouter
from aitbc.jobs import service
from aitbc.jobs.schemas import (
    JobCreate,
    JobFailure,
    JobOutcome,
    JobPublic,
    JobResult,
    MinerJob,
    MinerPoll,
    Receipt,
    StateFilter,
)
from aitbc.kit.hours import seconds_from_hours
from aitbc.kit.money import maybe_units
from aitbc.kit.types import Moment
from aitbc.store.conn import Conn

router = APIRouter(prefix="/v1", tags=["jobs"])
MAX_POLL_WAIT_SECONDS = 30.0


@router.post(
    "/jobs",
    status_code=201,
    response_model=JobPublic,
    responses=error_responses(401, 402, 403, 422),
)
async def submit_job(
    body: JobCreate,
    request: Request,
    ctx: ContextDep,
    principal: ClientDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """Submit a job; it books the best matching GPU now or waits in the queue"""
    now, settings = ctx.now(), ctx.settings
    c = body.constraints
    hours = body.duration_hours if body.duration_hours is not None else settings.job_default_hours
    asked = service.JobRequest(
        client_id=principal.owner_id,
        payload=body.payload,
        seconds=seconds_from_hours(hours, settings.max_booking_hours),
        ttl_seconds=body.ttl_seconds,
        gpu_model=c.gpu_model,
        memory_min_gb=c.memory_min_gb,
        ai_model=c.ai_model,
        region=c.region,
        max_price_units=maybe_units(c.max_price_per_hour),
        payment_cap_units=maybe_units(body.payment_amount),
        cuda_min=c.cuda,
        bid_units=rental_bid(body.rental_type, body.bid_per_hour),
    )

    async def make(conn: Conn) -> JobPublic:
        return JobPublic.of(await service.submit(conn, asked, now=now, settings=settings), now)

    return await idempotency.respond_once(
        request, ctx.store, principal.owner_id, body, now, make, 201
    )


@router.get("/jobs", responses=error_responses(401, 422))
async def list_jobs(
    ctx: ContextDep, principal: AnyKeyDep, limit: Limit = 50, offset: Offset = 0
) -> list[JobPublic]:
    """Your jobs (a miner: jobs on its GPUs; an admin: all)"""
    now = ctx.now()
    found = await ctx.read(
        service.list_jobs, principal=principal, now=now, limit=limit, offset=offset
    )
    return [JobPublic.of(job, now) for job in found]


@router.get("/jobs/history", responses=error_responses(401, 422))
async def job_history(
    ctx: ContextDep,
    principal: AnyKeyDep,
    limit: Limit = 50,
    status: StateFilter = None,
    type: Annotated[str | None, Query(max_length=64, description="The payload's type")] = None,
    from_time: Moment | None = None,
    to_time: Moment | None = None,
) -> list[JobPublic]:
    """Your jobs, filtered by state, payload type and submission time"""
    now = ctx.now()
    found = await ctx.read(
        service.list_jobs,
        principal=principal,
        now=now,
        limit=limit,
        offset=0,
        filters=service.JobFilters(state=status, job_type=type, since=from_time, until=to_time),
    )
    return [JobPublic.of(job, now) for job in found]


@router.get("/jobs/{job_id}", responses=error_responses(401, 404))
async def get_job(job_id: str, ctx: ContextDep, principal: AnyKeyDep) -> JobPublic:
    """One job"""
    return JobPublic.of(await ctx.read(service.get, job_id=job_id, principal=principal), ctx.now())


@router.get("/jobs/{job_id}/result", responses=error_responses(401, 404, 425))
async def job_outcome(job_id: str, ctx: ContextDep, principal: AnyKeyDep) -> JobOutcome:
    """The job's result once it has ended; 425 (too early) until then"""
    now = ctx.now()
    job = await ctx.read(service.outcome, job_id=job_id, principal=principal, now=now)
    return JobOutcome.of(job, now)


@router.get("/jobs/{job_id}/receipt", responses=error_responses(401, 404))
async def job_receipt(job_id: str, ctx: ContextDep, principal: AnyKeyDep) -> Receipt:
    """What ran, on which GPU, for how long, at what cost"""
    found = await ctx.read(service.job_receipt, job_id=job_id, principal=principal)
    return Receipt.of(found, ctx.now())


@router.get("/explorer/receipts", responses=error_responses(401, 422), dependencies=[CheckKey])
async def explorer_receipts(
    ctx: ContextDep,
    limit: Limit = 50,
    job_id: Annotated[str | None, Query(max_length=64)] = None,
    status: StateFilter = None,
) -> list[Receipt]:
    """Receipts of ended jobs, newest first (public: no payloads or results)"""
    found = await ctx.read(service.receipts, limit=limit, job_id=job_id, state=status)
    now = ctx.now()
    return [Receipt.of(job, now) for job in found]


@router.post("/jobs/{job_id}/cancel", responses=error_responses(401, 403, 404, 409))
async def cancel_job(job_id: str, ctx: ContextDep, principal: ClientOrAdminDep) -> JobPublic:
    """Cancel a job; a running one is charged for the time used"""
    now = ctx.now()
    cancelled = await ctx.write(
        service.cancel, job_id=job_id, principal=principal, now=now, settings=ctx.settings
    )
    return JobPublic.of(cancelled, now)


# -- the miner's side -------------------------------------------------------------------------


async def _poll_once(ctx: Context, miner_id: str, claim: bool) -> MinerJob | None:
    handed = await ctx.write(
        service.poll, miner_id=miner_id, now=ctx.now(), settings=ctx.settings, claim=claim
    )
    return None if handed is None else MinerJob.of(handed)


async def _give_back(ctx: Context, job_id: str, miner_id: str) -> None:
    await ctx.write(service.give_back, job_id=job_id, miner_id=miner_id, now=ctx.now())


async def _long_poll(
    request: Request, miner_id: str, wait: float, claim: bool
) -> MinerJob | Response:
    """Take a job now, or wait (up to 30 s) for one to be assigned to this miner: woken by
    the assignment itself, holding no thread and no connection while waiting.

    A poll whose client has gone takes nothing: a job taken is ``running`` and charged, so
    it is taken only for a connection still open (checked before every take, and the wait
    ends the moment the client leaves)."""
    ctx = context(request)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(wait, MAX_POLL_WAIT_SECONDS)
    gone = asyncio.ensure_future(disconnect.gone(request))
    try:
        with ctx.signals.waiting(miner_id) as assigned:
            while True:
                assigned.clear()
                await asyncio.sleep(0)  # let ``gone`` see a disconnect already received
                if gone.done():
                    return Response(status_code=204)
                job = await _poll_once(ctx, miner_id, claim)
                if job is not None:
                    await asyncio.sleep(0)
                    if not gone.done():
                        return job
                    # The client left while the job was being taken: it goes back.
                    await _give_back(ctx, job.job_id, miner_id)
                    return Response(status_code=204)
                left = deadline - loop.time()
                if left <= 0 or ctx.draining:  # draining: the node is going away
                    return Response(status_code=204)
                woken = asyncio.ensure_future(assigned.wait())
                await asyncio.wait((woken, gone), timeout=left, return_when=FIRST_COMPLETED)
                if not woken.done():  # the wait ran out, or the client left
                    woken.cancel()  # (either way the loop's top looks once more)
    finally:
        gone.cancel()


_POLL = {
    "response_model": MinerJob,
    "responses": {
        204: {"description": "No job for you (within the wait)"},
        **error_responses(401, 403, 422),
    },
}


@router.post("/miners/poll", **_POLL)  # type: ignore[arg-type]
async def poll(
    request: Request,
    principal: MinerDep,
    body: Annotated[MinerPoll, Body()] = None,  # type: ignore[assignment]
) -> MinerJob | Response:
    """Take the next job assigned to your GPUs, waiting up to max_wait_seconds"""
    asked = body or MinerPoll()
    return await _long_poll(request, principal.owner_id, asked.max_wait_seconds, asked.claim)


@router.get("/miners/poll", **_POLL)  # type: ignore[arg-type]
async def poll_by_get(
    request: Request,
    principal: MinerDep,
    max_wait_seconds: Annotated[float, Query(ge=0)] = 0,
    claim: Annotated[bool, Query(description="As the POST's claim")] = False,
) -> MinerJob | Response:
    """The same as POST, for clients that poll by GET"""
    return await _long_poll(request, principal.owner_id, max_wait_seconds, claim)


async def _report_result(
    job_id: str, body: JobResult, ctx: ContextDep, principal: MinerDep
) -> JobPublic:
    """Report a job's result (any JSON value): the GPU is released, used time paid"""
    if not body.success:
        error = body.result if isinstance(body.result, str) and body.result else None
        return await _fail(ctx, job_id, principal.owner_id, error, body.metrics)
    now = ctx.now()
    done = await ctx.write(
        service.complete,
        job_id=job_id,
        miner_id=principal.owner_id,
        result=body.result,
        now=now,
        settings=ctx.settings,
        metrics=body.metrics,
    )
    return JobPublic.of(done, now)


async def _fail(
    ctx: Context, job_id: str, miner_id: str, error: str | None, metrics: dict[str, Any] | None
) -> JobPublic:
    now = ctx.now()
    failed = await ctx.write(
        service.fail,
        job_id=job_id,
        miner_id=miner_id,
        error=error or "The miner reported the job unsuccessful.",
        now=now,
        settings=ctx.settings,
        metrics=metrics,
    )
    return JobPublic.of(failed, now)


async def _report_failure(
    job_id: str, body: JobFailure, ctx: ContextDep, principal: MinerDep
) -> JobPublic:
    """Report a job's failure: the client is refunded in full"""
    return await _fail(ctx, job_id, principal.owner_id, body.text(), body.metrics)


# A report is taken at the miner protocol's /miners/{job_id}/... and at /miners/jobs/{job_id}/...
for _path in ("/miners/jobs/{job_id}", "/miners/{job_id}"):
    for _action, _report in (("result", _report_result), ("fail", _report_failure)):
        router.add_api_route(
            f"{_path}/{_action}",
            _report,
            methods=["POST"],
            response_model=JobPublic,
            responses=error_responses(401, 403, 404, 409, 422),
            name=f"job_{_action}{_path.count('jobs')}",
        )


@router.post("/miners/jobs/{job_id}/start", responses=error_responses(401, 403, 404, 409))
async def confirm_job(job_id: str, ctx: ContextDep, principal: MinerDep) -> JobPublic:
    """Confirm a claimed job has reached you (before its claim runs out)"""
    now = ctx.now()
    confirmed = await ctx.write(
        service.confirm, job_id=job_id, miner_id=principal.owner_id, now=now
    )
    return JobPublic.of(confirmed, now)
