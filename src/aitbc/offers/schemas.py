from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aitbc.gpus.schemas import GpuStatus
from aitbc.kit.money import MoneyOut


class OfferPublic(BaseModel):
    id: str
    provider: str
    capacity: int
    price: MoneyOut = Field(description="Price per hour")
    sla: str
    status: Literal["open", "booked", "closed"]
    gpu_id: str | None
    gpu_model: str | None
    gpu_memory: int | None = Field(description="GB")
    gpu_status: GpuStatus | None
    booking_expires: datetime | None
    total_bookings: int | None
    average_rating: Decimal | None
    attributes: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class MarketplaceStats(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    totalOffers: int
    openCapacity: int
    averagePrice: MoneyOut
    activeBids: int


class SyncResult(BaseModel):
    created: int
    updated: int
    closed: int
    unchanged: int
