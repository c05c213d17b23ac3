from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aitbc.kit.hours import HoursIn
from aitbc.kit.money import MoneyIn, MoneyOut, PositivePriceIn
from aitbc.kit.paging import MAX_OFFSET
from aitbc.kit.types import Moment

BookingStatus = Literal[
    "pending", "active", "completed", "released", "cancelled", "interrupted", "preempted"
]
RentalType = Literal["on_demand", "interruptible"]
RENTAL_TYPE_DOC = (
    "`on_demand` (the default): the GPU is yours for the window at its price. "
    "`interruptible`: you pay your bid per hour, and a booking that pays more (on-demand, "
    "or a higher bid) may preempt yours after a notice (docs/market.md)."
)


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
    rental_type: RentalType = Field(default="on_demand", description=RENTAL_TYPE_DOC)
    bid_per_hour: PositivePriceIn | None = Field(
        default=None,
        description="An interruptible booking's bid: what it pays per hour (required for "
        "`interruptible`, refused for `on_demand`).",
    )


class BidChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bid_per_hour: PositivePriceIn = Field(
        description="The new bid, higher than the booking's; it is paid from now on."
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
    rental_type: RentalType
    status: BookingStatus
    start_time: datetime
    end_time: datetime
    duration_hours: Decimal
    price_per_hour: MoneyOut
    bid_per_hour: MoneyOut | None = Field(
        description="An interruptible booking's bid (its price per hour); null on demand."
    )
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
