"""The events of a booking's life (events.log), emitted in the transaction that makes the
change: to its renter and its provider."""

from __future__ import annotations

from datetime import datetime, timedelta

from aitbc.bookings.records import COLUMNS, FROM, BookingRecord, public
from aitbc.config import Policy
from aitbc.events.log import emit, event
from aitbc.kit.money import units_text
from aitbc.store.conn import Conn
from aitbc.store.outgoing import Outgoing
from aitbc.store.query import Query
from aitbc.store.values import iso

# How an ended booking reads does not depend on its miner's silence.
_ENDED = Policy(timeout=1, grace=0)


def created(record: BookingRecord, *, now: datetime, policy: Policy) -> Outgoing:
    """``booking.created``, for the booking's own statement to write (bookings.service)."""
    return event(
        "booking.created",
        subject_id=record.id,
        data=public(record, now, policy),
        owners=(record.client_id, record.miner_id),
        at=now,
    )[0]


def booking(
    conn: Conn,
    record: BookingRecord,
    *kinds: str,
    now: datetime,
    policy: Policy,
    **extra: object,
) -> None:
    """``booking.<kind>`` for each of ``kinds``, with the booking as ``GET /v1/bookings/{id}``
    shows it now (and ``extra`` beside it)."""
    emit(
        conn,
        *(f"booking.{kind}" for kind in kinds),
        subject_id=record.id,
        data=public(record, now, policy) | extra,
        owners=(record.client_id, record.miner_id),
        at=now,
    )


def preempted(
    conn: Conn, record: BookingRecord, *, by: str, notice_ends: datetime, now: datetime
) -> None:
    """``booking.preempted``: the notice, as the booking is outbid (its ``ended_at`` is when
    the GPU is taken), with its refund."""
    preemption = {
        "by": by,
        "noticed_at": iso(now),
        "notice_ends_at": iso(notice_ends),
        "gpu_taken_at": iso(record.ended_at),
    }
    booking(conn, record, "preempted", now=now, policy=_ENDED, preemption=preemption)
    if record.refunded_units > 0:
        refunded(conn, record, units=record.refunded_units, reason="preempted", now=now)


def refunded(conn: Conn, record: BookingRecord, *, units: int, reason: str, now: datetime) -> None:
    emit(
        conn,
        "order.refunded",
        subject_id=record.order_id,
        data={
            "order_id": record.order_id,
            "booking_id": record.id,
            "gpu_id": record.gpu_id,
            "amount": units_text(units),
            "reason": reason,
        },
        owners=(record.client_id, record.miner_id),
        at=now,
    )


def ended(conn: Conn, record: BookingRecord, *, now: datetime) -> None:
    """The booking as it ended, with the refund it was given if any."""
    booking(conn, record, record.status, now=now, policy=_ENDED)
    if record.refunded_units > 0:
        refunded(conn, record, units=record.refunded_units, reason=record.status, now=now)


_ENDING = Query(
    f"SELECT {COLUMNS} FROM {FROM} WHERE b.status = 'open' AND b.end_time > $1 "
    "AND b.end_time <= $2 AND b.start_time <= $1 AND b.ending_notice_at IS NULL "
    "ORDER BY b.end_time LIMIT $3 FOR UPDATE OF b SKIP LOCKED"
)
_NOTICED = Query(
    "UPDATE bookings SET ending_notice_at = $2 WHERE id = $1 AND ending_notice_at IS NULL"
)


async def ending_soon(
    conn: Conn, *, now: datetime, within: timedelta, policy: Policy, limit: int = 500
) -> int:
    """``booking.ending_soon`` once for each running booking that ends within ``within``
    (the sweeper). Returns how many it announced."""
    told = 0
    for row in await conn.fetch(_ENDING, now, now + within, limit):
        record = BookingRecord.from_row(row)
        if await conn.execute(_NOTICED, record.id, now):
            ends_in = _seconds(record, now)
            booking(conn, record, "ending_soon", now=now, policy=policy, ends_in_seconds=ends_in)
            told += 1
    return told


def _seconds(record: BookingRecord, now: datetime) -> int:
    return max(0, int((record.end_time - now).total_seconds()))
