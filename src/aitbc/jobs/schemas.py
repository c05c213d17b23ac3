from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aitbc.bookings.schemas import Hours
from aitbc.kit.money import MoneyIn

JobState = Literal["queued", "assigned", "running", "completed", "failed", "expired", "cancelled"]


class JobConstraints(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gpu_model: str | None = Field(default=None, max_length=128)
    memory_min_gb: int | None = Field(default=None, ge=0, le=4096)
    ai_model: str | None = Field(default=None, max_length=128)
    region: str | None = Field(default=None, max_length=64)
    max_price_per_hour: MoneyIn | None = Field(default=None, le=Decimal(1_000_000))


class JobCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payload: dict[str, Any] = Field(default_factory=dict)
    constraints: JobConstraints = Field(default_factory=JobConstraints)
    duration_hours: Decimal = Hours
    ttl_seconds: int = Field(default=3600, ge=60, le=7 * 86_400)


class JobResult(BaseModel):
    model_config = ConfigDict(extra="forbid")

    result: dict[str, Any] = Field(default_factory=dict)


class JobFailure(BaseModel):
    model_config = ConfigDict(extra="forbid")

    error: str = Field(min_length=1, max_length=2000)


class JobPublic(BaseModel):
    job_id: str
    state: JobState
    client_id: str
    constraints: JobConstraints
    duration_hours: Decimal
    gpu_id: str | None
    miner_id: str | None
    booking_id: str | None
    result: dict[str, Any] | None
    error: str | None
    created_at: datetime
    expires_at: datetime
    assigned_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None


class MinerJob(BaseModel):
    job_id: str
    gpu_id: str
    booking_id: str
    payload: dict[str, Any]
    duration_hours: Decimal
    expires_at: datetime
    booking_ends_at: datetime
