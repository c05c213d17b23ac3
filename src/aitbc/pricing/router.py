from __future__ import annotations

from typing import Annotated, Literal

from fastapi import Query

from aitbc.bookings import market
from aitbc.http.context import ContextDep
from aitbc.http.deps import CheckKey, ClientDep
from aitbc.http.errors import error_responses
from aitbc.http.routing import APIRouter
from aitbc.kit.hours import seconds_from_hours
from aitbc.kit.types import Moment
from aitbc.pricing import service
from aitbc.pricing.schemas import ModelPricing, PricePoint, QuotePublic, QuoteRequest

router = APIRouter(prefix="/v1/marketplace", tags=["pricing"], dependencies=[CheckKey])


# An AI model's name may hold a slash (org/model): the model is the rest of the path,
# its history first.
@router.get("/pricing/{model:path}/history", responses=error_responses(401, 404, 422))
async def pricing_history(
    model: str,
    ctx: ContextDep,
    since: Moment | None = None,
    bucket: Literal["raw", "hour", "day"] = "raw",
    limit: Annotated[int, Query(ge=1, le=5000)] = 500,
) -> list[PricePoint]:
    """The stored price series of a model, for charts"""
    points = await ctx.read(service.history, model=model, since=since, bucket=bucket, limit=limit)
    return [PricePoint.of(point) for point in points]


@router.get("/pricing/{model:path}", responses=error_responses(401, 404, 422))
async def model_pricing(model: str, ctx: ContextDep) -> ModelPricing:
    """Market price of a GPU model or an AI model, with recommendations"""
    now = ctx.now()
    view = await ctx.read(service.market_view, model=model, now=now, settings=ctx.settings)
    bids = await ctx.read(
        market.model_market,
        view.online_gpu_ids,
        now=now,
        share=ctx.settings.min_bid_share,
        notice_seconds=ctx.settings.preempt_notice_seconds,
    )
    return ModelPricing.of(view, bids.public())


@router.post("/gpu/{gpu_id}/quote", status_code=201, responses=error_responses(401, 403, 404, 422))
async def quote(
    gpu_id: str, body: QuoteRequest, ctx: ContextDep, principal: ClientDep
) -> QuotePublic:
    """What booking this GPU would cost now; book with the quote_id to keep the price"""
    settings = ctx.settings
    made = await ctx.write(
        service.create_quote,
        gpu_id=gpu_id,
        client_id=principal.owner_id,
        seconds=seconds_from_hours(body.duration_hours, settings.max_booking_hours),
        now=ctx.now(),
        settings=settings,
    )
    return QuotePublic.of(made)
