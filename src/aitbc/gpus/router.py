from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from fastapi import Header, Query, Response
from pydantic import TypeAdapter

from aitbc.deps import CheckKey, ClockDep, MinerOrAdminDep, SessionDep, SettingsDep
from aitbc.errors import NotFound, error_responses
from aitbc.gpus import query, service
from aitbc.gpus.schemas import (
    GpuPublic,
    GpuRegister,
    GpuRegistered,
    GpuStatus,
    GpuUpdate,
    SortKey,
)
from aitbc.kit.money import to_units
from aitbc.kit.pagination import Offset
from aitbc.kit.routing import APIRouter

router = APIRouter(prefix="/v1/marketplace/gpu", tags=["gpus"], dependencies=[CheckKey])

# The list is the hottest read: serialise it once, straight to JSON bytes, instead of letting
# the framework validate the models a second time.
_GPU_LIST = TypeAdapter(list[GpuPublic])


def _read_gpu(
    session: SessionDep, gpu_id: str, clock: ClockDep, settings: SettingsDep
) -> GpuPublic:
    gpu = query.get_gpu(
        session,
        gpu_id=gpu_id,
        now=clock.now(),
        heartbeat_timeout=settings.heartbeat_timeout_seconds,
    )
    if gpu is None:
        raise NotFound(f"No GPU {gpu_id!r}.", code="gpu_not_found")
    return gpu


@router.post(
    "/register",
    status_code=201,
    response_model=GpuRegistered,
    responses=error_responses(401, 403, 422),
    summary="Register one GPU for a miner (the CLI's `marketplace gpu register`)",
)
def register_gpu(
    body: GpuRegister,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: MinerOrAdminDep,
    x_miner_id: Annotated[
        str | None,
        Header(
            alias="X-Miner-ID",
            description="The miner; `default` or absent means the key's own miner.",
        ),
    ] = None,
) -> GpuRegistered:
    miner_id = service.resolve_miner_id(principal, x_miner_id)
    gpu = service.register_gpu(
        session, miner_id=miner_id, spec=body.gpu, settings=settings, now=clock.now()
    )
    return GpuRegistered(gpu_id=gpu.id, miner_id=gpu.miner_id, status="available")


@router.get(
    "/list",
    response_model=list[GpuPublic],
    responses=error_responses(401, 422),
    summary="List GPUs (a bare JSON array), filtered, sorted and paginated",
)
def list_gpus(
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    available: bool | None = Query(None, description="Only GPUs that can be booked now"),
    model: str | None = Query(
        None, max_length=128, description="Case-insensitive substring; `*` matches anything"
    ),
    memory_min: int | None = Query(None, ge=0, le=4096, description="Minimum memory in GB"),
    price_max: Decimal | None = Query(
        None, ge=0, le=1_000_000, decimal_places=6, description="Maximum price per hour"
    ),
    region: str | None = Query(None, max_length=64),
    status: GpuStatus | None = None,
    miner_id: str | None = Query(None, max_length=128),
    sort: SortKey = "price",
    limit: int = Query(20, ge=1, le=500),
    offset: Offset = 0,
) -> Response:
    filters = query.GpuFilters(
        available=available,
        model=model,
        memory_min=memory_min,
        price_max_units=None if price_max is None else to_units(price_max),
        region=region,
        status=status,
        miner_id=miner_id,
    )
    items = query.list_gpus(
        session,
        now=clock.now(),
        heartbeat_timeout=settings.heartbeat_timeout_seconds,
        filters=filters,
        sort=sort,
        limit=limit,
        offset=offset,
    )
    return Response(_GPU_LIST.dump_json(items), media_type="application/json")


@router.get(
    "/{gpu_id}",
    response_model=GpuPublic,
    responses=error_responses(401, 404),
    summary="One GPU with status, health, rating and booking state",
)
def gpu_details(
    gpu_id: str, session: SessionDep, clock: ClockDep, settings: SettingsDep
) -> GpuPublic:
    return _read_gpu(session, gpu_id, clock, settings)


@router.patch(
    "/{gpu_id}",
    response_model=GpuPublic,
    responses=error_responses(401, 403, 404, 422),
    summary="Change a GPU's price, pricing mode or description (its miner or an admin)",
)
def update_gpu(
    gpu_id: str,
    body: GpuUpdate,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: MinerOrAdminDep,
) -> GpuPublic:
    gpu = service.owned_gpu_for_update(session, gpu_id=gpu_id, principal=principal)
    service.update_gpu(session, gpu=gpu, body=body, now=clock.now())
    return _read_gpu(session, gpu_id, clock, settings)


@router.delete(
    "/{gpu_id}",
    response_model=GpuPublic,
    responses=error_responses(401, 403, 404, 409),
    summary="Delist a GPU (its miner or an admin); refused while it is booked",
)
def delist_gpu(
    gpu_id: str,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: MinerOrAdminDep,
) -> GpuPublic:
    gpu = service.owned_gpu_for_update(session, gpu_id=gpu_id, principal=principal)
    service.delist_gpu(session, gpu=gpu, now=clock.now(), fee_bps=settings.platform_fee_bps)
    return _read_gpu(session, gpu_id, clock, settings)
