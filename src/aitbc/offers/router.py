"""Offers, stats and offer sync. Served under ``/v1/marketplace`` and, for older
clients, under ``/marketplace`` as well."""

from __future__ import annotations

from typing import Literal

from fastapi import Query

from aitbc.http.context import Context, ContextDep
from aitbc.http.deps import AdminDep, CheckKey
from aitbc.http.errors import error_responses
from aitbc.http.pagination import Limit, Offset
from aitbc.http.routing import APIRouter
from aitbc.offers import service
from aitbc.offers.schemas import MarketplaceStats, OfferPublic, SyncResult

router = APIRouter(tags=["offers"], dependencies=[CheckKey])


async def _offers(
    ctx: Context, *, status: str | None, provider: str | None, limit: int, offset: int
) -> list[OfferPublic]:
    offers = await ctx.read(
        service.list_offers,
        now=ctx.now(),
        heartbeat_timeout=ctx.settings.heartbeat_timeout_seconds,
        status=status,
        provider=provider,
        limit=limit,
        offset=offset,
    )
    return [OfferPublic.of(offer) for offer in offers]


@router.get("/marketplace/offers", responses=error_responses(401, 422))
async def list_offers(
    ctx: ContextDep,
    status: Literal["open", "booked", "closed"] | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[OfferPublic]:
    """Marketplace offers with their GPUs' live state"""
    return await _offers(ctx, status=status, provider=None, limit=limit, offset=offset)


@router.get("/marketplace/miner-offers", responses=error_responses(401, 422))
async def miner_offers(
    ctx: ContextDep,
    provider: str | None = Query(None, max_length=128),
    status: Literal["open", "booked", "closed"] | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[OfferPublic]:
    """Offers made from miners' GPUs by offer sync"""
    return await _offers(ctx, status=status, provider=provider, limit=limit, offset=offset)


@router.get("/marketplace/stats", responses=error_responses(401))
async def stats(ctx: ContextDep) -> MarketplaceStats:
    """Offers not closed, the capacity open now, their average price and active bids"""
    timeout = ctx.settings.heartbeat_timeout_seconds
    return MarketplaceStats.of(
        await ctx.read(service.stats, now=ctx.now(), heartbeat_timeout=timeout)
    )


@router.post(
    "/marketplace/sync-offers",
    responses=error_responses(401, 403),
    description="Offers follow the registry by themselves (registration, heartbeats, price "
    "and pricing-mode changes, delisting; the sweeper closes those of silent miners), so "
    "this finds nothing to do unless something was missed. Kept for compatibility.",
)
async def sync_offers(ctx: ContextDep, _: AdminDep) -> SyncResult:
    """Create or refresh one offer per GPU of every online miner; close the rest (admin)"""
    timeout = ctx.settings.heartbeat_timeout_seconds
    return SyncResult.of(await ctx.write(service.sync, now=ctx.now(), heartbeat_timeout=timeout))
