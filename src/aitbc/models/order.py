from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from aitbc.models.base import Base, partial
from aitbc.models.types import UTCDateTime

ORDER_STATUSES = (
    "pending",
    "active",
    "completed",
    "released",
    "cancelled",
    "interrupted",
    "preempted",
)


class Order(Base):
    """The commercial record of one booking; its amounts are the booking's."""

    __tablename__ = "orders"
    __table_args__ = (
        CheckConstraint(
            "status IN ('pending', 'active', 'completed', 'released', 'cancelled', 'interrupted', "
            "'preempted')",
            name="status",
        ),
        Index("ix_orders_client", "client_id", "created_at"),
        Index("ix_orders_miner", "miner_id", "created_at"),
        # Reservations whose start the sweeper has yet to record (bookings.settlement).
        Index("ix_orders_pending", "booking_id", **partial("status = 'pending'")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    booking_id: Mapped[str] = mapped_column(ForeignKey("bookings.id"), unique=True)
    client_id: Mapped[str] = mapped_column(String(128))
    miner_id: Mapped[str] = mapped_column(String(128))
    gpu_id: Mapped[str] = mapped_column(String(40))
    job_id: Mapped[str | None] = mapped_column(String(128), default=None)
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class OrderEvent(Base):
    """One status change of an order, stamped with when it took effect."""

    __tablename__ = "order_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"), index=True)
    status: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    # What else the history should say (a preemption: who outbid whom, never naming them).
    note: Mapped[str | None] = mapped_column(Text, default=None)
