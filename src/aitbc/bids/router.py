"""Bids: standing requests for GPUs at a maximum price. Served under ``/v1/marketplace`` and,
for older clients, under ``/marketplace`` as well (with the offers)."""

from __future__ import annotations

from datetime import timedelta

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
from aitbc.kit.hours import seconds_from_hours
from aitbc.kit.money import to_units
from aitbc.store.conn import Conn

router = APIRouter(tags=["offers"], dependencies=[CheckKey])


@router.post(
    "/marketplace/bids",
    status_code=202,
    response_model=BidPublic,
    responses=error_responses(401, 403, 422),
)
async def create_bid(
    body: BidCreate,
    request: Request,
    ctx: ContextDep,
    principal: ClientDep,
    idempotency_key: IdempotencyKey = None,
) -> Response:
    """A standing request for GPUs at a maximum price; filled by bookings when it can"""
    now, settings = ctx.now(), ctx.settings
    asked = bids.BidRequest(
        client_id=principal.owner_id,
        capacity=body.capacity,
        price_units=to_units(body.price),
        seconds=seconds_from_hours(body.duration_hours, settings.max_booking_hours),
        ttl=timedelta(hours=body.ttl_hours),
        provider=body.provider,
        gpu_model=body.gpu_model,
        notes=body.notes,
    )

    async def make(conn: Conn) -> BidPublic:
        return BidPublic.of(await bids.create(conn, asked, now=now, settings=settings), now)

    return await idempotency.respond_once(
        request, ctx.store, principal.owner_id, body, now, make, 202
    )


@router.get("/marketplace/bids", responses=error_responses(401, 422))
async def list_bids(
    ctx: ContextDep,
    principal: AnyKeyDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[BidPublic]:
    """Your bids (an admin: all)"""
    found = await ctx.read(bids.list_bids, principal=principal, limit=limit, offset=offset)
    now = ctx.now()
    return [BidPublic.of(bid, now) for bid in found]


@router.post("/marketplace/bids/{bid_id}/cancel", responses=error_responses(401, 403, 404, 409))
async def cancel_bid(bid_id: str, ctx: ContextDep, principal: ClientOrAdminDep) -> BidPublic:
    """Cancel an open bid (bookings it already made stand)"""
    now = ctx.now()
    return BidPublic.of(
        await ctx.write(bids.cancel, bid_id=bid_id, principal=principal, now=now), now
    )
