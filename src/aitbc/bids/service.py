"""Bids: standing requests filled by ordinary bookings when a matching GPU is free."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from aitbc.auth.principal import Principal
from aitbc.bookings import service as bookings
from aitbc.config import Settings
from aitbc.errors import Conflict, NotFound
from aitbc.events.log import emit
from aitbc.gpus.matching import Constraints
from aitbc.gpus.naming import wanted_key
from aitbc.kit.ids import new_id
from aitbc.kit.money import units_text
from aitbc.store.conn import Conn
from aitbc.store.query import Query, insert_into
from aitbc.store.records import FromRow
from aitbc.store.rounds import Rounds
from aitbc.store.values import iso

_COLUMNS = (
    "id, client_id, provider, gpu_model_key, capacity, filled, price_units, duration_seconds, "
    "notes, status, booking_ids, created_at, expires_at, closed_at"
)
_INSERT = insert_into("bids", _COLUMNS.split(", "))
_SAVE = Query(
    "UPDATE bids SET filled = $2, booking_ids = $3, status = $4, closed_at = $5 WHERE id = $1"
)
_EXPIRE = Query(
    "UPDATE bids SET status = 'expired', closed_at = expires_at "
    "WHERE status = 'open' AND expires_at <= $1 RETURNING *"
)
_OPEN = Query(
    "SELECT id, created_at FROM bids WHERE status = 'open' AND expires_at > $1 "
    "AND (created_at, id) > ($2, $3) ORDER BY created_at, id LIMIT $4"
)
_LOCKED = Query(f"SELECT {_COLUMNS} FROM bids WHERE id = $1 FOR UPDATE SKIP LOCKED")
_LOCKED_WAITING = Query(f"SELECT {_COLUMNS} FROM bids WHERE id = $1 FOR UPDATE")
_ALL = Query(f"SELECT {_COLUMNS} FROM bids ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2")
_CLIENTS = Query(
    f"SELECT {_COLUMNS} FROM bids WHERE client_id = $3 "
    "ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2"
)


@dataclass(slots=True)
class Bid(FromRow):
    id: str
    client_id: str
    provider: str | None
    gpu_model_key: str | None
    capacity: int
    filled: int
    price_units: int
    duration_seconds: int
    notes: str | None
    status: str
    booking_ids: list[str]
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None

    async def save(self, conn: Conn) -> None:
        await conn.execute(
            _SAVE, self.id, self.filled, json.dumps(self.booking_ids), self.status, self.closed_at
        )


def effective_status(bid: Bid, now: datetime) -> str:
    if bid.status == "open" and now >= bid.expires_at:
        return "expired"
    return bid.status


@dataclass(frozen=True, slots=True)
class BidRequest:
    """What a client asks for: up to ``capacity`` GPUs (of one model, one miner) at most
    ``price_units`` an hour, each for ``seconds``, while the bid lives."""

    client_id: str
    capacity: int
    price_units: int
    seconds: int
    ttl: timedelta
    provider: str | None = None
    gpu_model: str | None = None
    notes: str | None = None


async def try_fill(conn: Conn, bid: Bid, *, now: datetime, settings: Settings) -> None:
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
        try:
            booked = await bookings.book_first(
                conn, constraints, wanted, now=now, settings=settings, tried=tried
            )
        except bookings.OutOfFunds:
            break
        if booked is None:
            break
        bid.filled += 1
        bid.booking_ids = [*bid.booking_ids, booked.booking.id]
    if bid.filled == bid.capacity:
        bid.status, bid.closed_at = "filled", now
        _announce(conn, "filled", bid, now)
    await bid.save(conn)


async def create(conn: Conn, asked: BidRequest, *, now: datetime, settings: Settings) -> Bid:
    bid = Bid(
        id=new_id("bid"),
        client_id=asked.client_id,
        provider=asked.provider,
        gpu_model_key=wanted_key(asked.gpu_model),
        capacity=asked.capacity,
        filled=0,
        price_units=asked.price_units,
        duration_seconds=asked.seconds,
        notes=asked.notes,
        status="open",
        booking_ids=[],
        created_at=now,
        expires_at=now + asked.ttl,
        closed_at=None,
    )
    values = [getattr(bid, name) for name in bid.__slots__]
    values[bid.__slots__.index("booking_ids")] = "[]"
    await conn.execute(_INSERT, *values)
    await try_fill(conn, bid, now=now, settings=settings)
    return bid


async def expire_old(conn: Conn, *, now: datetime) -> None:
    for row in await conn.fetch(_EXPIRE, now):
        _announce(conn, "expired", Bid.from_row(row), now)


def _announce(conn: Conn, kind: str, bid: Bid, now: datetime) -> None:
    emit(
        conn,
        f"bid.{kind}",
        subject_id=bid.id,
        data={
            "bid_id": bid.id,
            "status": bid.status,
            "capacity": bid.capacity,
            "filled": bid.filled,
            "price_per_hour": units_text(bid.price_units),
            "booking_ids": bid.booking_ids,
            "created_at": iso(bid.created_at),
            "expires_at": iso(bid.expires_at),
            "closed_at": iso(bid.closed_at),
        },
        owners=(bid.client_id,),
        at=now,
    )


def open_bids() -> Rounds:
    """The open bids a sweep tries, a page at a time (``Rounds``): bids that no GPU can fill
    never keep the others from being tried."""
    return Rounds(_OPEN)


async def fill_one(conn: Conn, *, bid_id: str, now: datetime, settings: Settings) -> None:
    """The sweeper's unit of work for one bid. Its row lock keeps two sweepers, or a sweep
    and a cancel, from acting on the same bid at once."""
    row = await conn.fetchrow(_LOCKED, bid_id)
    if row is not None:
        bid = Bid.from_row(row)
        if effective_status(bid, now) == "open":
            await try_fill(conn, bid, now=now, settings=settings)


async def list_bids(conn: Conn, *, principal: Principal, limit: int, offset: int) -> list[Bid]:
    if principal.role == "admin":
        rows = await conn.fetch(_ALL, limit, offset)
    else:
        rows = await conn.fetch(_CLIENTS, limit, offset, principal.owner_id)
    return [Bid.from_row(row) for row in rows]


async def cancel(conn: Conn, *, bid_id: str, principal: Principal, now: datetime) -> Bid:
    row = await conn.fetchrow(_LOCKED_WAITING, bid_id)
    if row is None:
        raise NotFound(f"No bid {bid_id!r}.", code="bid_not_found")
    bid = Bid.from_row(row)
    if principal.role != "admin" and bid.client_id != principal.owner_id:
        raise NotFound(f"No bid {bid_id!r}.", code="bid_not_found")
    if effective_status(bid, now) != "open":
        raise Conflict(f"This bid is {effective_status(bid, now)}.", code="bid_closed")
    bid.status, bid.closed_at = "cancelled", now
    await bid.save(conn)
    return bid
