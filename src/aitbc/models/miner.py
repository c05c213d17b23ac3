from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, CheckConstraint, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from aitbc.models.base import Base
from aitbc.models.types import UTCDateTime


class Miner(Base):
    __tablename__ = "miners"
    __table_args__ = (
        CheckConstraint("concurrency >= 1", name="concurrency_positive"),
        CheckConstraint("inflight >= 0", name="inflight_non_negative"),
        CheckConstraint("reported_status IN ('online', 'draining', 'offline')", name="status"),
    )

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    region: Mapped[str | None] = mapped_column(String(64), default=None)
    concurrency: Mapped[int] = mapped_column(Integer, default=1)
    inflight: Mapped[int] = mapped_column(Integer, default=0)
    reported_status: Mapped[str] = mapped_column(String(16), default="online")
    capabilities: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_heartbeat: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deregistered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)
    # When its GPUs' "offline" events went out (events); cleared, with a "back" event, by
    # the next heartbeat.
    offline_noticed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), default=None)


class MinerPresence(Base):
    """A stretch of a miner's heartbeats no further apart than the heartbeat timeout: online
    from ``started_at`` to ``ended_at`` plus the timeout. Uptime is read from these."""

    __tablename__ = "miner_presence"
    __table_args__ = (Index("ix_miner_presence_miner_end", "miner_id", "ended_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    miner_id: Mapped[str] = mapped_column(ForeignKey("miners.id"))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime())
