"""Bids: standing requests for GPUs at a maximum price. Served under ``/v1/marketplace`` and,
for older clients, under ``/marketplace`` as well (with the offers)."""

from __future__ import annotations

from functools import partial

from fastapi import Request, Response

from aitbc.bids import service as bids
from aitbc.bids.schemas import BidCreate, BidPublic
from aitbc.http import idempotency
from aitbc.http.context import ContextDep
from aitbc.http.deps import AnyKeyDep, CheckKey, ClientDep, ClientOrAdminDep
from aitbc.http.errors import error_responses
from aitbc.http.idempotency import IdempotencyKey
from aitbc.http.pagination import Limit, Offset
from aitbc.http.routing import APIRouter

router = APIRouter(tags=["offers"], dependencies=[CheckKey])


@router.post(
    "/marketplace/bids",
    status_code=202,
    response_model=BidPublic,
    responses=error_responses(401, 403, 422),
    summary="A standing request for GPUs at a maximum price; filled by bookings when it can",
)
async def create_bid(
    body: BidCreate,
    request: Request,
    ctx: ContextDep,
    principal: ClientDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    now = ctx.now()
    make = partial(
        bids.create, client_id=principal.owner_id, body=body, now=now, settings=ctx.settings
    )
    return await idempotency.respond_once(
        ctx.store,
        request,
        owner_id=principal.owner_id,
        body=body,
        now=now,
        status_code=202,
        make=make,
    )


@router.get(
    "/marketplace/bids",
    response_model=list[BidPublic],
    responses=error_responses(401, 422),
    summary="Your bids (an admin: all)",
)
async def list_bids(
    ctx: ContextDep,
    principal: AnyKeyDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[BidPublic]:
    return await ctx.read(
        bids.list_bids, principal=principal, now=ctx.now(), limit=limit, offset=offset
    )


@router.post(
    "/marketplace/bids/{bid_id}/cancel",
    response_model=BidPublic,
    responses=error_responses(401, 403, 404, 409),
    summary="Cancel an open bid (bookings it already made stand)",
)
async def cancel_bid(bid_id: str, ctx: ContextDep, principal: ClientOrAdminDep) -> BidPublic:
    return await ctx.write(bids.cancel, bid_id=bid_id, principal=principal, now=ctx.now())
