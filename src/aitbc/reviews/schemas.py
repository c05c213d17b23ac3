from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Self

from pydantic import BaseModel, Field

from aitbc.gpus.query import average_rating
from aitbc.kit.copying import copied
from aitbc.kit.types import JsonInt, RequestModel
from aitbc.reviews.service import GpuRating, Rated, RatingPeriod, Review

MAX_COMMENT = 2000
Rating = Field(ge=1, le=5)


def _rating(total: int, count: int) -> dict[str, Any]:
    """A GPU's rating as the schemas show it: the mean of its ``count`` visible reviews,
    whose stars sum to ``total``, and that count."""
    return {"average_rating": average_rating(total, count), "review_count": count}


class ReviewCreate(RequestModel):
    rating: JsonInt = Rating
    comment: str | None = Field(default=None, max_length=MAX_COMMENT)


class ReviewFlagCreate(RequestModel):
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
    def of(cls, review: Review) -> Self:
        return cls._shown(review)

    @classmethod
    def _shown(cls, review: Review, **given: Any) -> Self:
        """The review under the API's names (its id, its client as the reviewer), with what
        this schema adds ``given``."""
        return copied(cls, review, review_id=review.id, reviewer_id=review.client_id, **given)


class ReviewAdmin(ReviewPublic):
    hidden: bool
    flag_count: int
    flag_reasons: list[str]

    @classmethod
    def of(cls, review: Review) -> Self:
        return cls._shown(review, hidden=review.hidden_at is not None)


class ReviewSaved(ReviewPublic):
    average_rating: Decimal | None
    review_count: int

    @classmethod
    def of(cls, rated: Rated) -> Self:  # type: ignore[override]
        return cls._shown(rated.review, **_rating(rated.rating_sum, rated.review_count))


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
            **_rating(rating.rating_sum, rating.review_count),
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
            **_rating(period.total, period.count),
            new_reviews=period.new_count,
            period_average=average_rating(period.new_total, period.new_count),
        )
