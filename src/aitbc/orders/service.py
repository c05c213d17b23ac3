"""Orders as their owners see them; status and history are derived from the booking window
and the clock, so an order that ran out shows ``completed`` before anything settles it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aitbc.auth.principal import Principal
from aitbc.bookings.lifecycle import standing
from aitbc.bookings.records import COLUMNS, FROM, BookingRecord
from aitbc.config import Policy
from aitbc.errors import NotFound
from aitbc.kit.money import from_units
from aitbc.orders.schemas import OrderDetail, OrderEventPublic, OrderPublic
from aitbc.store.conn import Conn, Row
from aitbc.store.query import Query, built
from aitbc.store.values import as_time

# {now} stands for the parameter that holds now.
_STATUS_CONDITIONS = {
    "pending": "b.status = 'open' AND b.start_time > {now}",
    "active": "b.status = 'open' AND b.start_time <= {now} AND b.end_time > {now}",
    "completed": "(b.status = 'completed' OR (b.status = 'open' AND b.end_time <= {now}))",
    "released": "b.status = 'released'",
    "cancelled": "b.status = 'cancelled'",
    "interrupted": "b.status = 'interrupted'",
}
_SELECT = f"SELECT {COLUMNS}, o.created_at AS order_created_at FROM {FROM}"
_EVENTS = Query("SELECT status, at FROM order_events WHERE order_id = $1 ORDER BY id")


def _visible(principal: Principal, where: list[str], args: list[Any]) -> None:
    if principal.role in ("client", "miner"):
        args.append(principal.owner_id)
        where.append(f"o.{principal.role}_id = ${len(args)}")


def _public(row: Row, now: datetime, policy: Policy) -> tuple[BookingRecord, dict[str, Any]]:
    booking = BookingRecord.from_row(row)
    stands = standing(booking, heartbeat=booking.miner_heartbeat, now=now, policy=policy)
    return booking, {
        "order_id": booking.order_id,
        "booking_id": booking.id,
        "gpu_id": booking.gpu_id,
        "client_id": booking.client_id,
        "miner_id": booking.miner_id,
        "job_id": booking.job_id,
        "status": stands.status,
        "price_per_hour": from_units(booking.price_units),
        "total_cost": from_units(booking.total_units),
        "amount_charged": from_units(stands.charged),
        "refund": from_units(booking.refunded_units),
        "start_time": booking.start_time,
        "end_time": booking.end_time,
        "created_at": as_time(row["order_created_at"]),
        "closed_at": stands.ended,
    }


async def list_orders(
    conn: Conn,
    *,
    principal: Principal,
    now: datetime,
    policy: Policy,
    status: str | None,
    limit: int,
    offset: int,
) -> list[OrderPublic]:
    where: list[str] = []
    args: list[Any] = []
    _visible(principal, where, args)
    if status is not None:
        condition = _STATUS_CONDITIONS[status]
        if "{now}" in condition:
            args.append(now)
            condition = condition.format(now=f"${len(args)}")
        where.append(condition)
    args += [limit, offset]
    text = (
        f"{_SELECT} {'WHERE ' + ' AND '.join(where) if where else ''} "
        f"ORDER BY o.created_at DESC, o.id DESC LIMIT ${len(args) - 1} OFFSET ${len(args)}"
    )
    rows = await conn.fetch(built(text), *args)
    return [OrderPublic(**_public(row, now, policy)[1]) for row in rows]


async def _history(conn: Conn, booking: BookingRecord, now: datetime) -> list[OrderEventPublic]:
    events = [
        OrderEventPublic(status=e["status"], at=as_time(e["at"]))
        for e in await conn.fetch(_EVENTS, booking.order_id)
    ]
    if booking.status == "open":
        seen = {e.status for e in events}
        if now >= booking.start_time and "active" not in seen:
            events.append(OrderEventPublic(status="active", at=booking.start_time))
        if now >= booking.end_time:
            events.append(OrderEventPublic(status="completed", at=booking.end_time))
    return events


async def get_order(
    conn: Conn, *, order_id: str, principal: Principal, now: datetime, policy: Policy
) -> OrderDetail:
    where, args = ["o.id = $1"], [order_id]
    _visible(principal, where, args)
    row = await conn.fetchrow(built(f"{_SELECT} WHERE {' AND '.join(where)}"), *args)
    if row is None:
        raise NotFound(f"No order {order_id!r}.", code="order_not_found")
    booking, public = _public(row, now, policy)
    return OrderDetail(**public, history=await _history(conn, booking, now))
