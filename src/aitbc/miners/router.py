from __future__ import annotations

from aitbc.deps import ClockDep, MinerDep, SessionDep
from aitbc.errors import error_responses
from aitbc.kit.routing import APIRouter
from aitbc.miners import service
from aitbc.miners.schemas import (
    MinerGpuRef,
    MinerHeartbeat,
    MinerPublic,
    MinerRegister,
)
from aitbc.models import Gpu, Miner

router = APIRouter(prefix="/v1/miners", tags=["miners"])


def _public(miner: Miner, gpus: list[Gpu]) -> MinerPublic:
    return MinerPublic(
        miner_id=miner.id,
        region=miner.region,
        concurrency=miner.concurrency,
        inflight=miner.inflight,
        status=miner.reported_status,  # type: ignore[arg-type]
        last_heartbeat=miner.last_heartbeat,
        gpus=[MinerGpuRef(slot=g.slot, gpu_id=g.id) for g in gpus],
    )


@router.post(
    "/register",
    response_model=MinerPublic,
    responses=error_responses(401, 403, 422),
    summary="Register (or re-register) the calling miner and its GPUs",
)
def register_miner(
    body: MinerRegister, session: SessionDep, clock: ClockDep, principal: MinerDep
) -> MinerPublic:
    miner, gpus = service.register(session, miner_id=principal.owner_id, body=body, now=clock.now())
    return _public(miner, gpus)


@router.post(
    "/heartbeat",
    response_model=MinerPublic,
    responses=error_responses(401, 403, 404, 422),
    summary="Report liveness, in-flight work and per-GPU health",
)
def miner_heartbeat(
    body: MinerHeartbeat, session: SessionDep, clock: ClockDep, principal: MinerDep
) -> MinerPublic:
    miner, gpus = service.heartbeat(
        session, miner_id=principal.owner_id, body=body, now=clock.now()
    )
    return _public(miner, gpus)
