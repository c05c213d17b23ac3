from __future__ import annotations

from aitbc.bookings.schemas import BookingStatus
from aitbc.http.context import ContextDep
from aitbc.http.deps import AnyKeyDep
from aitbc.http.errors import error_responses
from aitbc.http.pagination import Limit, Offset
from aitbc.http.routing import APIRouter
from aitbc.orders import service
from aitbc.orders.schemas import OrderDetail, OrderPublic

router = APIRouter(prefix="/v1/marketplace/orders", tags=["orders"])


@router.get("", responses=error_responses(401, 422))
async def list_orders(
    ctx: ContextDep,
    principal: AnyKeyDep,
    status: BookingStatus | None = None,
    limit: Limit = 10,
    offset: Offset = 0,
) -> list[OrderPublic]:
    """Your orders as a bare array (a miner: orders on its GPUs; an admin: all)"""
    orders = await ctx.read(
        service.list_orders,
        principal=principal,
        now=ctx.now(),
        policy=ctx.settings.outage_policy,
        status=status,
        limit=limit,
        offset=offset,
    )
    return [OrderPublic.of(order) for order in orders]


@router.get("/{order_id}", responses=error_responses(401, 404))
async def get_order(order_id: str, ctx: ContextDep, principal: AnyKeyDep) -> OrderDetail:
    """One order with its amounts and status history"""
    order = await ctx.read(
        service.get_order,
        order_id=order_id,
        principal=principal,
        now=ctx.now(),
        policy=ctx.settings.outage_policy,
    )
    return OrderDetail.of(order)
