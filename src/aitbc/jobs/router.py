from __future__ import annotations

from fastapi import Request, Response

from aitbc.deps import (
    AnyKeyDep,
    ClientDep,
    ClientOrAdminDep,
    ClockDep,
    MinerDep,
    SessionDep,
    SettingsDep,
)
from aitbc.errors import error_responses
from aitbc.jobs import service
from aitbc.jobs.schemas import JobCreate, JobFailure, JobPublic, JobResult, MinerJob
from aitbc.kit import idempotency
from aitbc.kit.idempotency import IdempotencyKey
from aitbc.kit.pagination import Limit, Offset
from aitbc.kit.routing import APIRouter

router = APIRouter(prefix="/v1", tags=["jobs"])


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
    "/jobs/{job_id}",
    response_model=JobPublic,
    responses=error_responses(401, 404),
    summary="One job",
)
def get_job(job_id: str, session: SessionDep, clock: ClockDep, principal: AnyKeyDep) -> JobPublic:
    return service.get(session, job_id=job_id, principal=principal, now=clock.now())


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


@router.post(
    "/miners/poll",
    response_model=MinerJob,
    responses={204: {"description": "No job for you now"}, **error_responses(401, 403)},
    summary="Take the next job assigned to your GPUs",
)
def poll(
    session: SessionDep, clock: ClockDep, settings: SettingsDep, principal: MinerDep
) -> MinerJob | Response:
    job = service.poll(session, miner_id=principal.owner_id, now=clock.now(), settings=settings)
    return Response(status_code=204) if job is None else job


@router.post(
    "/miners/jobs/{job_id}/result",
    response_model=JobPublic,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Report a job's result: the GPU is released and used time paid",
)
def job_result(
    job_id: str,
    body: JobResult,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: MinerDep,
) -> JobPublic:
    return service.complete(
        session,
        job_id=job_id,
        miner_id=principal.owner_id,
        result=body.result,
        now=clock.now(),
        settings=settings,
    )


@router.post(
    "/miners/jobs/{job_id}/fail",
    response_model=JobPublic,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Report a job's failure: the client is refunded in full",
)
def job_fail(
    job_id: str,
    body: JobFailure,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: MinerDep,
) -> JobPublic:
    return service.fail(
        session,
        job_id=job_id,
        miner_id=principal.owner_id,
        error=body.error,
        now=clock.now(),
        settings=settings,
    )
