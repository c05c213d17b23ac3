from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from pydantic import BaseModel, Field

from aitbc.gpus.query import average_rating
from aitbc.kit.clock import hours_from_seconds
from aitbc.kit.copying import copied
from aitbc.kit.hours import HoursIn
from aitbc.kit.money import MoneyOut, divide_units, from_units
from aitbc.kit.types import RequestModel
from aitbc.pricing import engine, market
from aitbc.pricing.service import (
    PROVIDER_RULE,
    RECOMMENDATION_RULE,
    Figures,
    MarketView,
    MatchKind,
    Quote,
    Recommended,
)


def ratio(bp: int) -> Decimal:
    """Basis points as a ratio with four places."""
    return (Decimal(bp) / engine.BP).quantize(Decimal("0.0001"))


def _range(low_high: tuple[int, int] | None) -> PriceRange | None:
    return (
        None
        if low_high is None
        else PriceRange(low=from_units(low_high[0]), high=from_units(low_high[1]))
    )


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

    @classmethod
    def of(cls, best: Recommended) -> RecommendedGpu:
        return copied(
            cls,
            best,
            price_per_hour=from_units(best.price_units),
            average_rating=average_rating(best.rating_sum, best.review_count),
        )


class PriceRange(BaseModel):
    low: MoneyOut
    high: MoneyOut


class ClearingPrice(BaseModel):
    at: datetime = Field(description="When the winning interruptible booking was made")
    bid_per_hour: MoneyOut


class InterruptibleMarket(BaseModel):
    """Interruptible rentals of the model's online GPUs (docs/market.md)."""

    gpus_open_to_bids: int = Field(description="Online GPUs whose providers take bids")
    lowest_winning_bid: MoneyOut | None = Field(
        description="The lowest interruptible bid that would win one of them now; null: "
        "none can be won by a bid now"
    )
    recent_clearing_prices: list[ClearingPrice] = Field(
        description="The bids of the latest interruptible bookings of the model's GPUs, "
        "newest first"
    )


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
    interruptible: InterruptibleMarket

    @classmethod
    def of(cls, view: MarketView, interruptible: dict[str, Any]) -> ModelPricing:
        prices, free, f = view.prices, view.free_prices, view.figures
        return copied(
            cls,
            view,
            price_min=from_units(prices[0]) if prices else None,
            price_max=from_units(prices[-1]) if prices else None,
            price_average=None if view.average_units is None else from_units(view.average_units),
            price_median=None if view.median_units is None else from_units(view.median_units),
            booking_price_range=_range((free[0], free[-1]) if free else None),
            base_price=from_units(f.base_units),
            current_price=from_units(f.current_units),
            demand_multiplier=ratio(f.multiplier_bp),
            demand=Demand(
                utilisation=ratio(f.utilisation_bp),
                recent_bookings=f.recent_bookings,
                window_minutes=int(market.RECENT_WINDOW.total_seconds() // 60),
                supply=f.supply,
            ),
            updated_at=f.at,
            recommended_gpu=None
            if view.recommended is None
            else RecommendedGpu.of(view.recommended),
            recommendation_rule=RECOMMENDATION_RULE,
            provider_price_range=_range(view.provider_range),
            provider_price_rule=PROVIDER_RULE,
            interruptible=InterruptibleMarket.model_validate(interruptible),
        )


class PricePoint(BaseModel):
    at: datetime
    base_price: MoneyOut
    current_price: MoneyOut
    demand_multiplier: Decimal
    utilisation: Decimal
    recent_bookings: int
    supply: int

    @classmethod
    def of(cls, f: Figures) -> PricePoint:
        assert f.at is not None  # a stored point
        return copied(
            cls,
            f,
            base_price=from_units(f.base_units),
            current_price=from_units(f.current_units),
            demand_multiplier=ratio(f.multiplier_bp),
            utilisation=ratio(f.utilisation_bp),
        )


class QuoteRequest(RequestModel):
    duration_hours: HoursIn


class QuotePublic(BaseModel):
    quote_id: str
    gpu_id: str
    rental_type: Literal["on_demand"] = Field(
        default="on_demand",
        description="A quote holds an on-demand price; an interruptible booking pays its bid",
    )
    price_per_hour: MoneyOut
    duration_hours: Decimal
    total_cost: MoneyOut
    expires_at: datetime

    @classmethod
    def of(cls, quote: Quote) -> QuotePublic:
        return copied(
            cls,
            quote,
            quote_id=quote.id,
            price_per_hour=from_units(quote.price_units),
            duration_hours=hours_from_seconds(quote.seconds),
            total_cost=from_units(divide_units(quote.price_units * quote.seconds, 3600)),
        )
