"""Bids: standing requests filled by ordinary bookings when a matching GPU is free."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from aitbc.auth.principal import Principal
from aitbc.bids.schemas import BidCreate, BidPublic
from aitbc.bookings import service as bookings
from aitbc.config import Settings
from aitbc.errors import Conflict, NotFound
from aitbc.gpus.matching import Constraints, candidates
from aitbc.gpus.naming import model_key
from aitbc.kit.attempt import OutOfFunds, attempt
from aitbc.kit.clock import hours_from_seconds
from aitbc.kit.hours import seconds_from_hours
from aitbc.kit.ids import new_id
from aitbc.kit.money import from_units, to_units
from aitbc.models import Bid
from aitbc.store.conn import SessionConn, drive


def effective_status(bid: Bid, now: datetime) -> str:
    if bid.status == "open" and now >= bid.expires_at:
        return "expired"
    return bid.status


def to_public(bid: Bid, now: datetime) -> BidPublic:
    return BidPublic(
        id=bid.id,
        client_id=bid.client_id,
        provider=bid.provider,
        gpu_model=bid.gpu_model_key,
        capacity=bid.capacity,
        filled=bid.filled,
        price=from_units(bid.price_units),
        duration_hours=hours_from_seconds(bid.duration_seconds),
        notes=bid.notes,
        status=effective_status(bid, now),  # type: ignore[arg-type]
        booking_ids=list(bid.booking_ids or []),
        created_at=bid.created_at,
        expires_at=bid.expires_at,
        closed_at=bid.closed_at,
    )


def try_fill(session: Session, bid: Bid, *, now: datetime, settings: Settings) -> None:
    """Book matching GPUs for the bid's client until it is filled or none is left."""
    constraints = Constraints(
        gpu_model_key=bid.gpu_model_key,
        max_price_units=bid.price_units,
        miner_id=bid.provider,
    )
    wanted = bookings.BookingRequest(
        gpu_id="",
        client_id=bid.client_id,
        seconds=bid.duration_seconds,
        max_price_units=bid.price_units,
    )
    tried: set[str] = set()
    while bid.filled < bid.capacity:
        found = candidates(
            session,
            constraints=constraints,
            now=now,
            heartbeat_timeout=settings.heartbeat_timeout_seconds,
            exclude=tried,
            limit=1,
        )
        if not found:
            break
        gpu_id = found[0]
        tried.add(gpu_id)
        try:
            booked = attempt(
                session,
                lambda: drive(
                    bookings.book(
                        SessionConn(session),
                        replace(wanted, gpu_id=gpu_id),  # noqa: B023 (called at once)
                        now=now,
                        settings=settings,
                    )
                ),
            )
        except OutOfFunds:
            break
        if booked is not None:
            bid.filled += 1
            bid.booking_ids = [*bid.booking_ids, booked.booking.id]
    if bid.filled == bid.capacity:
        bid.status, bid.closed_at = "filled", now
    session.flush()


def create(
    session: Session, *, client_id: str, body: BidCreate, now: datetime, settings: Settings
) -> BidPublic:
    bid = Bid(
        id=new_id("bid"),
        client_id=client_id,
        provider=body.provider,
        gpu_model_key=model_key(body.gpu_model) if body.gpu_model else None,
        capacity=body.capacity,
        filled=0,
        price_units=to_units(body.price),
        duration_seconds=seconds_from_hours(body.duration_hours, settings.max_booking_hours),
        notes=body.notes,
        status="open",
        booking_ids=[],
        created_at=now,
        expires_at=now + timedelta(hours=body.ttl_hours),
    )
    session.add(bid)
    session.flush()
    try_fill(session, bid, now=now, settings=settings)
    return to_public(bid, now)


def expire_old(session: Session, *, now: datetime) -> None:
    session.execute(
        update(Bid)
        .where(Bid.status == "open", Bid.expires_at <= now)
        .values(status="expired", closed_at=Bid.expires_at)
        .execution_options(synchronize_session=False)
    )


def open_bids(session: Session, *, now: datetime, limit: int = 50) -> list[str]:
    query = select(Bid.id).where(Bid.status == "open", Bid.expires_at > now)
    return list(session.scalars(query.order_by(Bid.created_at, Bid.id).limit(limit)))


def fill_one(session: Session, *, bid_id: str, now: datetime, settings: Settings) -> None:
    """The sweeper's unit of work for one bid. Its row lock keeps two sweepers, or a sweep
    and a cancel, from acting on the same bid at once."""
    bid = session.scalars(
        select(Bid)
        .where(Bid.id == bid_id)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    ).first()
    if bid is not None and effective_status(bid, now) == "open":
        try_fill(session, bid, now=now, settings=settings)


def list_bids(
    session: Session, *, principal: Principal, now: datetime, limit: int, offset: int
) -> list[BidPublic]:
    query = select(Bid)
    if principal.role != "admin":
        query = query.where(Bid.client_id == principal.owner_id)
    query = query.order_by(Bid.created_at.desc(), Bid.id.desc()).limit(limit).offset(offset)
    return [to_public(b, now) for b in session.scalars(query)]


def cancel(session: Session, *, bid_id: str, principal: Principal, now: datetime) -> BidPublic:
    bid = session.get(Bid, bid_id, with_for_update=True)
    if bid is None:
        raise NotFound(f"No bid {bid_id!r}.", code="bid_not_found")
    if principal.role != "admin" and bid.client_id != principal.owner_id:
        raise NotFound(f"No bid {bid_id!r}.", code="bid_not_found")
    if effective_status(bid, now) != "open":
        raise Conflict(f"This bid is {effective_status(bid, now)}.", code="bid_closed")
    bid.status, bid.closed_at = "cancelled", now
    session.flush()
    return to_public(bid, now)
