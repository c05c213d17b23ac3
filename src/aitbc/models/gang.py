from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from aitbc.models.base import Base
from aitbc.models.types import UTCDateTime

PLACEMENTS = ("same_miner", "same_region", "any")


class Gang(Base):
    """Several GPUs booked together, all or nothing: one booking (and order) per GPU, each
    naming the gang, with one window and one rental type. The gang is what its client
    ordered; its bookings are the order's lines (bookings.gangs)."""

    __tablename__ = "gangs"
    __table_args__ = (
        CheckConstraint("placement IN ('same_miner', 'same_region', 'any')", name="placement"),
        CheckConstraint("size >= 2", name="size"),
        Index("ix_gangs_client", "client_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128))
    placement: Mapped[str] = mapped_column(String(16))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
