from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aitbc.kit.hours import HoursIn
from aitbc.kit.money import MoneyIn, MoneyOut
from aitbc.kit.paging import MAX_OFFSET
from aitbc.kit.types import Moment

BookingStatus = Literal["pending", "active", "completed", "released", "cancelled", "interrupted"]


class BookRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    gpu_id: str | None = Field(default=None, description="If given, must equal the path's id.")
    duration_hours: HoursIn
    job_id: str | None = Field(default=None, max_length=128)
    start_time: Moment | None = Field(
        default=None,
        description="A future start makes a reservation, at most 90 days ahead; default now.",
    )
    max_price_per_hour: MoneyIn | None = Field(
        default=None, description="Refuse the booking if the price per hour is above this."
    )
    quote_id: str | None = Field(
        default=None, max_length=64, description="Book at the price of this unexpired quote."
    )


class ExtendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    hours: HoursIn


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


class BookingListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    limit: int = Field(50, ge=1, le=500, description="Rows to return")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Rows to skip")
