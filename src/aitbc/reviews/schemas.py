from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aitbc.kit.types import JsonInt

MAX_COMMENT = 2000
Rating = Field(ge=1, le=5)
ReviewSort = Literal["newest", "oldest", "highest", "lowest"]


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


class ReviewAdmin(ReviewPublic):
    hidden: bool
    flag_count: int
    flag_reasons: list[str]


class ReviewSaved(ReviewPublic):
    average_rating: Decimal | None
    review_count: int


class GpuReviews(BaseModel):
    gpu_id: str
    average_rating: Decimal | None
    review_count: int
    distribution: dict[str, int] = Field(description='Visible reviews per star, "1" to "5".')
    reviews: list[ReviewPublic]


class RatingPoint(BaseModel):
    period_start: datetime
    average_rating: Decimal | None = Field(description="Of all visible reviews up to the end")
    review_count: int
    new_reviews: int
    period_average: Decimal | None
