"""Booking endpoints. Each write is one transaction on the store (http.idempotency runs it
once per Idempotency-Key); what must follow its commit the service registers in the unit of
work (bookings.follow_up), and the store runs it before the response is sent."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from decimal import Decimal
from functools import partial
from math import ceil
from typing import Any, TypeVar

import orjson
from fastapi import Request, Response
from fastapi.types import DecoratedCallable
from pydantic import BaseModel

from aitbc.auth.principal import Principal
from aitbc.bookings import best, gangs, records, service
from aitbc.bookings.schemas import (
    BidChange,
    BookBestRequest,
    BookingListQuery,
    BookingPublic,
    BookRequest,
    Explanation,
    ExtendRequest,
    GangPublic,
    ReleaseResult,
)
from aitbc.config import Policy, Settings
from aitbc.errors import Invalid
from aitbc.gpus.naming import wanted_key
from aitbc.http import idempotency
from aitbc.http.deps import API_KEY_PARAMETER, caller_with_role
from aitbc.http.errors import error_responses
from aitbc.http.params import documented, parse_query
from aitbc.http.routing import APIRouter
from aitbc.kit.hours import seconds_from_hours
from aitbc.kit.money import maybe_units, to_units
from aitbc.store.conn import Conn

gpu_router = APIRouter(prefix="/v1/marketplace/gpu", tags=["bookings"])
market_router = APIRouter(prefix="/v1/marketplace", tags=["bookings"])
router = APIRouter(prefix="/v1/bookings", tags=["bookings"])
gang_router = APIRouter(prefix="/v1/gangs", tags=["bookings"])

_WRITE_HEADERS = (API_KEY_PARAMETER, idempotency.PARAMETER)


def _write(
    on: APIRouter, path: str, answer: Any, *errors: int, **more: Any
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """A route that changes bookings: a POST answered in ``answer``'s shape, whose endpoint
    reads its API key and Idempotency-Key headers itself (so they are documented here), and
    may answer ``errors``."""
    return on.post(
        path,
        response_model=answer,
        responses=error_responses(*errors),
        openapi_extra=documented(headers=_WRITE_HEADERS),
        **more,
    )


def _read(
    on: APIRouter, path: str, answer: Any, *errors: int, query: type[BaseModel] | None = None
) -> Callable[[DecoratedCallable], DecoratedCallable]:
    """A route that reads bookings: a GET answered in ``answer``'s shape, whose endpoint reads
    its API key (and the ``query`` model's parameters) itself."""
    return on.get(
        path,
        response_model=answer,
        responses=error_responses(*errors),
        openapi_extra=documented(query, headers=(API_KEY_PARAMETER,)),
    )


_JSON = "application/json"
T = TypeVar("T")


@_write(gpu_router, "/{gpu_id}/book", BookingPublic, 401, 402, 403, 404, 409, 422, status_code=201)
async def book_gpu(gpu_id: str, body: BookRequest, request: Request) -> Response:
    """Book a GPU now or reserve it for later; the cost moves into escrow"""
    principal = await caller_with_role(request, "client")
    state = request.app.state
    settings, now = state.settings, state.clock.now()
    if body.gpu_id is not None and body.gpu_id != gpu_id:
        raise Invalid("The body's gpu_id differs from the URL's.", code="gpu_id_mismatch")
    wanted = service.BookingRequest(
        gpu_id=gpu_id,
        client_id=principal.owner_id,
        seconds=seconds_from_hours(body.duration_hours, settings.max_booking_hours),
        start=body.start_time,
        job_id=body.job_id,
        max_price_units=maybe_units(body.max_price_per_hour),
        quote_id=body.quote_id,
        rental_type=body.rental_type,
        bid_units=rental_bid(body.rental_type, body.bid_per_hour, body.quote_id),
    )

    async def action(conn: Conn) -> bytes:
        done = await service.book(conn, wanted, now=now, settings=settings, busy=state.busy_gpus)
        return done.shown.encode()  # records.public, as its booking.created event has it

    return await idempotency.write_once(
        request, state.store, principal.owner_id, body, now, action, 201
    )


def rental_bid(rental_type: str, bid: Decimal | None, quote_id: str | None = None) -> int | None:
    """The bid in units, checked against the rental type: an interruptible booking needs
    one, an on-demand booking (or one at a quoted price) takes none."""
    if rental_type == "interruptible" and bid is None:
        raise Invalid("An interruptible booking needs bid_per_hour.", code="bid_required")
    if rental_type == "on_demand" and bid is not None:
        raise Invalid(
            "bid_per_hour is for interruptible bookings (rental_type=interruptible).",
            code="bid_needs_interruptible",
        )
    if bid is not None and quote_id is not None:
        raise Invalid("A quote is an on-demand price; bid without one.", code="quote_with_bid")
    return maybe_units(bid)


_JOB_ENDS_TOO = (
    "A booking made for a job ends the job with it, as cancelling the job does: the job is "
    "cancelled, and nothing is charged when its miner had not taken it yet."
)


Change = Callable[[Conn, datetime, Settings], Awaitable[bytes]]


async def _owner(request: Request) -> Principal:
    """Who may change bookings: their client, or an admin."""
    return await caller_with_role(request, "client", "admin")


async def _change(
    request: Request, principal: Principal, body: BaseModel | None, change: Change
) -> Response:
    """A change to bookings: one write transaction, once per Idempotency-Key, in which
    ``change`` makes it and gives the answer's body."""
    state = request.app.state
    settings, now = state.settings, state.clock.now()

    async def action(conn: Conn) -> bytes:
        return await change(conn, now, settings)

    return await idempotency.write_once(request, state.store, principal.owner_id, body, now, action)


async def _extend(
    request: Request,
    body: ExtendRequest,
    extend: Callable[..., Awaitable[T]],
    public: Callable[[T, datetime, Policy], dict[str, Any]],
) -> Response:
    """Add time by ``extend`` (to a booking or a gang), answered in the ``public`` shape. The
    time, and the longest a booking may then last, are checked before the write and its
    Idempotency-Key, as a booking's own time is."""
    principal = await _owner(request)
    most = request.app.state.settings.max_booking_hours
    seconds, max_seconds = seconds_from_hours(body.hours, most), seconds_from_hours(most, most)

    async def change(conn: Conn, now: datetime, settings: Settings) -> bytes:
        extended = await extend(
            conn, seconds=seconds, max_seconds=max_seconds, principal=principal, now=now,
            fee_bps=settings.platform_fee_bps, policy=settings.outage_policy,
        )  # fmt: skip
        return orjson.dumps(public(extended, now, settings.outage_policy))

    return await _change(request, principal, body, change)


async def _release(
    request: Request, release: Callable[..., Awaitable[service.Released]], **target: str
) -> Response:
    """End a booking by ``release`` (the booking named by ``target``)."""
    principal = await _owner(request)

    async def change(conn: Conn, now: datetime, settings: Settings) -> bytes:
        policy = settings.outage_policy
        done = await release(
            conn, **target, principal=principal, now=now, fee_bps=settings.platform_fee_bps,
            policy=policy,
        )  # fmt: skip
        used = {"used_seconds": done.used_seconds}
        return orjson.dumps(records.public(done.booking, now, policy) | used)

    return await _change(request, principal, None, change)


@_write(
    gpu_router, "/{gpu_id}/release", ReleaseResult, 401, 403, 404, 409, description=_JOB_ENDS_TOO
)
async def release_gpu(gpu_id: str, request: Request) -> Response:
    """End your booking on this GPU early: used time charged, the rest refunded"""
    return await _release(request, service.release_gpu, gpu_id=gpu_id)


@_read(router, "", list[BookingPublic], 401, 422, query=BookingListQuery)
async def list_bookings(request: Request) -> Response:
    """Your bookings (a miner: bookings on its GPUs; an admin: all)"""
    principal = await caller_with_role(request, "client", "miner", "admin")
    params = parse_query(BookingListQuery, request)
    state = request.app.state
    now, policy = state.clock.now(), state.settings.outage_policy
    async with state.store.read() as conn:
        found = await service.list_bookings(
            conn,
            principal=principal,
            limit=params.limit,
            offset=params.offset,
            now=now,
            policy=policy,
        )
    return Response(orjson.dumps([records.public(b, now, policy) for b in found]), media_type=_JSON)


@_read(router, "/{booking_id}", BookingPublic, 401, 404)
async def get_booking(booking_id: str, request: Request) -> Response:
    """One booking"""
    principal = await caller_with_role(request, "client", "miner", "admin")
    state = request.app.state
    now, policy = state.clock.now(), state.settings.outage_policy
    async with state.store.read() as conn:
        booking = await service.get_booking(
            conn, booking_id=booking_id, principal=principal, now=now, policy=policy
        )
    body = records.public(booking, now, policy)
    return Response(orjson.dumps(body), media_type=_JSON)


@_write(router, "/{booking_id}/extend", BookingPublic, 401, 402, 403, 404, 409, 422)
async def extend_booking(booking_id: str, body: ExtendRequest, request: Request) -> Response:
    """Add time to a booking (one of a gang: every booking of the gang); the extra cost moves into
    escrow"""
    extend = partial(gangs.extend_booking, booking_id=booking_id)
    return await _extend(request, body, extend, records.public)


@_write(
    router, "/{booking_id}/release", ReleaseResult, 401, 403, 404, 409, description=_JOB_ENDS_TOO
)
async def release_booking(booking_id: str, request: Request) -> Response:
    """End a booking early, or cancel a reservation that has not started (one of a gang: the whole
    gang)"""
    return await _release(request, gangs.release_booking, booking_id=booking_id)


@_write(router, "/{booking_id}/bid", BookingPublic, 401, 402, 403, 404, 409, 422)
async def change_bid(booking_id: str, body: BidChange, request: Request) -> Response:
    """Raise an interruptible booking's bid; the rest of its time is paid at the new bid"""
    principal = await _owner(request)

    async def change(conn: Conn, now: datetime, settings: Settings) -> bytes:
        policy = settings.outage_policy
        changed = await service.change_bid(
            conn, booking_id=booking_id, bid_units=to_units(body.bid_per_hour),
            principal=principal, now=now, policy=policy,
        )  # fmt: skip
        return orjson.dumps(records.public(changed, now, policy))

    return await _change(request, principal, body, change)


@market_router.post(
    "/book",
    status_code=201,
    response_model=BookingPublic | GangPublic,
    responses={
        200: {"model": Explanation, "description": "With explain=true: nothing is booked"},
        **error_responses(401, 402, 403, 409, 422),
    },
    openapi_extra=documented(headers=_WRITE_HEADERS),
)
async def book_best(body: BookBestRequest, request: Request, explain: bool = False) -> Response:
    """Book the best GPU (or, with count, a gang of GPUs) that meets every criterion, or be told
    which left none"""
    principal = await caller_with_role(request, "client")
    state = request.app.state
    settings, now = state.settings, state.clock.now()
    criteria = best.Criteria(
        seconds=seconds_from_hours(body.duration_hours, settings.max_booking_hours),
        start=body.start_time,
        model=body.model if wanted_key(body.model) else None,
        memory_min=body.memory_min,
        region=body.region,
        ai_model_key=wanted_key(body.ai_model),
        miner_id=body.miner_id,
        min_uptime_bp=None
        if body.min_uptime_pct is None
        else ceil(round(body.min_uptime_pct * 100, 6)),
        rental_type=body.rental_type,
        bid_units=rental_bid(body.rental_type, body.bid_per_hour),
        max_price_units=maybe_units(body.max_price_per_hour),
    )
    if body.rental_type == "interruptible" and body.max_price_per_hour is not None:
        raise Invalid(
            "An interruptible booking pays its bid: give bid_per_hour, not max_price_per_hour.",
            code="cap_with_bid",
        )
    count, placement = body.count, body.placement
    if explain:
        service.check_start(body.start_time, now)  # not "no GPU", whichever it looks at
        async with state.store.read() as conn:
            shown = await best.explain(
                conn, criteria, now=now, settings=settings, count=count, placement=placement
            )
        return Response(orjson.dumps(shown), media_type=_JSON)

    async def gang(conn: Conn) -> bytes:
        service.check_start(body.start_time, now)  # past the key: a retry is its replay
        done = await gangs.book_gang(
            conn, criteria, count=count, placement=placement, client_id=principal.owner_id,
            now=now, settings=settings,
        )  # fmt: skip
        return orjson.dumps(gangs.public(done.gang, now, settings.outage_policy))

    async def action(conn: Conn) -> bytes:
        service.check_start(body.start_time, now)
        done = await best.book_best(
            conn,
            criteria,
            client_id=principal.owner_id,
            now=now,
            settings=settings,
            busy=state.busy_gpus,
        )
        return done.shown.encode()

    return await idempotency.write_once(
        request, state.store, principal.owner_id, body, now, action if count == 1 else gang, 201
    )


@_read(gang_router, "/{gang_id}", GangPublic, 401, 404)
async def get_gang(gang_id: str, request: Request) -> Response:
    """One gang: its order, with its bookings as the lines"""
    principal = await caller_with_role(request, "client", "admin")
    state = request.app.state
    async with state.store.read() as conn:
        found = await gangs.get_gang(conn, gang_id=gang_id, principal=principal)
    body = gangs.public(found, state.clock.now(), state.settings.outage_policy)
    return Response(orjson.dumps(body), media_type=_JSON)


@_write(gang_router, "/{gang_id}/release", GangPublic, 401, 403, 404, 409)
async def release_gang(gang_id: str, request: Request) -> Response:
    """End every booking of a gang early (or cancel them): used time charged, the rest refunded"""
    principal = await _owner(request)

    async def change(conn: Conn, now: datetime, settings: Settings) -> bytes:
        done, _ = await gangs.release_gang(
            conn, gang_id=gang_id, principal=principal, now=now,
            fee_bps=settings.platform_fee_bps, policy=settings.outage_policy,
        )  # fmt: skip
        return orjson.dumps(gangs.public(done, now, settings.outage_policy))

    return await _change(request, principal, None, change)


@_write(gang_router, "/{gang_id}/extend", GangPublic, 401, 402, 403, 404, 409, 422)
async def extend_gang(gang_id: str, body: ExtendRequest, request: Request) -> Response:
    """Add time to every booking of a gang, or to none; the extra cost moves into escrow"""
    return await _extend(request, body, partial(gangs.extend_gang, gang_id=gang_id), gangs.public)
