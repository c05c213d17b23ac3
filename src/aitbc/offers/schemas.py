from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aitbc.gpus.schemas import GpuStatus
from aitbc.kit.copying import copied
from aitbc.kit.money import MoneyOut, from_units
from aitbc.offers.service import Offer, Stats, Synced


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

    @classmethod
    def of(cls, offer: Offer) -> OfferPublic:
        return copied(cls, offer)


class MarketplaceStats(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    totalOffers: int
    openCapacity: int
    averagePrice: MoneyOut
    activeBids: int

    @classmethod
    def of(cls, stats: Stats) -> MarketplaceStats:
        return cls(
            totalOffers=stats.offers,
            openCapacity=stats.open_capacity,
            averagePrice=from_units(stats.average_price_units),
            activeBids=stats.active_bids,
        )


class SyncResult(BaseModel):
    created: int
    updated: int
    closed: int
    unchanged: int

    @classmethod
    def of(cls, synced: Synced) -> SyncResult:
        return copied(cls, synced)
