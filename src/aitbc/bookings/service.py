"""Booking a GPU, releasing it early and extending it: each one transaction that holds the
GPU's row lock, so requests for one GPU are serialised across server processes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from aitbc.accounts.ledger import Leg, post
from aitbc.bookings import lifecycle
from aitbc.bookings.schemas import BookingPublic, BookRequest, ReleaseResult
from aitbc.config import Settings
from aitbc.deps import Principal
from aitbc.errors import Conflict, Forbidden, Invalid, NotFound
from aitbc.kit.clock import hours_from_seconds
from aitbc.kit.ids import new_id
from aitbc.kit.money import divide_units, from_units, to_units
from aitbc.models import Booking, Gpu, Miner, Order
from aitbc.models.account import ESCROW, MAIN
from aitbc.models.booking import OPEN
from aitbc.pricing.service import redeem_quote

MAX_RESERVATION_AHEAD = timedelta(days=90)
# A start this far in the past is taken as "now" (client clocks drift).
START_TOLERANCE = timedelta(minutes=5)


def seconds_from_hours(hours: Decimal, settings: Settings) -> int:
    if hours > settings.max_booking_hours:
        raise Invalid(
            f"duration is at most {settings.max_booking_hours} hours.", code="duration_too_long"
        )
    seconds = int((hours * 3600).to_integral_value(rounding=ROUND_HALF_UP))
    if seconds < 1:
        raise Invalid("duration must be at least one second.", code="duration_too_short")
    return seconds


def cost_units(price_units: int, seconds: int) -> int:
    return divide_units(price_units * seconds, 3600)


def lock_gpu(session: Session, gpu_id: str) -> Gpu:
    gpu = session.get(Gpu, gpu_id, with_for_update=True, populate_existing=True)
    if gpu is None:
        raise NotFound(f"No GPU {gpu_id!r}.", code="gpu_not_found")
    return gpu


def _check_bookable(session: Session, gpu: Gpu, now: datetime, settings: Settings) -> None:
    if gpu.delisted_at is not None:
        raise Conflict("This GPU has been delisted.", code="gpu_delisted")
    miner = session.get(Miner, gpu.miner_id)
    assert miner is not None
    cutoff = now - timedelta(seconds=settings.heartbeat_timeout_seconds)
    if miner.reported_status == "offline" or miner.last_heartbeat < cutoff:
        raise Conflict("This GPU's miner is offline.", code="gpu_offline")


def _overlapping(
    session: Session, gpu_id: str, start: datetime, end: datetime, exclude: str | None = None
) -> Booking | None:
    query = select(Booking).where(
        Booking.gpu_id == gpu_id,
        Booking.status == OPEN,
        Booking.start_time < end,
        Booking.end_time > start,
    )
    if exclude is not None:
        query = query.where(Booking.id != exclude)
    return session.scalars(query.order_by(Booking.start_time).limit(1)).first()


def _refuse_overlap(other: Booking, now: datetime) -> None:
    if other.start_time <= now < other.end_time:
        raise Conflict(f"This GPU is booked until {other.end_time.isoformat()}.", code="gpu_booked")
    raise Conflict(
        f"The window overlaps a reservation from {other.start_time.isoformat()} "
        f"to {other.end_time.isoformat()}.",
        code="booking_overlap",
    )


def book(
    session: Session,
    *,
    gpu_id: str,
    body: BookRequest,
    client_id: str,
    now: datetime,
    settings: Settings,
) -> BookingPublic:
    if body.gpu_id is not None and body.gpu_id != gpu_id:
        raise Invalid("gpu_id in the body differs from the URL.", code="gpu_id_mismatch")
    seconds = seconds_from_hours(body.duration_hours, settings)
    gpu = lock_gpu(session, gpu_id)
    lifecycle.settle_gpu(session, gpu_id=gpu_id, now=now, fee_bps=settings.platform_fee_bps)
    _check_bookable(session, gpu, now, settings)

    start = now if body.start_time is None else body.start_time
    if start < now - START_TOLERANCE:
        raise Invalid("start_time is in the past.", code="start_in_past")
    if start > now + MAX_RESERVATION_AHEAD:
        raise Invalid("start_time is more than 90 days ahead.", code="start_too_far")
    start = max(start, now).astimezone(UTC)
    end = start + timedelta(seconds=seconds)
    other = _overlapping(session, gpu_id, start, end)
    if other is not None:
        _refuse_overlap(other, now)

    if body.quote_id is None:
        price = gpu.effective_price_units
    else:
        price = redeem_quote(
            session, quote_id=body.quote_id, gpu_id=gpu_id, client_id=client_id, now=now
        )
    if body.max_price_per_hour is not None and price > to_units(body.max_price_per_hour):
        raise Conflict(
            f"The price is {from_units(price)} per hour, above your limit of "
            f"{body.max_price_per_hour}.",
            code="price_above_limit",
        )
    total = cost_units(price, seconds)
    booking = Booking(
        id=new_id("bkg"),
        gpu_id=gpu_id,
        client_id=client_id,
        miner_id=gpu.miner_id,
        job_id=body.job_id,
        status=OPEN,
        start_time=start,
        end_time=end,
        booked_seconds=seconds,
        price_units=price,
        total_units=total,
        charged_units=0,
        refunded_units=0,
        created_at=now,
    )
    session.add(booking)
    session.flush()
    post(
        session,
        kind="booking_escrow",
        legs=[Leg(client_id, MAIN, -total), Leg(client_id, ESCROW, total)],
        now=now,
        booking_id=booking.id,
    )
    order = Order(
        id=new_id("ord"),
        booking_id=booking.id,
        client_id=client_id,
        miner_id=gpu.miner_id,
        gpu_id=gpu_id,
        job_id=body.job_id,
        status="pending" if start > now else "active",
        created_at=now,
    )
    session.add(order)
    session.flush()
    lifecycle.record_event(session, order, order.status, now if start > now else start)
    gpu.total_bookings += 1
    session.flush()
    return to_public(booking, order.id, now)


def _releasable(session: Session, gpu_id: str, principal: Principal) -> Booking:
    open_bookings = session.scalars(
        select(Booking)
        .where(Booking.gpu_id == gpu_id, Booking.status == OPEN)
        .order_by(Booking.start_time)
    ).all()
    if not open_bookings:
        raise Conflict("This GPU has no booking to release.", code="nothing_to_release")
    if principal.role == "admin":
        return open_bookings[0]
    mine = [b for b in open_bookings if b.client_id == principal.owner_id]
    if not mine:
        raise Forbidden("The booking on this GPU is somebody else's.", code="not_booking_owner")
    return mine[0]


def _release(
    session: Session, booking: Booking, *, now: datetime, settings: Settings
) -> ReleaseResult:
    closed = lifecycle.close(session, booking, at=now, now=now, fee_bps=settings.platform_fee_bps)
    if not closed:
        raise Conflict("This booking has already ended.", code="nothing_to_release")
    order_id = session.scalar(select(Order.id).where(Order.booking_id == booking.id))
    assert order_id is not None
    public = to_public(booking, order_id, now)
    return ReleaseResult(**public.model_dump(), used_seconds=lifecycle.used_seconds(booking, now))


def release_gpu(
    session: Session, *, gpu_id: str, principal: Principal, now: datetime, settings: Settings
) -> ReleaseResult:
    lock_gpu(session, gpu_id)
    lifecycle.settle_gpu(session, gpu_id=gpu_id, now=now, fee_bps=settings.platform_fee_bps)
    booking = _releasable(session, gpu_id, principal)
    return _release(session, booking, now=now, settings=settings)


def _owned_booking_locked(
    session: Session, booking_id: str, principal: Principal, now: datetime, settings: Settings
) -> Booking:
    gpu_id = session.scalar(select(Booking.gpu_id).where(Booking.id == booking_id))
    if gpu_id is None:
        raise NotFound(f"No booking {booking_id!r}.", code="booking_not_found")
    lock_gpu(session, gpu_id)
    lifecycle.settle_gpu(session, gpu_id=gpu_id, now=now, fee_bps=settings.platform_fee_bps)
    booking = session.get(Booking, booking_id, populate_existing=True)
    assert booking is not None
    if principal.role != "admin" and booking.client_id != principal.owner_id:
        raise Forbidden("This booking is somebody else's.", code="not_booking_owner")
    return booking


def release_booking(
    session: Session, *, booking_id: str, principal: Principal, now: datetime, settings: Settings
) -> ReleaseResult:
    booking = _owned_booking_locked(session, booking_id, principal, now, settings)
    if booking.status != OPEN:
        raise Conflict("This booking has already ended.", code="nothing_to_release")
    return _release(session, booking, now=now, settings=settings)


def extend(
    session: Session,
    *,
    booking_id: str,
    hours: Decimal,
    principal: Principal,
    now: datetime,
    settings: Settings,
) -> BookingPublic:
    booking = _owned_booking_locked(session, booking_id, principal, now, settings)
    if booking.status != OPEN:
        raise Conflict("Only a booking that has not ended can be extended.", code="booking_ended")
    extra_seconds = seconds_from_hours(hours, settings)
    if Decimal(booking.booked_seconds + extra_seconds) / 3600 > settings.max_booking_hours:
        raise Invalid(
            f"A booking lasts at most {settings.max_booking_hours} hours.",
            code="duration_too_long",
        )
    new_end = booking.end_time + timedelta(seconds=extra_seconds)
    other = _overlapping(session, booking.gpu_id, booking.end_time, new_end, exclude=booking.id)
    if other is not None:
        raise Conflict(
            f"Extending would overlap the reservation from {other.start_time.isoformat()}.",
            code="booking_overlap",
        )
    extra = cost_units(booking.price_units, extra_seconds)
    post(
        session,
        kind="booking_extension",
        legs=[Leg(booking.client_id, MAIN, -extra), Leg(booking.client_id, ESCROW, extra)],
        now=now,
        booking_id=booking.id,
    )
    booking.end_time = new_end
    booking.booked_seconds += extra_seconds
    booking.total_units += extra
    session.flush()
    order_id = session.scalar(select(Order.id).where(Order.booking_id == booking.id))
    assert order_id is not None
    return to_public(booking, order_id, now)


def to_public(booking: Booking, order_id: str, now: datetime) -> BookingPublic:
    status = lifecycle.effective_status(booking, now)
    return BookingPublic(
        booking_id=booking.id,
        order_id=order_id,
        gpu_id=booking.gpu_id,
        client_id=booking.client_id,
        miner_id=booking.miner_id,
        job_id=booking.job_id,
        status=status,  # type: ignore[arg-type]
        start_time=booking.start_time,
        end_time=booking.end_time,
        duration_hours=hours_from_seconds(booking.booked_seconds),
        price_per_hour=from_units(booking.price_units),
        total_cost=from_units(booking.total_units),
        amount_charged=from_units(lifecycle.charged_units(booking, now)),
        refund=from_units(booking.refunded_units),
        created_at=booking.created_at,
        ended_at=lifecycle.ended_at(booking, now),
    )


def get_booking(
    session: Session, *, booking_id: str, principal: Principal, now: datetime
) -> BookingPublic:
    row = session.execute(
        select(Booking, Order.id)
        .join(Order, Order.booking_id == Booking.id)
        .where(Booking.id == booking_id)
    ).first()
    if row is None:
        raise NotFound(f"No booking {booking_id!r}.", code="booking_not_found")
    booking, order_id = row
    visible = principal.role == "admin" or principal.owner_id in (
        booking.client_id,
        booking.miner_id,
    )
    if not visible:
        raise NotFound(f"No booking {booking_id!r}.", code="booking_not_found")
    return to_public(booking, order_id, now)


def list_bookings(
    session: Session, *, principal: Principal, now: datetime, limit: int, offset: int
) -> list[BookingPublic]:
    query = select(Booking, Order.id).join(Order, Order.booking_id == Booking.id)
    if principal.role == "miner":
        query = query.where(Booking.miner_id == principal.owner_id)
    elif principal.role == "client":
        query = query.where(Booking.client_id == principal.owner_id)
    query = query.order_by(Booking.created_at.desc(), Booking.id.desc()).limit(limit).offset(offset)
    return [to_public(b, order_id, now) for b, order_id in session.execute(query)]
