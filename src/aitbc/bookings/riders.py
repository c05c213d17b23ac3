"""The jobs that ride on bookings, as the bookings see them: a port the jobs domain serves.

A job's assignment books its GPU, so the jobs domain sits above the bookings and the
bookings never import it. When a booking ends early (released, preempted, its miner gone
for good) or runs out before its miner took the job, its job must be requeued, failed or
cancelled in the same transaction, under the job's row lock; that is the jobs domain's rule, reached
through this port. The app wires the one implementation (``aitbc.jobs.riders``) at start;
every call runs in the caller's transaction."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from aitbc.bookings import lifecycle
from aitbc.bookings.records import BookingRecord
from aitbc.config import Policy
from aitbc.models.booking import OPEN
from aitbc.store.conn import Conn


@dataclass(frozen=True, slots=True)
class Held:
    """A booking's live job (assigned to its GPU or running there)."""

    job_id: str
    waiting: bool  # its miner has not taken it yet: the booking has not served it
    locked: bool  # False: another transaction (a poll, a result) holds it and sees to it
    expires_at: datetime  # until when it may wait for a GPU


class Riders(Protocol):
    async def client_of(self, conn: Conn, job_id: str) -> str | None:
        """The client who submitted the job, None for no such job."""
        ...

    async def hold(self, conn: Conn, booking: BookingRecord) -> Held | None:
        """The booking's live job, its row locked unless another transaction holds it; None
        when the booking serves no live job."""
        ...

    async def see(self, conn: Conn, booking: BookingRecord) -> Held | None:
        """The booking's live job as it stands, without a lock (``locked`` False)."""
        ...

    async def booking_ended(
        self, conn: Conn, held: Held, booking: BookingRecord, *, status: str, now: datetime
    ) -> None:
        """The booking carrying the held (and locked) job ended as ``status`` at ``now``."""
        ...

    async def booking_released(
        self, conn: Conn, held: Held, booking: BookingRecord, *, now: datetime
    ) -> None:
        """The booking carrying the held (and locked) job was released by its client or an
        admin at ``now``."""
        ...


_riders: Riders | None = None


def serve(riders: Riders) -> None:
    """Wire the jobs domain's side of the port (the app does, at start)."""
    global _riders
    _riders = riders


def riders() -> Riders:
    if _riders is None:
        raise RuntimeError("No jobs domain serves the bookings: call bookings.riders.serve first.")
    return _riders


async def client_of(conn: Conn, job_id: str) -> str | None:
    return await riders().client_of(conn, job_id)


async def hold(conn: Conn, booking: BookingRecord) -> Held | None:
    """The booking's live job (see Riders.hold), without a query for a booking of no job."""
    return None if booking.job_id is None else await riders().hold(conn, booking)


async def see(conn: Conn, booking: BookingRecord) -> Held | None:
    """The booking's live job, read without a lock (what a release would find)."""
    return None if booking.job_id is None else await riders().see(conn, booking)


async def mark_waiting(
    conn: Conn, bookings: Iterable[BookingRecord], *, now: datetime, policy: Policy
) -> None:
    """Mark the bookings that read differently when their job still waits for its miner
    (``lifecycle.standing``'s unserved): open job bookings whose time is up or whose miner
    is silent. One look-up each, for those only."""
    for booking in bookings:
        if booking.status != OPEN or booking.job_id is None:
            continue
        silent = lifecycle.current(
            booking, heartbeat=booking.miner_heartbeat, now=now, policy=policy
        )
        if now >= booking.end_time or silent is not None:
            held = await see(conn, booking)
            booking.job_waiting = held is not None and held.waiting


async def ended(
    conn: Conn, held: Held | None, booking: BookingRecord, *, status: str, now: datetime
) -> None:
    """Tell the jobs domain that the booking ended, when it carried a job this transaction
    holds."""
    if held is not None and held.locked:
        await riders().booking_ended(conn, held, booking, status=status, now=now)


async def released(conn: Conn, held: Held | None, booking: BookingRecord, *, now: datetime) -> None:
    """Tell the jobs domain that the booking was released, when it carried a job this
    transaction holds."""
    if held is not None and held.locked:
        await riders().booking_released(conn, held, booking, now=now)
