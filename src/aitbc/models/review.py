from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from aitbc.models.base import Base
from aitbc.models.types import UTCDateTime


class Review(Base):
    """One client's review of one GPU. Hidden reviews stay stored but leave the public list
    and the GPU's aggregates (``gpus.rating_sum`` / ``gpus.review_count``)."""

    __tablename__ = "reviews"
    __table_args__ = (
        UniqueConstraint("gpu_id", "client_id", name="uq_reviews_gpu_client"),
        CheckConstraint("rating BETWEEN 1 AND 5", name="rating_range"),
        CheckConstraint("flag_count >= 0", name="flag_count_non_negative"),
        Index("ix_reviews_gpu_created", "gpu_id", "created_at"),
        Index("ix_reviews_flagged", "flag_count", "hidden_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    gpu_id: Mapped[str] = mapped_column(ForeignKey("gpus.id"))
    client_id: Mapped[str] = mapped_column(String(128))
    rating: Mapped[int] = mapped_column(Integer)
    comment: Mapped[str | None] = mapped_column(Text, default=None)
    verified: Mapped[bool] = mapped_column(Boolean, default=True)
    flag_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    hidden_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    hidden_by: Mapped[str | None] = mapped_column(String(128), default=None)


class ReviewFlag(Base):
    __tablename__ = "review_flags"
    __table_args__ = (UniqueConstraint("review_id", "flagger_id", name="uq_review_flags_once"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    review_id: Mapped[str] = mapped_column(ForeignKey("reviews.id"), index=True)
    flagger_id: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
