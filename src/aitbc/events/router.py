"""``GET /v1/events``: the caller's events, with a cursor and a long poll."""

from __future__ import annotations

import asyncio
from asyncio import FIRST_COMPLETED
from typing import Annotated

from fastapi import Query, Request

from aitbc.errors import Forbidden
from aitbc.events import feed
from aitbc.events.schemas import EventPage, EventPublic
from aitbc.http import disconnect
from aitbc.http.context import ContextDep
from aitbc.http.deps import AnyKeyDep
from aitbc.http.errors import error_responses
from aitbc.http.routing import APIRouter
from aitbc.store.signals import events_key

router = APIRouter(prefix="/v1", tags=["events"])
MAX_WAIT_SECONDS = 60.0
MAX_EVENT_ID = 2**63 - 1  # a 64-bit integer, on either database


@router.get(
    "/events",
    responses=error_responses(401, 403),
    description="Everything that happened to your bookings, GPUs, jobs, bids, account, "
    "reviews and webhooks (docs/events.md lists the types). Page with `after=<next_after>`. "
    "With `wait`, an empty page waits up to that many seconds for the next event. With "
    "`latest=true` (no `after`), the newest `limit` events: where a live view starts.",
)
async def list_events(
    request: Request,
    ctx: ContextDep,
    principal: AnyKeyDep,
    after: Annotated[int, Query(ge=0, le=MAX_EVENT_ID, description="Events after this id")] = 0,
    types: Annotated[
        str | None,
        Query(
            max_length=1024,
            description="Comma-separated types or families: `booking.created,job.*`",
        ),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    wait: Annotated[
        float, Query(ge=0, le=MAX_WAIT_SECONDS, description="Seconds to wait when none")
    ] = 0,
    latest: Annotated[bool, Query(description="The newest events instead")] = False,
    owner: Annotated[
        str | None, Query(max_length=128, description="Another owner's events (admin)")
    ] = None,
) -> EventPage:
    """Your events, oldest first, after a cursor (long poll with `wait`)"""
    wanted = feed.parse_types(types)
    owner_id = principal.owner_id
    if owner is not None and owner != owner_id:
        if principal.role != "admin":
            raise Forbidden("Only an admin reads another owner's events.", code="forbidden")
        owner_id = owner
    if latest:
        found = await ctx.read(feed.newest, owner_id, types=wanted, limit=limit)
        return _page(found, after, more=False)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    left_us = asyncio.ensure_future(disconnect.gone(request))
    try:
        with ctx.signals.waiting(events_key(owner_id)) as written:
            while True:
                written.clear()
                found = await ctx.read(
                    feed.after, owner_id, cursor=after, types=wanted, limit=limit + 1
                )
                left = deadline - loop.time()
                if found or left <= 0 or ctx.draining or left_us.done():
                    return _page(found[:limit], after, more=len(found) > limit)
                # Woken, timed out or the client gone: look once more either way.
                woken = asyncio.ensure_future(written.wait())
                await asyncio.wait((woken, left_us), timeout=left, return_when=FIRST_COMPLETED)
                woken.cancel()
    finally:
        left_us.cancel()


def _page(found: list[feed.EventRecord], after: int, *, more: bool) -> EventPage:
    return EventPage(
        events=[EventPublic.of(event) for event in found],
        next_after=found[-1].id if found else after,
        more=more,
    )
