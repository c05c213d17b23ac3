from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from aitbc.bookings.schemas import BookingStatus, OfflineRefund, Refund, RentalType
from aitbc.kit.copying import copied
from aitbc.kit.money import MoneyOut, from_units
from aitbc.orders.service import Order


class OrderPublic(BaseModel):
    order_id: str
    booking_id: str
    gpu_id: str
    client_id: str
    miner_id: str
    job_id: str | None
    gang_id: str | None = Field(
        description="The gang whose line this order is (GET /v1/gangs/{gang_id}); null: alone"
    )
    rental_type: RentalType
    status: BookingStatus
    price_per_hour: MoneyOut
    total_cost: MoneyOut
    amount_charged: MoneyOut
    refund: Refund
    offline_seconds_refunded: int = Field(
        description="Seconds its miner was offline and came back within the grace"
    )
    offline_refund: OfflineRefund
    start_time: datetime
    end_time: datetime
    created_at: datetime
    closed_at: datetime | None

    @classmethod
    def of(cls, order: Order) -> OrderPublic:
        b = order.booking
        return copied(
            cls,
            b,
            booking_id=b.id,
            status=order.status,
            price_per_hour=from_units(b.price_units),
            total_cost=from_units(b.total_units),
            amount_charged=from_units(order.charged_units),
            refund=from_units(order.refunded_units),
            offline_seconds_refunded=b.outage_seconds,
            offline_refund=from_units(b.outage_refund_units),
            created_at=order.created_at,
            closed_at=order.closed_at,
        )


class OrderEventPublic(BaseModel):
    status: BookingStatus | Literal["offline", "back", "bid_raised", "preempting"] = Field(
        description="The order's status from then on, or `offline` / `back`: its GPU's miner "
        "went silent (the clock stopped) and returned within the grace (the offline time "
        "refunded); `bid_raised`: an interruptible booking's bid went up; `preempting`: "
        "the booking took its GPU from an interruptible booking"
    )
    at: datetime
    note: str | None = Field(
        default=None,
        description="What else happened: who outbid whom in a preemption (never naming "
        "the other client)",
    )


class OrderDetail(OrderPublic):
    history: list[OrderEventPublic]

    @classmethod
    def of(cls, order: Order) -> OrderDetail:
        events = [
            OrderEventPublic(status=s, at=at, note=note)  # type: ignore[arg-type]
            for s, at, note in order.history
        ]
        return cls(**OrderPublic.of(order).model_dump(), history=events)
