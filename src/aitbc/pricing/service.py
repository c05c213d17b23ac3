"""Market views and price history (read-only), and quotes (which write)."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy import exists, select, update
from sqlalchemy.orm import Session

from aitbc.config import Settings
from aitbc.errors import Conflict, Invalid, NotFound
from aitbc.gpus.naming import model_key
from aitbc.gpus.query import average_rating
from aitbc.kit.clock import hours_from_seconds
from aitbc.kit.ids import new_id
from aitbc.kit.money import divide_units, from_units
from aitbc.models import Gpu, GpuAiModel, PriceHistory, Quote
from aitbc.pricing import engine, market
from aitbc.pricing.schemas import (
    Demand,
    MatchKind,
    ModelPricing,
    PricePoint,
    PriceRange,
    QuotePublic,
    RecommendedGpu,
)

WELL_RATED = Decimal("4.00")
RECOMMENDATION_RULE = (
    "The cheapest available GPU among those rated 4.00 or better; if none is, the cheapest "
    "available one. Ties go to the higher rating, then more reviews."
)
PROVIDER_RULE = (
    "The middle half (25th to 75th percentile) of the model's listed prices, scaled by its "
    "current demand multiplier."
)


def _ratio(bp: int) -> Decimal:
    return (Decimal(bp) / engine.BP).quantize(Decimal("0.0001"))


def _match(session: Session, model: str) -> tuple[str, str, MatchKind]:
    key = model_key(model)
    listed = Gpu.delisted_at.is_(None)
    if session.scalar(select(exists().where(Gpu.model_key == key, listed))):
        return "gpu", key, "gpu_model"
    served = exists().where(GpuAiModel.model_key == key, GpuAiModel.gpu_id == Gpu.id, listed)
    if session.scalar(select(served)):
        return "ai", key, "ai_model"
    raise NotFound(
        f"No listed GPU is a {model!r} or serves it as an AI model.", code="model_not_found"
    )


def _percentile(ordered: list[int], q: int) -> int:
    return ordered[(len(ordered) - 1) * q // 100]


def _recommend(rows: list, now: datetime) -> RecommendedGpu | None:  # type: ignore[type-arg]
    available = [row[0] for row in rows if row.status == "available"]
    if not available:
        return None

    def rating(gpu: Gpu) -> Decimal:
        return average_rating(gpu.rating_sum, gpu.review_count) or Decimal(0)

    well_rated = [g for g in available if g.review_count and rating(g) >= WELL_RATED]
    pool = well_rated or available
    best = min(pool, key=lambda g: (g.effective_price_units, -rating(g), -g.review_count, g.id))
    return RecommendedGpu(
        gpu_id=best.id,
        model=best.model,
        price_per_hour=from_units(best.effective_price_units),
        average_rating=average_rating(best.rating_sum, best.review_count),
        review_count=best.review_count,
        region=best.region,
    )


def market_view(session: Session, *, model: str, now: datetime, settings: Settings) -> ModelPricing:
    kind, key, matched = _match(session, model)
    timeout = settings.heartbeat_timeout_seconds
    rows = market.listed_rows(session, kind, key, now, timeout)
    row = market.stored(session, kind, key)
    if row is not None:
        base, current, multiplier = row.base_price_units, row.current_price_units, row.multiplier_bp
        utilisation, recent, supply = row.utilisation_bp, row.recent_bookings, row.supply
    else:
        preview = market.figures(None, market.gather(session, kind, key, now, timeout))
        base, current, multiplier = preview.base_units, preview.current_units, preview.multiplier_bp
        utilisation, recent = preview.inputs.utilisation, preview.inputs.recent_bookings
        supply = preview.inputs.supply
    prices = sorted(r[0].effective_price_units for r in rows)
    free = sorted(r[0].effective_price_units for r in rows if r.status == "available")
    own_prices = sorted(r[0].price_units for r in rows)
    return ModelPricing(
        model=model,
        matched=matched,
        gpus_total=len(rows),
        gpus_available=sum(1 for r in rows if r.status == "available"),
        price_min=from_units(prices[0]) if prices else None,
        price_max=from_units(prices[-1]) if prices else None,
        price_average=from_units(divide_units(sum(prices), len(prices))) if prices else None,
        price_median=from_units(engine.base_price_units(prices)) if prices else None,
        booking_price_range=PriceRange(low=from_units(free[0]), high=from_units(free[-1]))
        if free
        else None,
        base_price=from_units(base),
        current_price=from_units(current),
        demand_multiplier=_ratio(multiplier),
        demand=Demand(
            utilisation=_ratio(utilisation),
            recent_bookings=recent,
            window_minutes=int(market.RECENT_WINDOW.total_seconds() // 60),
            supply=supply,
        ),
        updated_at=row.updated_at if row else None,
        recommended_gpu=_recommend(rows, now),
        recommendation_rule=RECOMMENDATION_RULE,
        provider_price_range=PriceRange(
            low=from_units(engine.scale(_percentile(own_prices, 25), multiplier)),
            high=from_units(engine.scale(_percentile(own_prices, 75), multiplier)),
        )
        if own_prices
        else None,
        provider_price_rule=PROVIDER_RULE,
    )


_BUCKETS = {"hour": timedelta(hours=1), "day": timedelta(days=1)}


def history(
    session: Session, *, model: str, since: datetime | None, bucket: str, limit: int
) -> list[PricePoint]:
    """The stored series; with a bucket, the last recomputation in each hour or day."""
    kind, key, _ = _match(session, model)
    query = select(PriceHistory).where(PriceHistory.kind == kind, PriceHistory.model_key == key)
    if since is not None:
        query = query.where(PriceHistory.at >= since)
    points = list(session.scalars(query.order_by(PriceHistory.at, PriceHistory.id)))
    if bucket in _BUCKETS:
        width = _BUCKETS[bucket].total_seconds()
        last: dict[int, PriceHistory] = {}
        for point in points:
            last[int(point.at.timestamp() // width)] = point
        points = list(last.values())
    return [
        PricePoint(
            at=p.at,
            base_price=from_units(p.base_price_units),
            current_price=from_units(p.current_price_units),
            demand_multiplier=_ratio(p.multiplier_bp),
            utilisation=_ratio(p.utilisation_bp),
            recent_bookings=p.recent_bookings,
            supply=p.supply,
        )
        for p in points[-limit:]
    ]


def create_quote(
    session: Session,
    *,
    gpu_id: str,
    client_id: str,
    seconds: int,
    now: datetime,
    settings: Settings,
) -> QuotePublic:
    gpu = session.get(Gpu, gpu_id)
    if gpu is None or gpu.delisted_at is not None:
        raise NotFound(f"No GPU {gpu_id!r}.", code="gpu_not_found")
    quote = Quote(
        id=new_id("quo"),
        gpu_id=gpu_id,
        client_id=client_id,
        price_units=gpu.effective_price_units,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.quote_ttl_seconds),
    )
    session.add(quote)
    session.flush()
    return QuotePublic(
        quote_id=quote.id,
        gpu_id=gpu_id,
        price_per_hour=from_units(quote.price_units),
        duration_hours=hours_from_seconds(seconds),
        total_cost=from_units(divide_units(quote.price_units * seconds, 3600)),
        expires_at=quote.expires_at,
    )


def redeem_quote(
    session: Session, *, quote_id: str, gpu_id: str, client_id: str, now: datetime
) -> int:
    """The quoted price per hour, once; the quote is spent by the booking that uses it."""
    quote = session.get(Quote, quote_id)
    if quote is None or quote.client_id != client_id:
        raise NotFound(f"No quote {quote_id!r}.", code="quote_not_found")
    if quote.gpu_id != gpu_id:
        raise Invalid("This quote is for another GPU.", code="quote_mismatch")
    if now >= quote.expires_at:
        raise Conflict("This quote has expired; ask for a new one.", code="quote_expired")
    spent = session.execute(
        update(Quote)
        .where(Quote.id == quote_id, Quote.used_at.is_(None))
        .values(used_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount  # type: ignore[attr-defined]
    if spent != 1:
        raise Conflict("This quote has already been used.", code="quote_used")
    return quote.price_units
