from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from aitbc.kit.hours import HoursIn
from aitbc.kit.money import MoneyIn, MoneyOut, PositivePriceIn
from aitbc.kit.paging import MAX_OFFSET
from aitbc.kit.types import Moment, RequestModel

BookingStatus = Literal[
    "pending", "active", "completed", "released", "cancelled", "interrupted", "preempted"
]
RentalType = Literal["on_demand", "interruptible"]
Placement = Literal["same_miner", "same_region", "any"]
MAX_GANG = 16
RENTAL_TYPE_DOC = (
    "`on_demand` (the default): the GPU is yours for the window at its price. "
    "`interruptible`: you pay your bid per hour, and a booking that pays more (on-demand, "
    "or a higher bid) may preempt yours after a notice (docs/market.md)."
)

# What a booking gave back, the same in the booking and in its order: at its end, and for
# its miner's outages (OfflineRefund follows the field counting those seconds).
Refund = Annotated[
    MoneyOut,
    Field(
        description="What its end gave back of what escrow held (0 until it ends); the time "
        "its miner was offline is refunded apart, in offline_refund"
    ),
]
OfflineRefund = Annotated[MoneyOut, Field(description="What those seconds gave back")]


class BookRequest(RequestModel):
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


class BookBestRequest(RequestModel):
    """What the GPU must be and how to rent it; the best that meets every criterion is
    booked (docs/market.md)."""

    duration_hours: HoursIn
    start_time: Moment | None = Field(
        default=None, description="A future start makes a reservation; default now."
    )
    model: str | None = Field(
        default=None, max_length=128, description="Case-insensitive substring; `*` any"
    )
    memory_min: int | None = Field(default=None, ge=0, le=4096, description="In GB")
    region: str | None = Field(default=None, max_length=64, description="Exact, any case")
    ai_model: str | None = Field(default=None, max_length=128, description="Serves it")
    miner_id: str | None = Field(default=None, max_length=128)
    min_uptime_pct: float | None = Field(
        default=None, ge=0, le=100, description="Over the last 7 days (to 0.01, rounded up)"
    )
    rental_type: RentalType = Field(default="on_demand", description=RENTAL_TYPE_DOC)
    bid_per_hour: PositivePriceIn | None = Field(
        default=None, description="Interruptible: the bid (required)."
    )
    max_price_per_hour: MoneyIn | None = Field(
        default=None,
        description="On demand: refuse any GPU whose price (dynamic prices included) is "
        "above this.",
    )
    count: int = Field(
        default=1,
        ge=1,
        le=MAX_GANG,
        description="GPUs to book together, all or nothing (a gang: one booking per GPU, "
        "one window, released, extended and preempted as a whole); above 1 the answer is "
        "the gang.",
    )
    placement: Placement = Field(
        default="any",
        description="Where a gang's GPUs are: `same_miner`, `same_region` or `any`.",
    )


class CriterionStep(BaseModel):
    criterion: str
    wanted: str
    gpus_left: int = Field(description="GPUs meeting this criterion and every one before")


class Candidate(BaseModel):
    gpu_id: str
    model: str
    memory_gb: int
    region: str | None
    price_per_hour: MoneyOut
    lowest_winning_bid: MoneyOut | None
    uptime_7d_pct: Decimal
    average_rating: Decimal | None
    verdict: Literal["chosen", "ranked_lower", "excluded"]
    reason: str


class Explanation(BaseModel):
    rule: str
    criteria: list[CriterionStep]
    chosen: str | None = Field(description="The GPU that would be booked now; null: none")
    candidates: list[Candidate] = Field(description="The first 50 GPUs considered, best first")
    chosen_gang: list[str] | None = Field(
        default=None,
        description="With count above 1: the GPUs the gang would take; null: no group of "
        "them (absent for a single GPU).",
    )


class BidChange(RequestModel):
    bid_per_hour: PositivePriceIn = Field(
        description="The new bid, higher than the booking's; it is paid from now on."
    )


class ExtendRequest(RequestModel):
    hours: HoursIn


class BookingPublic(BaseModel):
    booking_id: str
    order_id: str
    gpu_id: str
    client_id: str
    miner_id: str
    job_id: str | None
    gang_id: str | None = Field(
        description="The gang it was booked with (all or nothing, with its other lines); "
        "null: booked alone."
    )
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
    refund: Refund
    offline_seconds_refunded: int = Field(
        description="Seconds of its window its miner was offline and came back within the "
        "grace: refunded when the miner returned (docs/outages.md)"
    )
    offline_refund: OfflineRefund
    miner_offline_since: datetime | None = Field(
        description="Its miner's last heartbeat, while its miner is silent and may still "
        "come back: its clock stopped then; null otherwise"
    )
    created_at: datetime
    ended_at: datetime | None


class ReleaseResult(BookingPublic):
    used_seconds: int


class BookingListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    limit: int = Field(50, ge=1, le=500, description="Rows to return")
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Rows to skip")


class GangPublic(BaseModel):
    """A gang as its order: what it costs in all, and its bookings as the lines."""

    gang_id: str
    client_id: str
    placement: Placement
    size: int = Field(description="GPUs in the gang")
    rental_type: RentalType
    status: BookingStatus | Literal["mixed"] = Field(
        description="The lines' status when they share one (they do, but for a miner's "
        "outage, which ends only its own GPUs' bookings); otherwise `mixed`."
    )
    start_time: datetime
    end_time: datetime
    price_per_hour: MoneyOut = Field(description="Of all its GPUs together")
    total_cost: MoneyOut
    amount_charged: MoneyOut
    refund: MoneyOut
    created_at: datetime
    lines: list[BookingPublic] = Field(description="One booking per GPU, by GPU id")
