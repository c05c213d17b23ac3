from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from aitbc.models.base import Base
from aitbc.models.types import UTCDateTime


class Offer(Base):
    """A marketplace offer. Offer sync keeps one per GPU of an online miner."""

    __tablename__ = "offers"
    __table_args__ = (
        CheckConstraint("status IN ('open', 'closed')", name="status"),
        CheckConstraint("capacity >= 0 AND price_units >= 0", name="non_negative"),
        Index("ix_offers_status_created", "status", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    gpu_id: Mapped[str | None] = mapped_column(ForeignKey("gpus.id"), unique=True)
    provider: Mapped[str] = mapped_column(String(128), index=True)
    capacity: Mapped[int] = mapped_column(Integer)
    price_units: Mapped[int] = mapped_column(BigInteger)
    sla: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(16), default="miner_sync")
    attributes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
