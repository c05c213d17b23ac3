from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, CheckConstraint, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from aitbc.models.base import Base
from aitbc.models.types import UTCDateTime

JOB_STATES = ("queued", "assigned", "running", "completed", "failed", "expired", "cancelled")


class Job(Base):
    """A client's job. Assignment books a GPU for it through the ordinary booking path."""

    __tablename__ = "jobs"
    __table_args__ = (
        CheckConstraint("bid_units IS NULL OR bid_units > 0", name="bid_positive"),
        CheckConstraint(
            "state IN ('queued', 'assigned', 'running', 'completed', 'failed', 'expired', "
            "'cancelled')",
            name="state",
        ),
        Index("ix_jobs_state_created", "state", "created_at"),
        Index("ix_jobs_client", "client_id", "created_at"),
        Index("ix_jobs_miner_state", "miner_id", "state"),
        Index("ix_jobs_booking", "booking_id"),
        Index("ix_jobs_claim", "claim_expires_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    client_id: Mapped[str] = mapped_column(String(128))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    gpu_model_key: Mapped[str | None] = mapped_column(String(128), default=None)
    memory_min_gb: Mapped[int | None] = mapped_column(Integer, default=None)
    ai_model_key: Mapped[str | None] = mapped_column(String(128), default=None)
    region: Mapped[str | None] = mapped_column(String(64), default=None)
    max_price_units: Mapped[int | None] = mapped_column(BigInteger, default=None)
    duration_seconds: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(16))
    gpu_id: Mapped[str | None] = mapped_column(String(40), default=None)
    miner_id: Mapped[str | None] = mapped_column(String(128), default=None)
    booking_id: Mapped[str | None] = mapped_column(String(40), default=None)
    result: Mapped[Any] = mapped_column(JSON, default=None, nullable=True)
    # What the miner reported beside the result or the failure.
    metrics: Mapped[dict[str, Any] | None] = mapped_column(JSON, default=None)
    # The payload's "type" (the field protocol's job kind), for history filters.
    job_type: Mapped[str | None] = mapped_column(String(64), default=None)
    # The most the client will pay (the field protocol's payment_amount); bounds the
    # booking's length at the GPU's price.
    payment_cap_units: Mapped[int | None] = mapped_column(BigInteger, default=None)
    cuda_min: Mapped[str | None] = mapped_column(String(16), default=None)
    # A bid per hour: the job runs on an interruptible booking (None: on demand).
    bid_units: Mapped[int | None] = mapped_column(BigInteger, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    assigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # A job handed to a poll that asked for a claim: until the miner confirms it has the job
    # (jobs.service.confirm), it goes back for another poll when this passes.
    claim_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
