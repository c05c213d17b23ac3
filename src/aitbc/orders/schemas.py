from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel

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
    status: BookingStatus
    at: datetime


class OrderDetail(OrderPublic):
    history: list[OrderEventPublic]
