"""Orders as their owners see them; status and history are derived from the booking window
and the clock, so an order that ran out shows ``completed`` before anything settles it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session

from aitbc.auth.principal import Principal
from aitbc.bookings.lifecycle import standing
from aitbc.config import Policy
from aitbc.errors import NotFound
from aitbc.kit.money import from_units
from aitbc.models import Booking, Miner, Order, OrderEvent
from aitbc.models.booking import OPEN
from aitbc.orders.schemas import OrderDetail, OrderEventPublic, OrderPublic


def _status_condition(status: str, now: datetime) -> ColumnElement[bool]:
    is_open = Booking.status == OPEN
    conditions: dict[str, ColumnElement[bool]] = {
        "pending": and_(is_open, Booking.start_time > now),
        "active": and_(is_open, Booking.start_time <= now, Booking.end_time > now),
        "completed": or_(Booking.status == "completed", and_(is_open, Booking.end_time <= now)),
        "released": Booking.status == "released",
        "cancelled": Booking.status == "cancelled",
        "interrupted": Booking.status == "interrupted",
    }
    return conditions[status]


_ORDERS = (
    select(Order, Booking, Miner.last_heartbeat)
    .join(Booking, Booking.id == Order.booking_id)
    .join(Miner, Miner.id == Booking.miner_id)
)


def _visible(query: Any, principal: Principal) -> Any:
    if principal.role == "client":
        return query.where(Order.client_id == principal.owner_id)
    if principal.role == "miner":
        return query.where(Order.miner_id == principal.owner_id)
    return query


def _public(
    order: Order, booking: Booking, heartbeat: datetime, now: datetime, policy: Policy
) -> dict[str, Any]:
    stands = standing(booking, heartbeat=heartbeat, now=now, policy=policy)
    return {
        "order_id": order.id,
        "booking_id": booking.id,
        "gpu_id": order.gpu_id,
        "client_id": order.client_id,
        "miner_id": order.miner_id,
        "job_id": order.job_id,
        "status": stands.status,
        "price_per_hour": from_units(booking.price_units),
        "total_cost": from_units(booking.total_units),
        "amount_charged": from_units(stands.charged),
        "refund": from_units(booking.refunded_units),
        "start_time": booking.start_time,
        "end_time": booking.end_time,
        "created_at": order.created_at,
        "closed_at": stands.ended,
    }


def list_orders(
    session: Session,
    *,
    principal: Principal,
    now: datetime,
    policy: Policy,
    status: str | None,
    limit: int,
    offset: int,
) -> list[OrderPublic]:
    query = _visible(_ORDERS, principal)
    if status is not None:
        query = query.where(_status_condition(status, now))
    query = query.order_by(Order.created_at.desc(), Order.id.desc()).limit(limit).offset(offset)
    return [
        OrderPublic(**_public(o, b, heard, now, policy)) for o, b, heard in session.execute(query)
    ]


def _history(
    session: Session, order: Order, booking: Booking, now: datetime
) -> list[OrderEventPublic]:
    events = [
        OrderEventPublic(status=e.status, at=e.at)  # type: ignore[arg-type]
        for e in session.scalars(
            select(OrderEvent).where(OrderEvent.order_id == order.id).order_by(OrderEvent.id)
        )
    ]
    if booking.status == OPEN:
        seen = {e.status for e in events}
        if now >= booking.start_time and "active" not in seen:
            events.append(OrderEventPublic(status="active", at=booking.start_time))
        if now >= booking.end_time:
            events.append(OrderEventPublic(status="completed", at=booking.end_time))
    return events


def get_order(
    session: Session, *, order_id: str, principal: Principal, now: datetime, policy: Policy
) -> OrderDetail:
    query = _visible(_ORDERS, principal).where(Order.id == order_id)
    row = session.execute(query).first()
    if row is None:
        raise NotFound(f"No order {order_id!r}.", code="order_not_found")
    order, booking, heard = row
    return OrderDetail(
        **_public(order, booking, heard, now, policy),
        history=_history(session, order, booking, now),
    )
