"""Job endpoints, for our own clients and the deployed ones (``../shared/docs``'s job
protocol): submit, read, wait for the result (425 until the job ends), cancel, history and
receipts; and the miner's side: a long poll for work, results and failures."""

from __future__ import annotations

import asyncio
from asyncio import FIRST_COMPLETED
from typing import Annotated

from fastapi import Body, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from aitbc.config import Settings
from aitbc.db import Database
from aitbc.http import idempotency
from aitbc.http.deps import (
    AnyKeyDep,
    CheckKey,
    ClientDep,
    ClientOrAdminDep,
    ClockDep,
    MinerDep,
    SessionDep,
    SettingsDep,
)
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
    JobState,
    MinerJob,
    MinerPoll,
    Receipt,
)
from aitbc.kit.clock import Clock
from aitbc.kit.types import Moment

router = APIRouter(prefix="/v1", tags=["jobs"])
MAX_POLL_WAIT_SECONDS = 30.0


@router.post(
    "/jobs",
    status_code=201,
    response_model=JobPublic,
    responses=error_responses(401, 402, 403, 422),
    summary="Submit a job; it books the best matching GPU now or waits in the queue",
)
def submit_job(
    body: JobCreate,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: ClientDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    now = clock.now()
    return idempotency.once_in_session(
        session,
        request,
        owner_id=principal.owner_id,
        body=body,
        now=now,
        status_code=201,
        action=lambda: service.submit(
            session, client_id=principal.owner_id, body=body, now=now, settings=settings
        ),
    )


@router.get(
    "/jobs",
    response_model=list[JobPublic],
    responses=error_responses(401, 422),
    summary="Your jobs (a miner: jobs on its GPUs; an admin: all)",
)
def list_jobs(
    session: SessionDep,
    clock: ClockDep,
    principal: AnyKeyDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[JobPublic]:
    return service.list_jobs(
        session, principal=principal, now=clock.now(), limit=limit, offset=offset
    )


@router.get(
    "/jobs/history",
    response_model=list[JobPublic],
    responses=error_responses(401, 422),
    summary="Your jobs, filtered by state, payload type and submission time",
)
def job_history(
    session: SessionDep,
    clock: ClockDep,
    principal: AnyKeyDep,
    limit: Limit = 50,
    status: JobState | None = None,
    type: Annotated[str | None, Query(max_length=64, description="The payload's type")] = None,
    from_time: Moment | None = None,
    to_time: Moment | None = None,
) -> list[JobPublic]:
    return service.list_jobs(
        session,
        principal=principal,
        now=clock.now(),
        limit=limit,
        offset=0,
        filters=service.JobFilters(state=status, job_type=type, since=from_time, until=to_time),
    )


@router.get(
    "/jobs/{job_id}",
    response_model=JobPublic,
    responses=error_responses(401, 404),
    summary="One job",
)
def get_job(job_id: str, session: SessionDep, clock: ClockDep, principal: AnyKeyDep) -> JobPublic:
    return service.get(session, job_id=job_id, principal=principal, now=clock.now())


@router.get(
    "/jobs/{job_id}/result",
    response_model=JobOutcome,
    responses=error_responses(401, 404, 425),
    summary="The job's result once it has ended; 425 (too early) until then",
)
def job_outcome(
    job_id: str, session: SessionDep, clock: ClockDep, principal: AnyKeyDep
) -> JobOutcome:
    return service.outcome(session, job_id=job_id, principal=principal, now=clock.now())


@router.get(
    "/jobs/{job_id}/receipt",
    response_model=Receipt,
    responses=error_responses(401, 404),
    summary="What ran, on which GPU, for how long, at what cost",
)
def job_receipt(job_id: str, session: SessionDep, clock: ClockDep, principal: AnyKeyDep) -> Receipt:
    return service.job_receipt(session, job_id=job_id, principal=principal, now=clock.now())


@router.get(
    "/explorer/receipts",
    response_model=list[Receipt],
    responses=error_responses(401, 422),
    dependencies=[CheckKey],
    summary="Receipts of ended jobs, newest first (public: no payloads or results)",
)
def explorer_receipts(
    session: SessionDep,
    clock: ClockDep,
    limit: Limit = 50,
    job_id: Annotated[str | None, Query(max_length=64)] = None,
    status: JobState | None = None,
) -> list[Receipt]:
    return service.receipts(session, now=clock.now(), limit=limit, job_id=job_id, state=status)


@router.post(
    "/jobs/{job_id}/cancel",
    response_model=JobPublic,
    responses=error_responses(401, 403, 404, 409),
    summary="Cancel a job; a running one is charged for the time used",
)
def cancel_job(
    job_id: str,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: ClientOrAdminDep,
) -> JobPublic:
    return service.cancel(
        session, job_id=job_id, principal=principal, now=clock.now(), settings=settings
    )


# -- the miner's side -------------------------------------------------------------------------


def _poll_once(
    db: Database, miner_id: str, clock: Clock, settings: Settings, claim: bool
) -> MinerJob | None:
    with db.session(write=True) as session:
        job = service.poll(
            session, miner_id=miner_id, now=clock.now(), settings=settings, claim=claim
        )
        session.commit()
        return job


def _give_back(db: Database, job_id: str, miner_id: str, clock: Clock) -> None:
    with db.session(write=True) as session:
        service.give_back(session, job_id=job_id, miner_id=miner_id, now=clock.now())
        session.commit()


async def _gone(request: Request) -> None:
    """Returns when the client has closed its connection (the request's body, if any, has
    been read by then: what is left to receive is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _long_poll(
    request: Request, miner_id: str, wait: float, claim: bool
) -> MinerJob | Response:
    """Take a job now, or wait (up to 30 s) for one to be assigned to this miner: woken by
    the assignment itself, holding no thread and no connection while waiting.

    A poll whose client has gone takes nothing: a job taken is ``running`` and charged, so
    it is taken only for a connection still open (checked before every take, and the wait
    ends the moment the client leaves)."""
    state = request.app.state
    loop = asyncio.get_running_loop()
    deadline = loop.time() + min(wait, MAX_POLL_WAIT_SECONDS)
    gone = asyncio.ensure_future(_gone(request))
    try:
        with state.signals.waiting(miner_id) as assigned:
            while True:
                assigned.clear()
                await asyncio.sleep(0)  # let ``gone`` see a disconnect already received
                if gone.done():
                    return Response(status_code=204)
                job = await run_in_threadpool(
                    _poll_once, state.db, miner_id, state.clock, state.settings, claim
                )
                if job is not None:
                    await asyncio.sleep(0)
                    if not gone.done():
                        return job
                    # The client left while the job was being taken: it goes back.
                    await run_in_threadpool(_give_back, state.db, job.job_id, miner_id, state.clock)
                    return Response(status_code=204)
                left = deadline - loop.time()
                if left <= 0:
                    return Response(status_code=204)
                woken = asyncio.ensure_future(assigned.wait())
                await asyncio.wait((woken, gone), timeout=left, return_when=FIRST_COMPLETED)
                if not woken.done():
                    woken.cancel()
                    if not gone.done():
                        return Response(status_code=204)
    finally:
        gone.cancel()


_POLL = {
    "response_model": MinerJob,
    "responses": {
        204: {"description": "No job for you (within the wait)"},
        **error_responses(401, 403, 422),
    },
}


@router.post(
    "/miners/poll",
    summary="Take the next job assigned to your GPUs, waiting up to max_wait_seconds",
    **_POLL,  # type: ignore[arg-type]
)
async def poll(
    request: Request,
    principal: MinerDep,
    body: Annotated[MinerPoll, Body()] = None,  # type: ignore[assignment]
) -> MinerJob | Response:
    asked = body or MinerPoll()
    return await _long_poll(request, principal.owner_id, asked.max_wait_seconds, asked.claim)


@router.get(
    "/miners/poll",
    summary="The same as POST, for clients that poll by GET",
    **_POLL,  # type: ignore[arg-type]
)
async def poll_by_get(
    request: Request,
    principal: MinerDep,
    max_wait_seconds: Annotated[float, Query(ge=0)] = 0,
    claim: Annotated[bool, Query(description="As the POST's claim")] = False,
) -> MinerJob | Response:
    return await _long_poll(request, principal.owner_id, max_wait_seconds, claim)


def _report_result(
    job_id: str, body: JobResult, session: SessionDep, clock: ClockDep, settings: SettingsDep,
    principal: MinerDep,
) -> JobPublic:  # fmt: skip
    if not body.success:
        error = body.result if isinstance(body.result, str) and body.result else None
        return service.fail(
            session,
            job_id=job_id,
            miner_id=principal.owner_id,
            error=error or "The miner reported the job unsuccessful.",
            now=clock.now(),
            settings=settings,
            metrics=body.metrics,
        )
    return service.complete(
        session,
        job_id=job_id,
        miner_id=principal.owner_id,
        result=body.result,
        now=clock.now(),
        settings=settings,
        metrics=body.metrics,
    )


def _report_failure(
    job_id: str, body: JobFailure, session: SessionDep, clock: ClockDep, settings: SettingsDep,
    principal: MinerDep,
) -> JobPublic:  # fmt: skip
    return service.fail(
        session,
        job_id=job_id,
        miner_id=principal.owner_id,
        error=body.text(),
        now=clock.now(),
        settings=settings,
        metrics=body.metrics,
    )


for _path in ("/miners/jobs/{job_id}", "/miners/{job_id}"):
    router.add_api_route(
        f"{_path}/result",
        _report_result,
        methods=["POST"],
        response_model=JobPublic,
        responses=error_responses(401, 403, 404, 409, 422),
        summary="Report a job's result (any JSON value): the GPU is released, used time paid",
        name=f"job_result{_path.count('jobs')}",
    )
    router.add_api_route(
        f"{_path}/fail",
        _report_failure,
        methods=["POST"],
        response_model=JobPublic,
        responses=error_responses(401, 403, 404, 409, 422),
        summary="Report a job's failure: the client is refunded in full",
        name=f"job_fail{_path.count('jobs')}",
    )


@router.post(
    "/miners/jobs/{job_id}/start",
    response_model=JobPublic,
    responses=error_responses(401, 403, 404, 409),
    summary="Confirm a claimed job has reached you (before its claim runs out)",
)
def confirm_job(
    job_id: str, session: SessionDep, clock: ClockDep, principal: MinerDep
) -> JobPublic:
    return service.confirm(session, job_id=job_id, miner_id=principal.owner_id, now=clock.now())
