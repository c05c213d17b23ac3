from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from aitbc.kit.money import MoneyIn, MoneyOut

BookingStatus = Literal["pending", "active", "completed", "released", "cancelled", "interrupted"]
Hours = Field(gt=0, le=Decimal(100_000), max_digits=12, decimal_places=6)


class BookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gpu_id: str | None = Field(default=None, description="If given, must equal the path's id.")
    duration_hours: Decimal = Hours
    job_id: str | None = Field(default=None, max_length=128)
    start_time: AwareDatetime | None = Field(
        default=None, description="A future start makes a reservation; default now."
    )
    max_price_per_hour: MoneyIn | None = Field(
        default=None, description="Refuse the booking if the price per hour is above this."
    )
    quote_id: str | None = Field(
        default=None, max_length=64, description="Book at the price of this unexpired quote."
    )


class ExtendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hours: Decimal = Hours


class BookingPublic(BaseModel):
    booking_id: str
    order_id: str
    gpu_id: str
    client_id: str
    miner_id: str
    job_id: str | None
    status: BookingStatus
    start_time: datetime
    end_time: datetime
    duration_hours: Decimal
    price_per_hour: MoneyOut
    total_cost: MoneyOut
    amount_charged: MoneyOut
    refund: MoneyOut
    created_at: datetime
    ended_at: datetime | None


class ReleaseResult(BookingPublic):
    used_seconds: int
