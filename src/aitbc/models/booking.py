from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from aitbc.models.base import Base, partial
from aitbc.models.types import UTCDateTime

OPEN = "open"


class Booking(Base):
    """A GPU time window paid for up front into escrow.

        Stored status is ``open`` until settled; whether an open booking is pending, active or
        already over is derived from its window and the clock, so reads never depend on a
        background job. On PostgreSQL an exclusion constraint (added in the migration) forbids
        two bookings holding one GPU at once: an open booking holds it for its window, a preempted
    one until its notice ended."""

    __tablename__ = "bookings"
    __table_args__ = (
        CheckConstraint("end_time > start_time", name="window_positive"),
        CheckConstraint(
            "status IN ('open', 'completed', 'released', 'cancelled', 'interrupted', 'preempted')",
            name="status",
        ),
        CheckConstraint("rental_type IN ('on_demand', 'interruptible')", name="rental_type"),
        CheckConstraint(
            "total_units >= 0 AND charged_units >= 0 AND refunded_units >= 0"
            " AND outage_refund_units >= 0"
            " AND charged_units + refunded_units + outage_refund_units <= total_units",
            name="amounts",
        ),
        Index("ix_bookings_gpu_window", "gpu_id", "status", "end_time", "start_time"),
        Index("ix_bookings_due", "status", "end_time"),
        Index("ix_bookings_client", "client_id", "created_at"),
        # A GPU's open bookings with what a window check reads: a look-up from the index
        # alone (booking by criteria probes one GPU after another).
        Index(
            "ix_bookings_gpu_open",
            "gpu_id",
            "end_time",
            **partial("status = 'open'"),
            postgresql_include=["start_time", "rental_type", "price_units"],
        ),
        # A GPU's interruptible bookings, newest first: the prices it cleared at.
        Index(
            "ix_bookings_gpu_cleared",
            "gpu_id",
            "created_at",
            **partial("rental_type = 'interruptible'"),
        ),
        Index("ix_bookings_gang", "gang_id", **partial("gang_id IS NOT NULL")),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    gpu_id: Mapped[str] = mapped_column(ForeignKey("gpus.id"))
    client_id: Mapped[str] = mapped_column(String(128))
    miner_id: Mapped[str] = mapped_column(String(128), index=True)
    job_id: Mapped[str | None] = mapped_column(String(128), default=None)
    status: Mapped[str] = mapped_column(String(16), default=OPEN)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime] = mapped_column(UTCDateTime())
    booked_seconds: Mapped[int] = mapped_column(Integer)
    price_units: Mapped[int] = mapped_column(BigInteger)
    total_units: Mapped[int] = mapped_column(BigInteger)
    charged_units: Mapped[int] = mapped_column(BigInteger, default=0)
    refunded_units: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # Offline seconds of its miner already refunded while the booking went on
    # (bookings.outages), and what they came to.
    outage_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    outage_refund_units: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # When the "ending soon" event went out (events), so it goes out once.
    ending_notice_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # on_demand, or interruptible: won by its bid (``price_units``), preempted by a booking
    # that pays more (bookings.preemption).
    rental_type: Mapped[str] = mapped_column(
        String(16), default="on_demand", server_default="on_demand"
    )
    # Seconds served before the bid last changed, and what they cost: the rest of the
    # booking is charged pro rata at the new bid (bookings.lifecycle.split).
    fixed_seconds: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    fixed_units: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # The gang it was booked with (models.gang), if any.
    gang_id: Mapped[str | None] = mapped_column(ForeignKey("gangs.id"), default=None)
