from __future__ import annotations

from typing import Literal

from aitbc.http.deps import AdminDep, AnyKeyDep, CheckKey, ClientDep, ClockDep, SessionDep
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
    ReviewSort,
)

router = APIRouter(prefix="/v1", tags=["reviews"], dependencies=[CheckKey])


@router.post(
    "/marketplace/gpu/{gpu_id}/reviews",
    status_code=201,
    response_model=ReviewSaved,
    responses=error_responses(401, 403, 404, 409, 422),
    summary="Review a GPU you have booked (one review per client and GPU)",
)
def add_review(
    gpu_id: str, body: ReviewCreate, session: SessionDep, clock: ClockDep, principal: ClientDep
) -> ReviewSaved:
    return service.create(
        session, gpu_id=gpu_id, client_id=principal.owner_id, body=body, now=clock.now()
    )


@router.get(
    "/marketplace/gpu/{gpu_id}/reviews",
    response_model=GpuReviews,
    responses=error_responses(401, 404, 422),
    summary="A GPU's rating, star distribution and visible reviews",
)
def gpu_reviews(
    gpu_id: str,
    session: SessionDep,
    sort: ReviewSort = "newest",
    limit: Limit = 10,
    offset: Offset = 0,
) -> GpuReviews:
    return service.for_gpu(session, gpu_id=gpu_id, sort=sort, limit=limit, offset=offset)


@router.get(
    "/marketplace/gpu/{gpu_id}/rating-history",
    response_model=list[RatingPoint],
    responses=error_responses(401, 404, 422),
    summary="The GPU's average rating over time, by day or week",
)
def rating_history(
    gpu_id: str,
    session: SessionDep,
    bucket: Literal["day", "week"] = "day",
    since: Moment | None = None,
) -> list[RatingPoint]:
    return service.rating_history(session, gpu_id=gpu_id, bucket=bucket, since=since)


@router.put(
    "/marketplace/reviews/{review_id}",
    response_model=ReviewSaved,
    responses=error_responses(401, 403, 404, 422),
    summary="Edit your review",
)
def edit_review(
    review_id: str, body: ReviewCreate, session: SessionDep, clock: ClockDep, principal: ClientDep
) -> ReviewSaved:
    return service.edit(
        session, review_id=review_id, principal=principal, body=body, now=clock.now()
    )


@router.post(
    "/marketplace/reviews/{review_id}/flag",
    status_code=201,
    response_model=ReviewPublic,
    responses=error_responses(401, 404, 409, 422),
    summary="Flag a review for moderation",
)
def flag_review(
    review_id: str,
    body: ReviewFlagCreate,
    session: SessionDep,
    clock: ClockDep,
    principal: AnyKeyDep,
) -> ReviewPublic:
    return service.flag(
        session, review_id=review_id, principal=principal, reason=body.reason, now=clock.now()
    )


@router.get(
    "/admin/reviews/flagged",
    response_model=list[ReviewAdmin],
    responses=error_responses(401, 403, 422),
    summary="Flagged reviews, most flagged first (admin)",
)
def flagged_reviews(
    session: SessionDep,
    _: AdminDep,
    include_hidden: bool = False,
    limit: Limit = 50,
    offset: Offset = 0,
) -> list[ReviewAdmin]:
    return service.flagged(session, include_hidden=include_hidden, limit=limit, offset=offset)


@router.post(
    "/admin/reviews/{review_id}/hide",
    response_model=ReviewAdmin,
    responses=error_responses(401, 403, 404),
    summary="Hide a review from the public list and the aggregates (admin)",
)
def hide_review(
    review_id: str, session: SessionDep, clock: ClockDep, principal: AdminDep
) -> ReviewAdmin:
    return service.set_hidden(
        session, review_id=review_id, hidden=True, admin_id=principal.owner_id, now=clock.now()
    )


@router.post(
    "/admin/reviews/{review_id}/restore",
    response_model=ReviewAdmin,
    responses=error_responses(401, 403, 404),
    summary="Bring a hidden review back (admin)",
)
def restore_review(
    review_id: str, session: SessionDep, clock: ClockDep, principal: AdminDep
) -> ReviewAdmin:
    return service.set_hidden(
        session, review_id=review_id, hidden=False, admin_id=principal.owner_id, now=clock.now()
    )
