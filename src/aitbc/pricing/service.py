"""Market views and price history (read-only), and quotes (which write)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from aitbc.config import Settings
from aitbc.errors import NotFound
from aitbc.gpus.naming import model_key
from aitbc.gpus.query import average_rating
from aitbc.kit.clock import hours_from_seconds
from aitbc.kit.ids import new_id
from aitbc.kit.money import divide_units, from_units
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
from aitbc.store.conn import Conn, Row
from aitbc.store.query import Query
from aitbc.store.values import as_time, maybe_time

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


_IS_GPU_MODEL = Query("SELECT 1 FROM gpus WHERE model_key = $1 AND delisted_at IS NULL LIMIT 1")
_IS_AI_MODEL = Query(
    "SELECT 1 FROM gpu_ai_models a JOIN gpus g ON g.id = a.gpu_id "
    "WHERE a.model_key = $1 AND g.delisted_at IS NULL LIMIT 1"
)


async def _match(conn: Conn, model: str) -> tuple[str, str, MatchKind]:
    key = model_key(model)
    if await conn.fetchval(_IS_GPU_MODEL, key) is not None:
        return "gpu", key, "gpu_model"
    if await conn.fetchval(_IS_AI_MODEL, key) is not None:
        return "ai", key, "ai_model"
    raise NotFound(
        f"No listed GPU is a {model!r} or serves it as an AI model.", code="model_not_found"
    )


def _percentile(ordered: list[int], q: int) -> int:
    return ordered[(len(ordered) - 1) * q // 100]


def _recommend(rows: list[Row]) -> RecommendedGpu | None:
    available = [row for row in rows if row["status"] == "available"]
    if not available:
        return None

    def rating(gpu: Row) -> Decimal:
        return average_rating(gpu["rating_sum"], gpu["review_count"]) or Decimal(0)

    well_rated = [g for g in available if g["review_count"] and rating(g) >= WELL_RATED]
    pool = well_rated or available
    best = min(
        pool,
        key=lambda g: (g["effective_price_units"], -rating(g), -g["review_count"], g["id"]),
    )
    return RecommendedGpu(
        gpu_id=best["id"],
        model=best["model"],
        price_per_hour=from_units(best["effective_price_units"]),
        average_rating=average_rating(best["rating_sum"], best["review_count"]),
        review_count=best["review_count"],
        region=best["region"],
    )


async def market_view(conn: Conn, *, model: str, now: datetime, settings: Settings) -> ModelPricing:
    kind, key, matched = await _match(conn, model)
    timeout = settings.heartbeat_timeout_seconds
    rows = await market.listed_rows(conn, kind, key, now, timeout)
    row = await market.stored(conn, kind, key)
    if row is not None:
        base, current = row["base_price_units"], row["current_price_units"]
        multiplier, utilisation = row["multiplier_bp"], row["utilisation_bp"]
        recent, supply = row["recent_bookings"], row["supply"]
    else:
        preview = market.figures(None, await market.gather(conn, kind, key, now, timeout))
        base, current, multiplier = preview.base_units, preview.current_units, preview.multiplier_bp
        utilisation, recent = preview.inputs.utilisation, preview.inputs.recent_bookings
        supply = preview.inputs.supply
    prices = sorted(r["effective_price_units"] for r in rows)
    free = sorted(r["effective_price_units"] for r in rows if r["status"] == "available")
    own_prices = sorted(r["price_units"] for r in rows)
    return ModelPricing(
        model=model,
        matched=matched,
        gpus_total=len(rows),
        gpus_available=sum(1 for r in rows if r["status"] == "available"),
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
        updated_at=maybe_time(row["updated_at"]) if row else None,
        recommended_gpu=_recommend(rows),
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


_HISTORY = Query(
    "SELECT at, base_price_units, current_price_units, multiplier_bp, utilisation_bp, "
    "recent_bookings, supply FROM price_history WHERE kind = $1 AND model_key = $2 "
    "AND at >= $3 ORDER BY at, id"
)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


async def history(
    conn: Conn, *, model: str, since: datetime | None, bucket: str, limit: int
) -> list[PricePoint]:
    """The stored series; with a bucket, the last recomputation in each hour or day."""
    kind, key, _ = await _match(conn, model)
    points = [
        {**row, "at": as_time(row["at"])}
        for row in await conn.fetch(_HISTORY, kind, key, since or _EPOCH)
    ]
    if bucket in _BUCKETS:
        width = _BUCKETS[bucket].total_seconds()
        last: dict[int, dict[str, Any]] = {}
        for point in points:
            last[int(point["at"].timestamp() // width)] = point
        points = list(last.values())
    return [
        PricePoint(
            at=p["at"],
            base_price=from_units(p["base_price_units"]),
            current_price=from_units(p["current_price_units"]),
            demand_multiplier=_ratio(p["multiplier_bp"]),
            utilisation=_ratio(p["utilisation_bp"]),
            recent_bookings=p["recent_bookings"],
            supply=p["supply"],
        )
        for p in points[-limit:]
    ]


_QUOTED_GPU = Query("SELECT effective_price_units, delisted_at FROM gpus WHERE id = $1")
_INSERT_QUOTE = Query(
    "INSERT INTO quotes (id, gpu_id, client_id, price_units, created_at, expires_at) "
    "VALUES ($1, $2, $3, $4, $5, $6)"
)


async def create_quote(
    conn: Conn,
    *,
    gpu_id: str,
    client_id: str,
    seconds: int,
    now: datetime,
    settings: Settings,
) -> QuotePublic:
    gpu = await conn.fetchrow(_QUOTED_GPU, gpu_id)
    if gpu is None or gpu["delisted_at"] is not None:
        raise NotFound(f"No GPU {gpu_id!r}.", code="gpu_not_found")
    quote_id, price = new_id("quo"), gpu["effective_price_units"]
    expires_at = now + timedelta(seconds=settings.quote_ttl_seconds)
    await conn.execute(_INSERT_QUOTE, quote_id, gpu_id, client_id, price, now, expires_at)
    return QuotePublic(
        quote_id=quote_id,
        gpu_id=gpu_id,
        price_per_hour=from_units(price),
        duration_hours=hours_from_seconds(seconds),
        total_cost=from_units(divide_units(price * seconds, 3600)),
        expires_at=expires_at,
    )
