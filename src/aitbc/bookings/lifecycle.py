"""Where a booking is in its life, derived from its window and the clock, and how it ends.

Closing is exactly-once: a conditional UPDATE moves the booking out of ``open``, and only the
transaction whose update matched posts the money."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from math import ceil

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from aitbc.accounts.ledger import Leg, post
from aitbc.kit.money import divide_units, fee_units
from aitbc.models import Booking, Gpu, Job, Order, OrderEvent
from aitbc.models.account import ESCROW, MAIN, PLATFORM_OWNER
from aitbc.models.booking import OPEN


def effective_status(booking: Booking, now: datetime) -> str:
    """pending / active / completed / released / cancelled, whatever has been settled."""
    if booking.status != OPEN:
        return booking.status
    if now >= booking.end_time:
        return "completed"
    if now >= booking.start_time:
        return "active"
    return "pending"


def charged_units(booking: Booking, now: datetime) -> int:
    """Charged so far: the whole total once the time is up, settled or not."""
    if booking.status == OPEN and now >= booking.end_time:
        return booking.total_units
    return booking.charged_units


def ended_at(booking: Booking, now: datetime) -> datetime | None:
    """When the booking ended: as recorded, or its end time once the time is up."""
    if booking.ended_at is not None:
        return booking.ended_at
    return booking.end_time if effective_status(booking, now) == "completed" else None


def used_seconds(booking: Booking, at: datetime) -> int:
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


def split(booking: Booking, at: datetime, fee_bps: int) -> Split:
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


def record_event(session: Session, order: Order, status: str, at: datetime) -> None:
    order.status = status
    session.add(OrderEvent(order_id=order.id, status=status, at=at))


def close(
    session: Session,
    booking: Booking,
    *,
    at: datetime,
    now: datetime,
    fee_bps: int,
    full_refund: bool = False,
) -> bool:
    """End ``booking`` as of ``at`` (its end time when it ran out). ``full_refund`` is for
    the provider's failure: nothing is charged. Returns False when another transaction
    closed it first."""
    if full_refund:
        money = Split(charged=0, refunded=booking.total_units, fee=0)
        status, ended = "cancelled", min(at, booking.end_time)
    else:
        money = split(booking, at, fee_bps)
        if at >= booking.end_time:
            status, ended = "completed", booking.end_time
        elif at <= booking.start_time:
            status, ended = "cancelled", at
        else:
            status, ended = "released", at
    matched = session.execute(
        update(Booking)
        .where(Booking.id == booking.id, Booking.status == OPEN)
        .values(
            status=status,
            charged_units=money.charged,
            refunded_units=money.refunded,
            ended_at=ended,
        )
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if matched != 1:
        return False
    session.refresh(booking)
    post(
        session,
        kind=f"booking_{status}",
        legs=[
            Leg(booking.client_id, ESCROW, -booking.total_units),
            Leg(booking.miner_id, MAIN, money.provider),
            Leg(PLATFORM_OWNER, MAIN, money.fee),
            Leg(booking.client_id, MAIN, money.refunded),
        ],
        now=now,
        booking_id=booking.id,
    )
    order = session.scalars(select(Order).where(Order.booking_id == booking.id)).one()
    if order.status == "pending" and ended > booking.start_time:
        record_event(session, order, "active", booking.start_time)
    record_event(session, order, status, ended)
    order.closed_at = ended
    session.flush()
    return True


def _requeue_unstarted_job(session: Session, booking: Booking) -> bool:
    """A job booking that ran out before the miner ever took the job was not served: the
    client pays nothing and the job goes back to the queue (until its time-to-live)."""
    job = session.scalars(
        select(Job).where(Job.booking_id == booking.id, Job.state == "assigned").with_for_update()
    ).first()
    if job is None:
        return False
    job.state = "queued"
    job.gpu_id = job.miner_id = job.booking_id = None
    job.assigned_at = None
    return True


def settle_gpu(session: Session, *, gpu_id: str, now: datetime, fee_bps: int) -> int:
    """Complete every booking on a GPU whose time is up, and record the start of those that
    have begun. The caller holds the GPU's lock."""
    started = session.execute(
        select(Booking, Order)
        .join(Order, Order.booking_id == Booking.id)
        .where(Booking.gpu_id == gpu_id, Booking.status == OPEN, Booking.start_time <= now)
        .order_by(Booking.end_time)
    ).all()
    settled = 0
    for booking, order in started:
        if booking.end_time <= now:
            unserved = _requeue_unstarted_job(session, booking)
            settled += close(
                session,
                booking,
                at=booking.end_time,
                now=now,
                fee_bps=fee_bps,
                full_refund=unserved,
            )
        elif order.status == "pending":
            record_event(session, order, "active", booking.start_time)
    session.flush()
    return settled


def gpus_to_settle(session: Session, *, now: datetime, limit: int = 500) -> list[str]:
    """GPUs with a booking whose time is up, or a reservation that has begun."""
    due = select(Booking.gpu_id).where(Booking.status == OPEN, Booking.end_time <= now)
    started = (
        select(Booking.gpu_id)
        .join(Order, Order.booking_id == Booking.id)
        .where(Order.status == "pending", Booking.status == OPEN, Booking.start_time <= now)
    )
    found = set(session.scalars(due.distinct().limit(limit)))
    found.update(session.scalars(started.distinct().limit(limit)))
    return sorted(found)


def settle_one(session: Session, *, gpu_id: str, now: datetime, fee_bps: int) -> int:
    """The sweeper's unit of work: one GPU, skipped when a request holds it (that request
    settles it itself)."""
    locked = session.scalar(
        select(Gpu.id).where(Gpu.id == gpu_id).with_for_update(skip_locked=True)
    )
    return 0 if locked is None else settle_gpu(session, gpu_id=gpu_id, now=now, fee_bps=fee_bps)
