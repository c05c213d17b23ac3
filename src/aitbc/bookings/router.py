from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from aitbc.bookings import service
from aitbc.bookings.schemas import BookingPublic, BookRequest, ExtendRequest, ReleaseResult
from aitbc.deps import AnyKeyDep, ClientDep, ClientOrAdminDep, ClockDep, SessionDep, SettingsDep
from aitbc.errors import error_responses
from aitbc.kit import idempotency
from aitbc.kit.idempotency import IdempotencyKey
from aitbc.kit.pagination import Limit, Offset
from aitbc.kit.routing import APIRouter
from aitbc.pricing.market import reprice_after_booking

gpu_router = APIRouter(prefix="/v1/marketplace/gpu", tags=["bookings"])
router = APIRouter(prefix="/v1/bookings", tags=["bookings"])


def _reprice_after_commit(
    request: Request, gpu_id: str, clock: ClockDep, settings: SettingsDep
) -> Iterator[None]:
    """Declared before the session, so this exits after the booking has committed (and
    before the response is sent): the model's price is recomputed in a transaction of its
    own. Inside the booking's it would lock other GPUs after the client's accounts."""
    yield
    reprice_after_booking(request.app.state.db, gpu_id=gpu_id, clock=clock, settings=settings)


RepriceAfterCommit = Annotated[None, Depends(_reprice_after_commit, scope="function")]


@gpu_router.post(
    "/{gpu_id}/book",
    status_code=201,
    response_model=BookingPublic,
    responses=error_responses(401, 402, 403, 404, 409, 422),
    summary="Book a GPU now or reserve it for later; the cost moves into escrow",
)
def book_gpu(
    _: RepriceAfterCommit,
    gpu_id: str,
    body: BookRequest,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: ClientDep,
    idempotency_key: IdempotencyKey = None,
) -> BaseModel | JSONResponse:
    now = clock.now()
    return idempotency.run_once(
        session,
        request,
        owner_id=principal.owner_id,
        key=idempotency_key,
        body=body,
        now=now,
        status_code=201,
        action=lambda: service.book(
            session,
            gpu_id=gpu_id,
            body=body,
            client_id=principal.owner_id,
            now=now,
            settings=settings,
        ),
    )


@gpu_router.post(
    "/{gpu_id}/release",
    response_model=ReleaseResult,
    responses=error_responses(401, 403, 404, 409),
    summary="End your booking on this GPU early: used time charged, the rest refunded",
)
def release_gpu(
    gpu_id: str,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: ClientOrAdminDep,
    idempotency_key: IdempotencyKey = None,
) -> BaseModel | JSONResponse:
    now = clock.now()
    return idempotency.run_once(
        session,
        request,
        owner_id=principal.owner_id,
        key=idempotency_key,
        body=None,
        now=now,
        status_code=200,
        action=lambda: service.release_gpu(
            session, gpu_id=gpu_id, principal=principal, now=now, settings=settings
        ),
    )


@router.get(
    "",
    response_model=list[BookingPublic],
    responses=error_responses(401, 422),
    summary="Your bookings (a miner: bookings on its GPUs; an admin: all)",
)
def list_bookings(
    session: SessionDep,
    clock: ClockDep,
    principal: AnyKeyDep,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[BookingPublic]:
    return service.list_bookings(
        session, principal=principal, now=clock.now(), limit=limit, offset=offset
    )


@router.get(
    "/{booking_id}",
    response_model=BookingPublic,
    responses=error_responses(401, 404),
    summary="One booking",
)
def get_booking(
    booking_id: str, session: SessionDep, clock: ClockDep, principal: AnyKeyDep
) -> BookingPublic:
    return service.get_booking(session, booking_id=booking_id, principal=principal, now=clock.now())


@router.post(
    "/{booking_id}/extend",
    response_model=BookingPublic,
    responses=error_responses(401, 402, 403, 404, 409, 422),
    summary="Add time to a booking; the extra cost moves into escrow",
)
def extend_booking(
    booking_id: str,
    body: ExtendRequest,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: ClientOrAdminDep,
    idempotency_key: IdempotencyKey = None,
) -> BaseModel | JSONResponse:
    now = clock.now()
    return idempotency.run_once(
        session,
        request,
        owner_id=principal.owner_id,
        key=idempotency_key,
        body=body,
        now=now,
        status_code=200,
        action=lambda: service.extend(
            session,
            booking_id=booking_id,
            hours=body.hours,
            principal=principal,
            now=now,
            settings=settings,
        ),
    )


@router.post(
    "/{booking_id}/release",
    response_model=ReleaseResult,
    responses=error_responses(401, 403, 404, 409),
    summary="End a booking early, or cancel a reservation that has not started",
)
def release_booking(
    booking_id: str,
    request: Request,
    session: SessionDep,
    clock: ClockDep,
    settings: SettingsDep,
    principal: ClientOrAdminDep,
    idempotency_key: IdempotencyKey = None,
) -> BaseModel | JSONResponse:
    now = clock.now()
    return idempotency.run_once(
        session,
        request,
        owner_id=principal.owner_id,
        key=idempotency_key,
        body=None,
        now=now,
        status_code=200,
        action=lambda: service.release_booking(
            session, booking_id=booking_id, principal=principal, now=now, settings=settings
        ),
    )
