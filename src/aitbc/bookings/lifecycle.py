"""Where a booking is in its life, derived from its window and the clock, and what its end
costs: pure functions of a booking (a ``BookingRecord``, or anything shaped like one) and a
moment. How a booking ends in the database is ``bookings.settlement``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from math import ceil, floor
from typing import Protocol

from aitbc.config import Policy
from aitbc.kit.money import divide_units, fee_units
from aitbc.models.booking import OPEN


class BookingLike(Protocol):
    status: str
    start_time: datetime
    end_time: datetime
    booked_seconds: int
    total_units: int
    charged_units: int
    refunded_units: int
    ended_at: datetime | None
    outage_seconds: int
    outage_refund_units: int
    fixed_seconds: int
    fixed_units: int


def effective_status(booking: BookingLike, now: datetime) -> str:
    """pending / active / completed / released / cancelled, whatever has been settled."""
    if booking.status != OPEN:
        return booking.status
    if now >= booking.end_time:
        return "completed"
    if now >= booking.start_time:
        return "active"
    return "pending"


def live(booking: BookingLike, now: datetime) -> bool:
    """Still to begin or running: what a release, an extension or a new bid can change."""
    return effective_status(booking, now) in ("pending", "active")


def charged_units(booking: BookingLike, now: datetime) -> int:
    """Charged so far: the whole (less refunded offline time) once the time is up, settled
    or not."""
    if booking.status == OPEN and now >= booking.end_time:
        return split(booking, booking.end_time, 0).charged
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


def served_seconds(booking: BookingLike, at: datetime) -> int:
    """Seconds used by ``at`` that are charged: less the offline seconds already refunded."""
    return max(0, used_seconds(booking, at) - booking.outage_seconds)


@dataclass(frozen=True, slots=True)
class Split:
    charged: int
    refunded: int
    fee: int

    @property
    def provider(self) -> int:
        return self.charged - self.fee


def nothing_served(booking: BookingLike) -> Split:
    """All that escrow still holds back to the client: the booking served nothing (its
    provider failed it, or its job's miner never took the job)."""
    return Split(charged=0, refunded=booking.total_units - booking.outage_refund_units, fee=0)


def split(booking: BookingLike, at: datetime, fee_bps: int) -> Split:
    """What ending the booking at ``at`` charges and refunds of what is still in escrow:
    the seconds served (used, less the offline seconds already refunded), pro rata."""
    served = served_seconds(booking, at)
    held = booking.total_units - booking.outage_refund_units
    if served >= booking.booked_seconds:
        charged = booking.total_units
    else:
        charged = booking.fixed_units + rate_units(booking, max(0, served - booking.fixed_seconds))
    charged = min(charged, held)
    return Split(charged=charged, refunded=held - charged, fee=fee_units(charged, fee_bps))


def rate_units(booking: BookingLike, seconds: int) -> int:
    """What ``seconds`` of the booking cost at its rate since its bid last changed (its
    whole window's rate when it never did): the rest of its total, pro rata."""
    rest_seconds = booking.booked_seconds - booking.fixed_seconds
    rest_units = booking.total_units - booking.fixed_units
    return divide_units(rest_units * seconds, rest_seconds)


# -- a miner's silence (bookings.outages applies it) -----------------------------------------


@dataclass(frozen=True, slots=True)
class Outage:
    """A miner's silence, as it affects one booking."""

    stop: datetime  # where the booking's clock stopped
    deadline: datetime  # from then on, without a return, the booking is interrupted

    def interrupted(self, now: datetime) -> bool:
        return now >= self.deadline


def outage(booking: BookingLike, *, heartbeat: datetime, policy: Policy) -> Outage | None:
    """How a silence since ``heartbeat`` affects the booking: not at all when the miner was
    still online at the booking's end."""
    offline_from = heartbeat + timedelta(seconds=policy.timeout)
    if offline_from >= booking.end_time:
        return None
    return Outage(
        stop=max(booking.start_time, heartbeat),
        deadline=max(booking.start_time, offline_from) + timedelta(seconds=policy.grace),
    )


def current(
    booking: BookingLike, *, heartbeat: datetime, now: datetime, policy: Policy
) -> Outage | None:
    """The silence affecting the booking now, if its miner (last heard at ``heartbeat``) is
    offline now."""
    if heartbeat + timedelta(seconds=policy.timeout) >= now:
        return None
    return outage(booking, heartbeat=heartbeat, policy=policy)


def offline_seconds(booking: BookingLike, silent_from: datetime, back: datetime) -> int:
    """Whole seconds of the booking's window within the silence [silent_from, back)."""
    start = max(booking.start_time, silent_from)
    end = min(booking.end_time, back)
    return max(0, floor((end - start).total_seconds()))


@dataclass(frozen=True, slots=True)
class Standing:
    """How a booking reads now, settled or not."""

    status: str
    charged: int
    refunded: int  # of what escrow held, once it has ended (0 while it runs)
    ended: datetime | None
    silence: Outage | None  # its miner's silence, while that matters to it


def standing(
    booking: BookingLike,
    *,
    heartbeat: datetime,
    now: datetime,
    policy: Policy,
    unserved: bool = False,
) -> Standing:
    """The booking as it reads now, as it will settle (``settlement.ending_now``). An open
    booking whose miner is silent shows what it will settle at: its clock stopped at the
    last heartbeat, whether the miner comes back within the grace (``completed``, once its
    time is up) or not (``interrupted``). One whose job its miner has not taken
    (``unserved``) has served nothing: it ends charging nothing, ``cancelled`` once its time
    is up (as its miner's return settles it, when the miner is away)."""
    silence = None
    if booking.status == OPEN:
        silence = current(booking, heartbeat=heartbeat, now=now, policy=policy)
    if silence is not None and silence.interrupted(now):
        money = nothing_served(booking) if unserved else split(booking, silence.stop, 0)
        return Standing("interrupted", money.charged, money.refunded, silence.stop, silence)
    if booking.status == OPEN and now >= booking.end_time:
        if unserved:
            money = nothing_served(booking)
            return Standing("cancelled", 0, money.refunded, booking.end_time, silence)
        money = split(booking, booking.end_time if silence is None else silence.stop, 0)
        return Standing("completed", money.charged, money.refunded, booking.end_time, silence)
    return Standing(
        effective_status(booking, now),
        booking.charged_units,
        booking.refunded_units,
        booking.ended_at,
        silence,
    )
