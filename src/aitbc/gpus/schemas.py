from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from aitbc.kit.copying import built
from aitbc.kit.money import MoneyOut, PositivePriceIn, PriceIn, PriceQuery
from aitbc.kit.paging import MAX_OFFSET
from aitbc.kit.types import JSON_INTEGER, RequestModel
from aitbc.miners.listings import Change, Listing

GpuStatus = Literal["available", "booked", "offline", "delisted"]
PricingMode = Literal["fixed", "dynamic"]
SortKey = Literal["price", "memory", "rating", "newest", "uptime", "bid", "cleared"]

# Python's whitespace (what str.strip() removes), and NUL: a name needs one other character.
_BLANK = (
    r"\u0000\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
)
# A model name: not blank, at most 128 characters as sent (its use strips it), no NUL; the
# pattern is the document's too, so the two agree.
ModelName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=128, pattern=rf"^[^\u0000]*[^{_BLANK}][^\u0000]*$"),
]
AiModelList: Any = Field(default_factory=list, max_length=64)


class GpuSpec(RequestModel):
    """What the CLI sends as ``{"gpu": {...}}``; ``name`` is the GPU model."""

    name: ModelName
    memory_gb: Annotated[int, Field(ge=0, le=4096), JSON_INTEGER] | None = None
    cuda_cores: Annotated[int, Field(ge=0, le=10_000_000), JSON_INTEGER] | None = None
    compute_capability: str | None = Field(default=None, max_length=16)
    price_per_hour: PriceIn | None = None
    description: str | None = Field(default=None, max_length=2000)
    region: str | None = Field(default=None, max_length=64)
    cuda_version: str | None = Field(default=None, max_length=16)
    ai_models: list[ModelName] = AiModelList
    pricing_mode: PricingMode = "fixed"

    def listing(self) -> Listing:
        return built(Listing, self, price=self.price_per_hour, ai_models=list(self.ai_models))


class GpuRegister(RequestModel):
    gpu: GpuSpec


class GpuRegistered(BaseModel):
    gpu_id: str
    miner_id: str
    status: GpuStatus


class GpuUpdate(RequestModel):
    price_per_hour: PriceIn | None = None
    description: str | None = Field(default=None, max_length=2000)
    pricing_mode: PricingMode | None = None
    interruptible: bool | None = Field(
        default=None, description="Whether the GPU may be rented interruptibly, by bids."
    )
    min_bid_per_hour: PositivePriceIn | None = Field(
        default=None,
        description="The least interruptible bid it takes; null: AITBC_MIN_BID_SHARE of its price.",
    )

    def change(self) -> Change:
        return Change(
            price=self.price_per_hour,
            pricing_mode=self.pricing_mode,
            describe="description" in self.model_fields_set,
            description=self.description,
            interruptible=self.interruptible,
            set_min_bid="min_bid_per_hour" in self.model_fields_set,
            min_bid=self.min_bid_per_hour,
        )


class ClearingPrice(BaseModel):
    at: datetime = Field(description="When the winning interruptible booking was made")
    bid_per_hour: MoneyOut


class GpuMarket(BaseModel):
    """What the GPU costs now (docs/market.md)."""

    on_demand_price_per_hour: MoneyOut
    interruptible: bool
    min_bid_per_hour: MoneyOut = Field(description="The least interruptible bid it takes")
    held_by: Literal["on_demand", "interruptible"] | None = Field(
        description="The rental type of the booking holding it now (null: free)"
    )
    held_until: datetime | None
    lowest_winning_bid: MoneyOut | None = Field(
        description="The lowest interruptible bid that would win it now; null when none "
        "can (held on demand, or no bid below the on-demand price would)"
    )
    recent_clearing_prices: list[ClearingPrice] = Field(
        description="The bids of its latest interruptible bookings, newest first"
    )


