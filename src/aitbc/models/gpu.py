from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from aitbc.kit.types import UTCDateTime
from aitbc.models.base import Base


class Gpu(Base):
    __tablename__ = "gpus"
    __table_args__ = (
        UniqueConstraint("miner_id", "slot", name="uq_gpus_miner_slot"),
        CheckConstraint("memory_gb >= 0", name="memory_non_negative"),
        CheckConstraint("price_units >= 0", name="price_non_negative"),
        CheckConstraint("effective_price_units >= 0", name="effective_price_non_negative"),
        CheckConstraint("pricing_mode IN ('fixed', 'dynamic')", name="pricing_mode"),
        CheckConstraint("rating_sum >= 0 AND review_count >= 0", name="rating_non_negative"),
        CheckConstraint("total_bookings >= 0", name="bookings_non_negative"),
        Index("ix_gpus_listing", "delisted_at", "effective_price_units"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    miner_id: Mapped[str] = mapped_column(ForeignKey("miners.id"), index=True)
    # The miner's own name for this device (its index or serial); re-registering the same
    # slot updates the GPU instead of adding another.
    slot: Mapped[str] = mapped_column(String(128))
    model: Mapped[str] = mapped_column(String(128))
    # Lower-case, spaces and dashes removed: "RTX 4090" and "rtx4090" are the same model.
    model_key: Mapped[str] = mapped_column(String(128), index=True)
    memory_gb: Mapped[int] = mapped_column(Integer, default=0)
    cuda_cores: Mapped[int | None] = mapped_column(Integer, default=None)
    compute_capability: Mapped[str | None] = mapped_column(String(16), default=None)
    cuda_version: Mapped[str | None] = mapped_column(String(16), default=None)
    region: Mapped[str | None] = mapped_column(String(64), default=None)
    # The miner's own price per hour; in dynamic mode it is scaled by the model's demand
    # multiplier into ``effective_price_units``, which is what a booking pays and what
    # lists filter and sort on.
    price_units: Mapped[int] = mapped_column(BigInteger)
    effective_price_units: Mapped[int] = mapped_column(BigInteger)
    pricing_mode: Mapped[str] = mapped_column(String(16), default="fixed")
    description: Mapped[str | None] = mapped_column(Text, default=None)
    ai_models: Mapped[list[str]] = mapped_column(JSON, default=list)
    health: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    health_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    rating_sum: Mapped[int] = mapped_column(Integer, default=0)
    review_count: Mapped[int] = mapped_column(Integer, default=0)
    total_bookings: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    delisted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class GpuAiModel(Base):
    """The AI models a GPU can serve, one row each, so they can be matched by index."""

    __tablename__ = "gpu_ai_models"

    gpu_id: Mapped[str] = mapped_column(ForeignKey("gpus.id", ondelete="CASCADE"), primary_key=True)
    model_key: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)
