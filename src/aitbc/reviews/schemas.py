from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from aitbc.gpus.query import average_rating
from aitbc.kit.copying import copied
from aitbc.kit.types import JsonInt
from aitbc.reviews.service import GpuRating, Rated, RatingPeriod, Review

MAX_COMMENT = 2000
Rating = Field(ge=1, le=5)


class ReviewCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rating: JsonInt = Rating
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)


class ReviewFlagCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=500)


class ReviewPublic(BaseModel):
    review_id: str
    gpu_id: str
    rating: int
    comment: str | None
    reviewer_id: str
    verified: bool
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, review: Review) -> ReviewPublic:
        return copied(cls, review, review_id=review.id, reviewer_id=review.client_id)


class ReviewAdmin(ReviewPublic):
    hidden: bool
    flag_count: int
    flag_reasons: list[str]

    @classmethod
    def of(cls, review: Review) -> ReviewAdmin:
        return copied(
            cls,
            review,
            review_id=review.id,
            reviewer_id=review.client_id,
            hidden=review.hidden_at is not None,
        )


class ReviewSaved(ReviewPublic):
    average_rating: Decimal | None
    review_count: int

    @classmethod
    def of(cls, rated: Rated) -> ReviewSaved:  # type: ignore[override]
        review = rated.review
        return copied(
            cls,
            review,
            review_id=review.id,
            reviewer_id=review.client_id,
            average_rating=average_rating(rated.rating_sum, rated.review_count),
            review_count=rated.review_count,
        )


class GpuReviews(BaseModel):
    gpu_id: str
    average_rating: Decimal | None
    review_count: int
    distribution: dict[str, int] = Field(description='Visible reviews per star, "1" to "5".')
    reviews: list[ReviewPublic]

    @classmethod
    def of(cls, rating: GpuRating) -> GpuReviews:
        return cls(
            gpu_id=rating.gpu_id,
            average_rating=average_rating(rating.rating_sum, rating.review_count),
            review_count=rating.review_count,
            distribution={str(star): rating.stars.get(star, 0) for star in range(1, 6)},
            reviews=[ReviewPublic.of(r) for r in rating.reviews],
        )


class RatingPoint(BaseModel):
    period_start: datetime
    average_rating: Decimal | None = Field(description="Of all visible reviews up to the end")
    review_count: int
    new_reviews: int
    period_average: Decimal | None

    @classmethod
    def of(cls, period: RatingPeriod) -> RatingPoint:
        return cls(
            period_start=period.start,
            average_rating=average_rating(period.total, period.count),
            review_count=period.count,
            new_reviews=period.new_count,
            period_average=average_rating(period.new_total, period.new_count),
        )