class GpuPublic(BaseModel):
    gpu_id: str
    miner_id: str
    model: str
    memory_gb: int
    cuda_cores: int | None
    compute_capability: str | None
    cuda_version: str | None
    region: str | None
    price_per_hour: MoneyOut = Field(description="What a booking pays per hour now")
    base_price_per_hour: MoneyOut = Field(description="The miner's own price")
    pricing_mode: PricingMode
    interruptible: bool = Field(description="Whether it may be rented interruptibly, by bids")
    min_bid_per_hour: MoneyOut | None = Field(
        description="The provider's least interruptible bid; null: AITBC_MIN_BID_SHARE of "
        "the price (a GPU's details show the figure in `market`)"
    )
    status: GpuStatus
    ai_models: list[str]
    description: str | None
    average_rating: Decimal | None = Field(description="Mean of visible reviews, 2 decimals")
    review_count: int
    total_bookings: int
    booking_expires: datetime | None
    next_reservation_at: datetime | None = Field(
        description="When the next reservation of this GPU begins (none: null)"
    )
    created_at: datetime
    last_heartbeat: datetime
    health: dict[str, Any] = Field(
        description="The latest heartbeat's figures for this GPU (utilization_pct, "
        "memory_used_gb, memory_total_gb, temperature_c, as reported); `{}` before any"
    )
    health_at: datetime | None = Field(description="When those figures were reported")
    uptime_24h_pct: Decimal = Field(
        description="Share of the last 24 hours (or of the time since the miner first "
        "registered, when shorter) its miner was online, in percent with 2 decimals; "
        "refreshed every minute"
    )
    uptime_7d_pct: Decimal = Field(description="The same over the last 7 days")
    lowest_winning_bid: MoneyOut | None = Field(
        None,
        description="Only in a list sorted or filtered by bid: the lowest interruptible bid "
        "that wins it now (null: none does; see a GPU's details, `market`)",
    )
    last_clearing_price: MoneyOut | None = Field(
        None,
        description="Only in a list sorted or filtered by clearing price: the bid of its "
        "newest interruptible booking (null: never rented interruptibly; see a GPU's "
        "details, `market.recent_clearing_prices`)",
    )


class GpuListQuery(BaseModel):
    """The list's query parameters (validated by one model call: see http.params)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    available: bool | None = Field(None, description="Only GPUs that can be booked now")
    model: str | None = Field(
        None, max_length=128, description="Case-insensitive substring; `*` matches anything"
    )
    memory_min: int | None = Field(None, ge=0, le=4096, description="Minimum memory in GB")
    price_max: PriceQuery | None = Field(None, description="Maximum price per hour")
    region: str | None = Field(None, max_length=64, description="Exact region, any case")
    status: GpuStatus | None = None
    miner_id: str | None = Field(None, max_length=128)
    ai_model: str | None = Field(None, max_length=128, description="Serves this AI model")
    bid_max: PriceQuery | None = Field(
        None,
        description="Only GPUs that an interruptible bid of at most this per hour wins now "
        "(their `market.lowest_winning_bid`, as a GPU's details show it)",
    )
    cleared_max: PriceQuery | None = Field(
        None,
        description="Only GPUs whose newest interruptible booking bid at most this per hour "
        "(the price they last cleared at: `market.recent_clearing_prices[0]` in a GPU's "
        "details)",
    )
    sort: SortKey = Field(
        "price",
        description="price (cheapest first), memory (largest first), rating (best first), "
        "newest, uptime (most reliable over 7 days first), bid (the lowest bid that wins "
        "it now first; GPUs no bid wins now last), or cleared (the price it last cleared "
        "at, lowest first; GPUs never rented interruptibly last)",
    )
    limit: int = Field(20, ge=1, le=500)
    offset: int = Field(0, ge=0, le=MAX_OFFSET, description="Rows to skip")
    cursor: str | None = Field(
        None,
        max_length=512,
        description="Continue after the page whose `X-Next-Cursor` header this is (keyset "
        "paging: stable, and as fast on the last page as on the first). Use instead of "
        "`offset`.",
    )


class GpuDetail(GpuPublic):
    market: GpuMarket
