from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from aitbc.bookings.schemas import BookingStatus
from aitbc.kit.money import MoneyOut


class OrderPublic(BaseModel):
    order_id: str
    booking_id: str
    gpu_id: str
    client_id: str
    miner_id: str
    job_id: str | None
    status: BookingStatus
    price_per_hour: MoneyOut
    total_cost: MoneyOut
    amount_charged: MoneyOut
    refund: MoneyOut
    start_time: datetime
    end_time: datetime
    created_at: datetime
    closed_at: datetime | None


class OrderEventPublic(BaseModel):
    status: BookingStatus | Literal["offline", "back"] = Field(
        description="The order's status from then on, or `offline` / `back`: its GPU's miner "
        "went silent (the clock stopped) and returned within the grace (the offline time "
        "refunded)"
    )
    at: datetime


class OrderDetail(OrderPublic):
    history: list[OrderEventPublic]
