"""Orders as their owners see them; status and history are derived from the booking window
and the clock, so an order that ran out shows ``completed`` before anything settles it."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from aitbc.auth.principal import Principal
from aitbc.bookings.records import COLUMNS, FROM, BookingRecord, standing
from aitbc.config import Policy
from aitbc.errors import NotFound
from aitbc.jobs.riders import WAITING
from aitbc.store.conn import Conn, Row
from aitbc.store.query import Params, Query, built
from aitbc.store.values import as_time

_SELECT = (
    f"SELECT {COLUMNS}, {WAITING} AS job_waiting, o.created_at AS order_created_at FROM {FROM}"
)
_EVENTS = Query("SELECT status, at, note FROM order_events WHERE order_id = $1 ORDER BY id")
# {now} stands for the parameter that holds now, {silent} for _SILENT. An open booking whose
# time is up reads ``cancelled`` when its job's miner never took the job, else ``completed``.
_STATUS_CONDITIONS = {
    "pending": "b.status = 'open' AND b.start_time > {now}",
    "active": "b.status = 'open' AND b.start_time <= {now} AND b.end_time > {now} AND NOT {silent}",
    "completed": "(b.status = 'completed' "
    f"OR (b.status = 'open' AND b.end_time <= {{now}} AND NOT {{silent}} AND {WAITING} = 0))",
    "released": "b.status = 'released'",
    "cancelled": "(b.status = 'cancelled' "
    f"OR (b.status = 'open' AND b.end_time <= {{now}} AND NOT {{silent}} AND {WAITING} = 1))",
    "interrupted": "(b.status = 'interrupted' OR {silent})",
    "preempted": "b.status = 'preempted'",
}
# An open booking reads ``interrupted`` once its miner has stayed silent past the grace,
# before the sweep settles it (bookings.lifecycle.standing): the miner is offline now
# ({offline}: heard from before now less the timeout), the grace has run out since the later
# of the booking's start and the miner going offline ({lapsed}, {graced}), and the miner
# went offline before the booking's end (SHIFTED: its last heartbeat plus the timeout).
_SILENT = (
    "(b.status = 'open' AND m.last_heartbeat < {offline} AND m.last_heartbeat <= {lapsed} "
    "AND b.start_time <= {graced} AND SHIFTED < b.end_time)"
)
_SHIFTED = re.compile(r"SHIFTED(\$\d+)")  # SHIFTED$n: the last heartbeat plus $n seconds


def _in_dialects(text: str) -> Query:
    return built(
        _SHIFTED.sub(r"shifted(m.last_heartbeat, \1)", text),  # store.values.shifted
        postgresql=_SHIFTED.sub(r"(m.last_heartbeat + make_interval(secs => \1))", text),
    )


@dataclass(frozen=True, slots=True)
class Order:
    """An order as it stands now: its booking, and what the clock makes of it."""

    booking: BookingRecord
    status: str
    charged_units: int
    refunded_units: int
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
    booking.job_waiting = bool(row["job_waiting"])
    stands = standing(booking, now, policy)
    return Order(
        booking=booking,
        status=stands.status,
        charged_units=stands.charged,
        refunded_units=stands.refunded,
        created_at=as_time(row["order_created_at"]),
        closed_at=stands.ended,
    )


def _status_condition(status: str, params: Params, now: datetime, policy: Policy) -> str:
    """The status filter, with SHIFTED$n left for ``_in_dialects``."""
    condition = _STATUS_CONDITIONS[status]
    marks: dict[str, str] = {}
    if "{now}" in condition:
        marks["now"] = params.add(now)
    if "{silent}" in condition:
        silent = _SILENT.format(
            offline=params.add(now - timedelta(seconds=policy.timeout)),
            lapsed=params.add(now - timedelta(seconds=policy.timeout + policy.grace)),
            graced=params.add(now - timedelta(seconds=policy.grace)),
        )
        marks["silent"] = silent.replace("SHIFTED", f"SHIFTED{params.add(float(policy.timeout))}")
    return condition.format(**marks)


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
    """The orders the principal may see, newest first; ``status`` filters by the status each
    reads now (settled or not, as ``standing`` has it)."""
    where: list[str] = []
    params = Params()
    _visible(principal, where, params.values)
    if status is not None:
        where.append(_status_condition(status, params, now, policy))
    text = (
        f"{_SELECT} {'WHERE ' + ' AND '.join(where) if where else ''} "
        f"ORDER BY o.created_at DESC, o.id DESC "
        f"LIMIT {params.add(limit)} OFFSET {params.add(offset)}"
    )
    rows = await conn.fetch(_in_dialects(text), *params.values)
    return [_order(row, now, policy) for row in rows]


async def _history(
    conn: Conn, booking: BookingRecord, now: datetime, policy: Policy
) -> tuple[tuple[str, datetime, str | None], ...]:
    """The order's recorded history, and what the clock adds to an open one: its start, and
    its end as it will be settled (``settlement.Outcome.events``)."""
    rows = await conn.fetch(_EVENTS, booking.order_id)
    events = [(e["status"], as_time(e["at"]), e["note"]) for e in rows]
    if booking.status != "open":
        return tuple(events)
    stands = standing(booking, now, policy)
    # It began: it has started, and ran a while before it ended (unless its miner was
    # silent from its start).
    began = now >= booking.start_time if stands.ended is None else stands.ended > booking.start_time
    if began and "active" not in {status for status, _, _ in events}:
        events.append(("active", booking.start_time, None))
    if stands.status == "interrupted" and stands.silence is not None:
        events.append(("offline", stands.silence.stop, None))
        events.append(("interrupted", stands.silence.deadline, None))
    elif stands.status in ("completed", "cancelled"):  # its time is up
        events.append((stands.status, booking.end_time, None))
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
    return replace(order, history=await _history(conn, order.booking, now, policy))
