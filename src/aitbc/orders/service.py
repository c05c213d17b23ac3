"""Orders as their owners see them; status and history are derived from the booking window
and the clock, so an order that ran out shows ``completed`` before anything settles it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from aitbc.auth.principal import Principal
from aitbc.bookings.lifecycle import standing
from aitbc.bookings.records import COLUMNS, FROM, BookingRecord
from aitbc.config import Policy
from aitbc.errors import NotFound
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
    "preempted": "b.status = 'preempted'",
}
_SELECT = f"SELECT {COLUMNS}, o.created_at AS order_created_at FROM {FROM}"
_EVENTS = Query("SELECT status, at, note FROM order_events WHERE order_id = $1 ORDER BY id")


@dataclass(frozen=True, slots=True)
class Order:
    """An order as it stands now: its booking, and what the clock makes of it."""

    booking: BookingRecord
    status: str
    charged_units: int
    created_at: datetime
    closed_at: datetime | None
    # (status, when, note) from the order's start; read for one order only.
    history: tuple[tuple[str, datetime, str | None], ...] = ()


def _visible(principal: Principal, where: list[str], args: list[Any]) -> None:
    if principal.role in ("client", "miner"):
        args.append(principal.owner_id)
        where.append(f"o.{principal.role}_id = ${len(args)}")


def _order(row: Row, now: datetime, policy: Policy) -> Order:
    booking = BookingRecord.from_row(row)
    stands = standing(booking, heartbeat=booking.miner_heartbeat, now=now, policy=policy)
    return Order(
        booking=booking,
        status=stands.status,
        charged_units=stands.charged,
        created_at=as_time(row["order_created_at"]),
        closed_at=stands.ended,
    )


async def list_orders(
    conn: Conn,
    *,
    principal: Principal,
    now: datetime,
    policy: Policy,
    status: str | None,
    limit: int,
    offset: int,
) -> list[Order]:
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
    return [_order(row, now, policy) for row in rows]


async def _history(
    conn: Conn, booking: BookingRecord, now: datetime
) -> tuple[tuple[str, datetime, str | None], ...]:
    rows = await conn.fetch(_EVENTS, booking.order_id)
    events = [(e["status"], as_time(e["at"]), e["note"]) for e in rows]
    if booking.status == "open":
        seen = {status for status, _, _ in events}
        if now >= booking.start_time and "active" not in seen:
            events.append(("active", booking.start_time, None))
        if now >= booking.end_time:
            events.append(("completed", booking.end_time, None))
    return tuple(events)


async def get_order(
    conn: Conn, *, order_id: str, principal: Principal, now: datetime, policy: Policy
) -> Order:
    where, args = ["o.id = $1"], [order_id]
    _visible(principal, where, args)
    row = await conn.fetchrow(built(f"{_SELECT} WHERE {' AND '.join(where)}"), *args)
    if row is None:
        raise NotFound(f"No order {order_id!r}.", code="order_not_found")
    order = _order(row, now, policy)
    return replace(order, history=await _history(conn, order.booking, now))
