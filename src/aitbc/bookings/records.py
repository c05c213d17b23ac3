"""A booking as the request path reads it: a plain record with its order's id, read by one
column list, shown in one JSON shape (``BookingPublic``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from aitbc.bookings import lifecycle
from aitbc.config import Policy
from aitbc.kit.clock import hours_from_seconds
from aitbc.kit.money import units_text
from aitbc.store.records import FromRow
from aitbc.store.values import iso

# Every query that reads bookings for a record selects these, from FROM.
COLUMNS = (
    "b.id, b.gpu_id, b.client_id, b.miner_id, b.job_id, b.status, b.start_time, b.end_time, "
    "b.booked_seconds, b.price_units, b.total_units, b.charged_units, b.refunded_units, "
    "b.outage_seconds, b.outage_refund_units, b.created_at, b.ended_at, b.rental_type, "
    "b.fixed_seconds, b.fixed_units, b.gang_id, "
    "o.id AS order_id, o.status AS order_status, m.last_heartbeat AS miner_heartbeat, "
    "m.reported_status AS miner_status"
)
FROM = "bookings b JOIN orders o ON o.booking_id = b.id JOIN miners m ON m.id = b.miner_id"


@dataclass(slots=True)
class BookingRecord(FromRow):
    id: str
    gpu_id: str
    client_id: str
    miner_id: str
    job_id: str | None
    status: str
    start_time: datetime
    end_time: datetime
    booked_seconds: int
    price_units: int
    total_units: int
    charged_units: int
    refunded_units: int
    outage_seconds: int
    outage_refund_units: int
    created_at: datetime
    ended_at: datetime | None
    order_id: str
    order_status: str
    miner_heartbeat: datetime
    miner_status: str  # what the miner last said: online, draining or offline
    rental_type: str = "on_demand"  # or interruptible: price_units is its bid
    fixed_seconds: int = 0  # served before its bid last changed (bookings.lifecycle.split)
    fixed_units: int = 0
    gang_id: str | None = None  # booked with a gang (bookings.gangs)
    # Its job waits for its miner to take it: it has served nothing. Set by the views that
    # show it (riders.mark_waiting, or a query selecting jobs.riders.WAITING).
    job_waiting: bool = field(default=False, init=False)


def standing(booking: BookingRecord, now: datetime, policy: Policy) -> lifecycle.Standing:
    """How the booking reads now (``lifecycle.standing``), by its miner's last heartbeat and
    whether its job still waits for that miner."""
    return lifecycle.standing(
        booking,
        heartbeat=booking.miner_heartbeat,
        now=now,
        policy=policy,
        unserved=booking.job_waiting,
    )


def public(booking: BookingRecord, now: datetime, policy: Policy) -> dict[str, Any]:
    """The ``BookingPublic`` shape, as the booking stands now."""
    stands = standing(booking, now, policy)
    return {
        "booking_id": booking.id,
        "order_id": booking.order_id,
        "gpu_id": booking.gpu_id,
        "client_id": booking.client_id,
        "miner_id": booking.miner_id,
        "job_id": booking.job_id,
        "gang_id": booking.gang_id,
        "rental_type": booking.rental_type,
        "status": stands.status,
        "start_time": iso(booking.start_time),
        "end_time": iso(booking.end_time),
        "duration_hours": str(hours_from_seconds(booking.booked_seconds)),
        "price_per_hour": units_text(booking.price_units),
        "bid_per_hour": units_text(booking.price_units)
        if booking.rental_type == "interruptible"
        else None,
        "total_cost": units_text(booking.total_units),
        "amount_charged": units_text(stands.charged),
        "refund": units_text(stands.refunded),
        "offline_seconds_refunded": booking.outage_seconds,
        "offline_refund": units_text(booking.outage_refund_units),
        # While the miner may yet come back: an interrupted booking ended where the silence
        # began, and its ended_at says so.
        "miner_offline_since": None
        if stands.silence is None or stands.status == "interrupted"
        else iso(stands.silence.stop),
        "created_at": iso(booking.created_at),
        "ended_at": iso(stands.ended),
    }
