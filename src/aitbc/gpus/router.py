from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import orjson
from fastapi import Header, Request, Response

from aitbc.auth.principal import Principal
from aitbc.bookings import market
from aitbc.errors import NotFound
from aitbc.gpus import listing
from aitbc.gpus.schemas import (
    GpuDetail,
    GpuListQuery,
    GpuPublic,
    GpuRegister,
    GpuRegistered,
    GpuUpdate,
)
from aitbc.http.context import Context, ContextDep
from aitbc.http.deps import API_KEY_PARAMETER, MinerOrAdminDep, caller
from aitbc.http.errors import error_responses
from aitbc.http.params import documented, parse_query
from aitbc.http.routing import APIRouter
from aitbc.kit.money import maybe_units
from aitbc.miners import listings
from aitbc.store.conn import Conn

router = APIRouter(prefix="/v1/marketplace/gpu", tags=["gpus"])

_JSON = "application/json"


def _gpu_response(gpu: bytes | None, gpu_id: str) -> Response:
    if gpu is None:
        raise NotFound(f"No GPU {gpu_id!r}.", code="gpu_not_found")
    return Response(gpu, media_type=_JSON)


async def _changed(
    request: Request,
    ctx: Context,
    gpu_id: str,
    principal: Principal,
    act: Callable[..., Awaitable[object]],
    **asked: Any,
) -> Response:
    """Change the caller's GPU by ``act`` (with ``asked``) in one transaction and answer
    with it as that transaction leaves it."""
    now, settings = ctx.now(), ctx.settings
    cards = request.app.state.gpu_cards

    async def work(conn: Conn) -> bytes | None:
        gpu = await listings.owned_gpu_for_update(conn, gpu_id=gpu_id, principal=principal)
        await act(conn, gpu=gpu, now=now, settings=settings, **asked)
        return await listing.details(
            conn,
            cards,
            gpu_id=gpu_id,
            now=now,
            heartbeat_timeout=settings.heartbeat_timeout_seconds,
        )

    return _gpu_response(await ctx.store.write(work), gpu_id)


@router.post("/register", status_code=201, responses=error_responses(401, 403, 422))
async def register_gpu(
    body: GpuRegister,
    ctx: ContextDep,
    principal: MinerOrAdminDep,
    x_miner_id: Annotated[
        str | None,
        Header(
            alias="X-Miner-ID",
            description="The miner. With a miner's key: `default`, absent or the key's own "
            "miner (another is 403 miner_id_mismatch). With an admin's key: required, naming "
            "the miner to register for (absent or `default` is 422 miner_id_required).",
        ),
    ] = None,
) -> GpuRegistered:
    """Register one GPU for a miner (the CLI's `marketplace gpu register`)"""
    miner_id = listings.resolve_miner_id(principal, x_miner_id)
    gpu = await ctx.write(
        listings.register_gpu,
        miner_id=miner_id,
        spec=body.gpu.listing(),
        settings=ctx.settings,
        now=ctx.now(),
    )
    return GpuRegistered(gpu_id=gpu.id, miner_id=gpu.miner_id, status="available")


@router.get(
    "/list",
    response_model=list[GpuPublic],
    responses={
        200: {
            "headers": {
                "X-Next-Cursor": {
                    "description": "Present when the page is full: pass it as `cursor` for "
                    "the next page.",
                    "schema": {"type": "string"},
                }
            }
        },
        **error_responses(401, 422),
    },
    openapi_extra=documented(GpuListQuery, headers=(API_KEY_PARAMETER,)),
)
async def list_gpus(request: Request) -> Response:
    """List GPUs (a bare JSON array), filtered, sorted and paginated"""
    await caller(request)
    params = parse_query(GpuListQuery, request)
    state = request.app.state
    filters = listing.GpuFilters(
        available=params.available,
        model=params.model,
        memory_min=params.memory_min,
        price_max_units=maybe_units(params.price_max),
        region=params.region,
        status=params.status,
        miner_id=params.miner_id,
        ai_model=params.ai_model,
        bid_max_units=maybe_units(params.bid_max),
        cleared_max_units=maybe_units(params.cleared_max),
    )
    settings = state.settings
    bidding = listing.Bidding(settings.min_bid_share, settings.preempt_notice_seconds)
    async with state.store.read() as conn:
        page = await listing.list_page(
            conn,
            state.gpu_cards,
            state.model_keys,
            now=state.clock.now(),
            heartbeat_timeout=state.settings.heartbeat_timeout_seconds,
            filters=filters,
            bidding=bidding,
            sort=params.sort,
            limit=params.limit,
            offset=params.offset,
            cursor=params.cursor or None,
        )
    headers = {"X-Next-Cursor": page.next_cursor} if page.next_cursor else None
    return Response(page.body, media_type=_JSON, headers=headers)


@router.get(
    "/{gpu_id}",
    response_model=GpuDetail,
    responses=error_responses(401, 404),
    openapi_extra=documented(path=("gpu_id",), headers=(API_KEY_PARAMETER,)),
)
async def gpu_details(request: Request) -> Response:
    """One GPU with status, health, rating and booking state"""
    await caller(request)
    state = request.app.state
    gpu_id = request.path_params["gpu_id"]
    async with state.store.read() as conn:
        gpu = await listing.details(
            conn,
            state.gpu_cards,
            gpu_id=gpu_id,
            now=state.clock.now(),
            heartbeat_timeout=state.settings.heartbeat_timeout_seconds,
        )
        if gpu is not None:
            settings = state.settings
            costs = await market.market_now(
                conn,
                gpu_id,
                now=state.clock.now(),
                share=settings.min_bid_share,
                notice_seconds=settings.preempt_notice_seconds,
            )
            if costs is not None:  # the card without its brace, then what it costs now
                gpu = b'%s,"market":%s}' % (gpu[:-1], orjson.dumps(costs.public()))
    return _gpu_response(gpu, gpu_id)


@router.patch("/{gpu_id}", response_model=GpuPublic, responses=error_responses(401, 403, 404, 422))
async def update_gpu(
    gpu_id: str, request: Request, body: GpuUpdate, ctx: ContextDep, principal: MinerOrAdminDep
) -> Response:
    """Change a GPU's price, pricing mode or description (its miner or an admin)"""
    return await _changed(
        request, ctx, gpu_id, principal, listings.update_gpu, change=body.change()
    )


@router.delete("/{gpu_id}", response_model=GpuPublic, responses=error_responses(401, 403, 404, 409))
async def delist_gpu(
    gpu_id: str, request: Request, ctx: ContextDep, principal: MinerOrAdminDep
) -> Response:
    """Delist a GPU (its miner or an admin); refused while it is booked"""
    return await _changed(request, ctx, gpu_id, principal, listings.delist_gpu)


@router.post("/{gpu_id}/relist", response_model=GpuPublic, responses=error_responses(401, 403, 404))
async def relist_gpu(
    gpu_id: str, request: Request, ctx: ContextDep, principal: MinerOrAdminDep
) -> Response:
    """List a delisted GPU again (its miner or an admin); registering does not"""
    return await _changed(request, ctx, gpu_id, principal, listings.relist_gpu)
