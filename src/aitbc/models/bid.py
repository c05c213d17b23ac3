from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from aitbc.models.base import Base
from aitbc.models.types import UTCDateTime


class Bid(Base):
    """A standing request for GPU capacity at a maximum price per hour. It is filled by
    ordinary bookings for the client, one per GPU, until ``filled == capacity``."""

    __tablename__ = "bids"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'filled', 'cancelled', 'expired')", name="status"),
        CheckConstraint("capacity >= 1 AND filled >= 0 AND filled <= capacity", name="capacity"),
        Index("ix_bids_status_expires", "status", "expires_at"),
        Index("ix_bids_client", "client_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128))
    provider: Mapped[str | None] = mapped_column(String(128), default=None)
    gpu_model_key: Mapped[str | None] = mapped_column(String(128), default=None)
    capacity: Mapped[int] = mapped_column(Integer)
    filled: Mapped[int] = mapped_column(Integer, default=0)
    price_units: Mapped[int] = mapped_column(BigInteger)
    duration_seconds: Mapped[int] = mapped_column(Integer)
    notes: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[str] = mapped_column(String(16))
    booking_ids: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
