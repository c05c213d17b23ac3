"""Where a booking is in its life, derived from its window and the clock, and what its end
costs: pure functions of a booking (an ORM row or a ``BookingRecord``) and a moment. How a
booking ends in the database is ``bookings.settlement``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from math import ceil
from typing import Protocol

from aitbc.kit.money import divide_units, fee_units
from aitbc.models.booking import OPEN


class BookingLike(Protocol):
    status: str
    start_time: datetime
    end_time: datetime
    booked_seconds: int
    total_units: int
    charged_units: int
    ended_at: datetime | None


def effective_status(booking: BookingLike, now: datetime) -> str:
    """pending / active / completed / released / cancelled, whatever has been settled."""
    if booking.status != OPEN:
        return booking.status
    if now >= booking.end_time:
        return "completed"
    if now >= booking.start_time:
        return "active"
    return "pending"


def charged_units(booking: BookingLike, now: datetime) -> int:
    """Charged so far: the whole total once the time is up, settled or not."""
    if booking.status == OPEN and now >= booking.end_time:
        return booking.total_units
    return booking.charged_units


def ended_at(booking: BookingLike, now: datetime) -> datetime | None:
    """When the booking ended: as recorded, or its end time once the time is up."""
    if booking.ended_at is not None:
        return booking.ended_at
    return booking.end_time if effective_status(booking, now) == "completed" else None


def used_seconds(booking: BookingLike, at: datetime) -> int:
    """Whole seconds used by ``at``: a started second is charged, never more than booked."""
    elapsed = (min(at, booking.end_time) - booking.start_time).total_seconds()
    return max(0, min(booking.booked_seconds, ceil(elapsed)))


@dataclass(frozen=True, slots=True)
class Split:
    charged: int
    refunded: int
    fee: int

    @property
    def provider(self) -> int:
        return self.charged - self.fee


def split(booking: BookingLike, at: datetime, fee_bps: int) -> Split:
    used = used_seconds(booking, at)
    if used >= booking.booked_seconds:
        charged = booking.total_units
    else:
        charged = divide_units(booking.total_units * used, booking.booked_seconds)
    return Split(
        charged=charged,
        refunded=booking.total_units - charged,
        fee=fee_units(charged, fee_bps),
    )
