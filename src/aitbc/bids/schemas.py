from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, Field

from aitbc.bids.service import Bid, effective_status
from aitbc.kit.clock import hours_from_seconds
from aitbc.kit.copying import copied
from aitbc.kit.hours import HoursIn
from aitbc.kit.money import MoneyOut, PositivePriceIn
from aitbc.kit.types import JsonInt, RequestModel

BidStatus = Literal["open", "filled", "cancelled", "expired"]


class BidCreate(RequestModel):
    provider: str | None = Field(default=None, max_length=128, description="Only this miner")
    capacity: JsonInt = Field(ge=1, le=64, description="How many GPUs")
    price: PositivePriceIn = Field(description="Max price per hour")
    notes: str | None = Field(default=None, max_length=1000)
    gpu_model: str | None = Field(default=None, max_length=128)
    duration_hours: HoursIn = Decimal(1)
    ttl_hours: JsonInt = Field(default=24, ge=1, le=720, description="The bid expires after this")


class BidPublic(BaseModel):
    id: str
    client_id: str
    provider: str | None
    gpu_model: str | None
    capacity: int
    filled: int
    price: MoneyOut
    duration_hours: Decimal
    notes: str | None
    status: BidStatus
    booking_ids: list[str]
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None

    @classmethod
    def of(cls, bid: Bid, now: datetime) -> BidPublic:
        return copied(
            cls,
            bid,
            gpu_model=bid.gpu_model_key,
            duration_hours=hours_from_seconds(bid.duration_seconds),
            status=effective_status(bid, now),
        )
