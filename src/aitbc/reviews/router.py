from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any, Literal

from aitbc.auth.principal import Principal
from aitbc.http.context import Context, ContextDep
from aitbc.http.deps import AdminDep, AnyKeyDep, CheckKey, ClientDep
from aitbc.http.errors import error_responses
from aitbc.http.pagination import Limit, Offset
from aitbc.http.routing import APIRouter
from aitbc.kit.types import Moment
from aitbc.reviews import service
from aitbc.reviews.schemas import (
    GpuReviews,
    RatingPoint,
    ReviewAdmin,
    ReviewCreate,
    ReviewFlagCreate,
    ReviewPublic,
    ReviewSaved,
)
from aitbc.reviews.service import Rated, ReviewSort

router = APIRouter(prefix="/v1", tags=["reviews"], dependencies=[CheckKey])


@router.post(
    "/marketplace/gpu/{gpu_id}/reviews",
    status_code=201,
    responses=error_responses(401, 403, 404, 409, 422),
)
async def add_review(
    gpu_id: str, body: ReviewCreate, ctx: ContextDep, principal: ClientDep
) -> ReviewSaved:
    """Review a GPU you have booked (one review per client and GPU)"""
    return await _rate(ctx, service.create, body, gpu_id=gpu_id, client_id=principal.owner_id)


@router.get("/marketplace/gpu/{gpu_id}/reviews", responses=error_responses(401, 404, 422))
async def gpu_reviews(
    gpu_id: str,
    ctx: ContextDep,
    sort: ReviewSort = "newest",
    limit: Limit = 10,
    offset: Offset = 0,
) -> GpuReviews:
    """A GPU's rating, star distribution and visible reviews"""
    found = await ctx.read(service.for_gpu, gpu_id=gpu_id, sort=sort, limit=limit, offset=offset)
    return GpuReviews.of(found)


@router.get("/marketplace/gpu/{gpu_id}/rating-history", responses=error_responses(401, 404, 422))
async def rating_history(
    gpu_id: str,
    ctx: ContextDep,
    bucket: Literal["day", "week"] = "day",
    since: Moment | None = None,
) -> list[RatingPoint]:
    """The GPU's average rating over time, by day or week"""
    periods = await ctx.read(service.rating_history, gpu_id=gpu_id, bucket=bucket, since=since)
    return [RatingPoint.of(period) for period in periods]


@router.put("/marketplace/reviews/{review_id}", responses=error_responses(401, 403, 404, 422))
async def edit_review(
    review_id: str, body: ReviewCreate, ctx: ContextDep, principal: ClientDep
) -> ReviewSaved:
    """Edit your review"""
    return await _rate(ctx, service.edit, body, review_id=review_id, principal=principal)


@router.post(
    "/marketplace/reviews/{review_id}/flag",
    status_code=201,
    responses=error_responses(401, 404, 409, 422),
)
async def flag_review(
    review_id: str, body: ReviewFlagCreate, ctx: ContextDep, principal: AnyKeyDep
) -> ReviewPublic:
    """Flag a review for moderation"""
    flagged = await ctx.write(
        service.flag, review_id=review_id, principal=principal, reason=body.reason, now=ctx.now()
    )
    return ReviewPublic.of(flagged)


@router.get("/admin/reviews/flagged", responses=error_responses(401, 403, 422))
async def flagged_reviews(
    ctx: ContextDep,
    _: AdminDep,
    include_hidden: bool = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[ReviewAdmin]:
    """Flagged reviews, most flagged first (admin)"""
    found = await ctx.read(
        service.flagged, include_hidden=include_hidden, limit=limit, offset=offset
    )
    return [ReviewAdmin.of(review) for review in found]


@router.post("/admin/reviews/{review_id}/hide", responses=error_responses(401, 403, 404))
async def hide_review(review_id: str, ctx: ContextDep, principal: AdminDep) -> ReviewAdmin:
    """Hide a review from the public list and the aggregates (admin)"""
    return await _moderate(ctx, review_id, principal, hidden=True)


@router.post("/admin/reviews/{review_id}/restore", responses=error_responses(401, 403, 404))
async def restore_review(review_id: str, ctx: ContextDep, principal: AdminDep) -> ReviewAdmin:
    """Bring a hidden review back (admin)"""
    return await _moderate(ctx, review_id, principal, hidden=False)


async def _rate(
    ctx: Context, save: Callable[..., Coroutine[Any, Any, Rated]], body: ReviewCreate, **review: Any
) -> ReviewSaved:
    """A review written or edited by ``save``: its stars and comment, with the GPU's rating
    after it."""
    rated = await ctx.write(save, **review, rating=body.rating, comment=body.comment, now=ctx.now())
    return ReviewSaved.of(rated)


async def _moderate(
    ctx: Context, review_id: str, principal: Principal, *, hidden: bool
) -> ReviewAdmin:
    review = await ctx.write(
        service.set_hidden,
        review_id=review_id,
        hidden=hidden,
        admin_id=principal.owner_id,
        now=ctx.now(),
    )
    return ReviewAdmin.of(review)
