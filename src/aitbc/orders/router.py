from __future__ import annotations

from aitbc.bookings.schemas import BookingStatus
from aitbc.http.deps import AnyKeyDep, ClockDep, SessionDep, SettingsDep
from aitbc.http.errors import error_responses
from aitbc.http.pagination import Limit, Offset
from aitbc.http.routing import APIRouter
from aitbc.orders import service
from aitbc.orders.schemas import OrderDetail, OrderPublic

router = APIRouter(prefix="/v1/marketplace/orders", tags=["orders"])


@router.get(
    "",
    response_model=list[OrderPublic],
    responses=error_responses(401, 422),
    summary="Your orders as a bare array (a miner: orders on its GPUs; an admin: all)",
)
def list_orders(
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: AnyKeyDep,
    status: BookingStatus | None = None,
    limit: Limit = 10,
    offset: Offset = 0,
) -> list[OrderPublic]:
    return service.list_orders(
        session,
        principal=principal,
        now=clock.now(),
        policy=settings.outage_policy,
        status=status,
        limit=limit,
        offset=offset,
    )


@router.get(
    "/{order_id}",
    response_model=OrderDetail,
    responses=error_responses(401, 404),
    summary="One order with its amounts and status history",
)
def get_order(
    order_id: str, session: SessionDep, clock: ClockDep, settings: SettingsDep, principal: AnyKeyDep
) -> OrderDetail:
    return service.get_order(
        session,
        order_id=order_id,
        principal=principal,
        now=clock.now(),
        policy=settings.outage_policy,
    )
