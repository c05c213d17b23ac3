"""Routes of the web front end: the page shell at every page address, its static files, and
the refund a release would give now (read-only, computed by the settlement's own arithmetic).

Every page address answers the same shell; the script reads the address and fetches what the
page shows from the API. The API key lives in the browser's sessionStorage and travels only
in the ``X-Api-Key`` header of the script's requests, never in an address."""

from __future__ import annotations

from datetime import datetime
from importlib import resources

import orjson
from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from aitbc.bookings import gangs, lifecycle, riders, service, settlement
from aitbc.bookings.records import BookingRecord
from aitbc.bookings.riders import Held
from aitbc.config import Policy
from aitbc.errors import Conflict
from aitbc.http.deps import caller_with_role
from aitbc.http.routing import APIRouter
from aitbc.http.security import SECURITY_HEADERS
from aitbc.kit.money import units_text

STATIC_DIR = resources.files("aitbc.web") / "static"
STATIC_PREFIX = "/web/static"
PAGES = ("/", "/gpus/{gpu_id}", "/account", "/provider", "/admin", "/signin")

router = APIRouter(tags=["web"], include_in_schema=False)


def _shell() -> bytes:
    return (STATIC_DIR / "index.html").read_bytes()


async def page(request: Request) -> Response:
    return Response(request.app.state.web_shell, media_type="text/html", headers=SECURITY_HEADERS)


for _path in PAGES:
    router.add_api_route(_path, page, methods=["GET"])


@router.get("/web/bookings/{booking_id}/release-preview")
async def release_preview(booking_id: str, request: Request) -> Response:
    """What releasing the booking now would charge and refund, by the same functions the
    release runs; the release itself may differ by the seconds that pass before it. One of
    a gang releases the whole gang: the figures are then the gang's (``bookings``: how many
    it releases)."""
    principal = await caller_with_role(request, "client", "admin")
    state = request.app.state
    now, policy = state.clock.now(), state.settings.outage_policy
    async with state.store.read() as conn:
        booking = await service.get_booking(
            conn, booking_id=booking_id, principal=principal, now=now, policy=policy
        )
        lines = [booking] if lifecycle.live(booking, now) else []
        if booking.gang_id is not None:
            gang = await gangs.get_gang(conn, gang_id=booking.gang_id, principal=principal)
            lines = [line for line in gang.lines if lifecycle.live(line, now)]
        jobs = [await riders.see(conn, line) for line in lines]
    if not lines:
        raise Conflict("This booking has already ended.", code="nothing_to_release")
    fee_bps = state.settings.platform_fee_bps
    ends = {
        line.id: _ending(line, job, now, policy, fee_bps)
        for line, job in zip(lines, jobs, strict=True)
    }
    named = ends.get(booking.id)
    body = {
        "booking_id": booking.id,
        "gang_id": booking.gang_id,
        "bookings": len(lines),
        "at": now.isoformat().replace("+00:00", "Z"),
        "status": booking.status if named is None else named.status,
        "paid": units_text(sum(line.total_units - line.outage_refund_units for line in lines)),
        "charged": units_text(sum(end.money.charged for end in ends.values())),
        "refund": units_text(sum(end.money.refunded for end in ends.values())),
    }
    return Response(orjson.dumps(body), media_type="application/json")


def _ending(
    booking: BookingRecord, job: Held | None, now: datetime, policy: Policy, fee_bps: int
) -> settlement.Outcome:
    """How releasing the booking now would end it (as ``service.release_booking`` does)."""
    terms = service.release_terms(booking, job, now=now, policy=policy)
    return settlement.outcome(
        booking, at=now, fee_bps=fee_bps, full_refund=terms.full_refund, silence=terms.silence
    )


def mount(app: FastAPI) -> None:
    """Serve the web front end from ``app``: its pages and its static files."""
    app.state.web_shell = _shell()
    app.include_router(router)
    app.mount(STATIC_PREFIX, StaticFiles(directory=str(STATIC_DIR)), name="web-static")
