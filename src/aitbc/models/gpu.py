from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Computed,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from aitbc.models.base import Base, partial
from aitbc.models.types import UTCDateTime

RATING_RANK = "CASE WHEN review_count > 0 THEN rating_sum * 1000000 / review_count ELSE -1 END"
LISTED_WHERE = "delisted_at IS NULL"
LISTED = partial(LISTED_WHERE)


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
    # Whether the provider lets the GPU be rented interruptibly, and the least bid per hour
    # it takes (None: the setting's share of the price, bookings.market_rules).
    interruptible: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    min_bid_units: Mapped[int | None] = mapped_column(BigInteger, default=None)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    ai_models: Mapped[list[str]] = mapped_column(JSON, default=list)
    health: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    health_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    rating_sum: Mapped[int] = mapped_column(Integer, default=0)
    review_count: Mapped[int] = mapped_column(Integer, default=0)
    # The mean rating in millionths, -1 without reviews: what the rating sort and its index
    # order by. Computed by the database from the two aggregates above.
    rating_rank: Mapped[int] = mapped_column(BigInteger, Computed(RATING_RANK))
    total_bookings: Mapped[int] = mapped_column(Integer, default=0)
    # The miner's presence over the last 24 hours and 7 days, in basis points (10,000 = all
    # the time), refreshed by the sweeper from miner_presence.
    uptime_24h_bp: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    uptime_7d_bp: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Moved by the trigger gpus_revision on every UPDATE of the row, so a rendering of the
    # row can be kept until the row changes (gpus.cards).
    revision: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    delisted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


# The list's indexes: one per sort, and per equality filter a list can lead with, so a page
# reads about as many rows as it shows however many GPUs there are. Partial: delisted GPUs
# are never listed with others.
Index("ix_gpus_price", Gpu.effective_price_units, Gpu.id, **LISTED)
Index("ix_gpus_model_price", Gpu.model_key, Gpu.effective_price_units, Gpu.id, **LISTED)
Index("ix_gpus_rating", Gpu.rating_rank.desc(), Gpu.review_count.desc(), Gpu.id.desc(), **LISTED)
Index(
    "ix_gpus_model_rating",
    Gpu.model_key,
    Gpu.rating_rank.desc(),
    Gpu.review_count.desc(),
    Gpu.id.desc(),
    **LISTED,
)
Index("ix_gpus_memory", Gpu.memory_gb.desc(), Gpu.effective_price_units, Gpu.id, **LISTED)
Index("ix_gpus_newest", Gpu.created_at.desc(), Gpu.id.desc(), **LISTED)
Index("ix_gpus_uptime", Gpu.uptime_7d_bp.desc(), Gpu.effective_price_units, Gpu.id, **LISTED)
Index("ix_gpus_region_price", func.lower(Gpu.region), Gpu.effective_price_units, Gpu.id, **LISTED)
Index(  # booking by criteria with a model (one key) and a region
    "ix_gpus_model_region_price",
    Gpu.model_key,
    func.lower(Gpu.region),
    Gpu.effective_price_units,
    Gpu.id,
    **LISTED,
)


class GpuModelKey(Base):
    """Every GPU model key ever registered: a model filter (a substring pattern) is matched
    against these few rows first, then the GPUs are read by index, one key at a time."""

    __tablename__ = "gpu_model_keys"

    model_key: Mapped[str] = mapped_column(String(128), primary_key=True)


class GpuAiModel(Base):
    """The AI models a GPU can serve, one row each, so they can be matched by index."""

    __tablename__ = "gpu_ai_models"

    gpu_id: Mapped[str] = mapped_column(ForeignKey("gpus.id", ondelete="CASCADE"), primary_key=True)
    model_key: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)
