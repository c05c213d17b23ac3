from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aitbc.kit.hours import HoursIn
from aitbc.kit.money import MoneyOut

MatchKind = Literal["gpu_model", "ai_model"]


class Demand(BaseModel):
    utilisation: Decimal = Field(description="Share of the model's online GPUs booked now")
    recent_bookings: int = Field(description="Bookings made in the last window")
    window_minutes: int
    supply: int = Field(description="Listed GPUs of the model that are online")


class RecommendedGpu(BaseModel):
    gpu_id: str
    model: str
    price_per_hour: MoneyOut
    average_rating: Decimal | None
    review_count: int
    region: str | None


class PriceRange(BaseModel):
    low: MoneyOut
    high: MoneyOut


class ModelPricing(BaseModel):
    model: str
    matched: MatchKind
    gpus_total: int
    gpus_available: int
    price_min: MoneyOut | None = Field(description="Lowest price per hour of the listed GPUs")
    price_max: MoneyOut | None = Field(description="Highest price per hour of the listed GPUs")
    price_average: MoneyOut | None
    price_median: MoneyOut | None
    booking_price_range: PriceRange | None = Field(
        description="What a booking costs per hour now: the cheapest and the dearest available "
        "GPU of the model (each GPU books at its own price_per_hour); null when none is free"
    )
    base_price: MoneyOut = Field(description="The median of the GPUs' own prices")
    current_price: MoneyOut = Field(
        description="The market price: the base price times the demand multiplier. GPUs in "
        "dynamic pricing mode follow it; a booking pays its GPU's price_per_hour"
    )
    demand_multiplier: Decimal
    demand: Demand
    updated_at: datetime | None = Field(
        description="When the market price was last recomputed; null: not yet, figures are "
        "what a recomputation would give now."
    )
    recommended_gpu: RecommendedGpu | None
    recommendation_rule: str
    provider_price_range: PriceRange | None
    provider_price_rule: str


class PricePoint(BaseModel):
    at: datetime
    base_price: MoneyOut
    current_price: MoneyOut
    demand_multiplier: Decimal
    utilisation: Decimal
    recent_bookings: int
    supply: int


class QuoteRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    duration_hours: HoursIn


class QuotePublic(BaseModel):
    quote_id: str
    gpu_id: str
    price_per_hour: MoneyOut
    duration_hours: Decimal
    total_cost: MoneyOut
    expires_at: datetime
