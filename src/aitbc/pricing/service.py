"""Market views and price history (read-only), and quotes (which write)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from aitbc.config import Settings
from aitbc.errors import NotFound
from aitbc.gpus.naming import named_key
from aitbc.gpus.query import average_rating
from aitbc.kit.ids import new_id
from aitbc.kit.money import divide_units
from aitbc.pricing import engine, market
from aitbc.store.conn import Conn, Row
from aitbc.store.query import Query
from aitbc.store.records import record
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


MatchKind = Literal["gpu_model", "ai_model"]


@dataclass(frozen=True, slots=True)
class Figures:
    """A model's stored (or would-be) market figures: prices in units, ratios in basis
    points."""

    base_units: int
    current_units: int
    multiplier_bp: int
    utilisation_bp: int
    recent_bookings: int
    supply: int
    at: datetime | None  # when recomputed; None: what a recomputation would give now


@dataclass(frozen=True, slots=True)
class Recommended:
    gpu_id: str
    model: str
    price_units: int
    rating_sum: int
    review_count: int
    region: str | None


@dataclass(frozen=True, slots=True)
class MarketView:
    """A model's market as a buyer and a provider see it, in units."""

    model: str
    matched: MatchKind
    gpus_total: int
    gpus_available: int
    prices: list[int]  # the listed GPUs' effective prices, ascending
    free_prices: list[int]  # those of the GPUs available now
    figures: Figures
    recommended: Recommended | None
    provider_range: tuple[int, int] | None  # the middle half of own prices, scaled
    online_gpu_ids: list[str]  # the listed GPUs whose miners are online

    @property
    def average_units(self) -> int | None:
        return divide_units(sum(self.prices), len(self.prices)) if self.prices else None

    @property
    def median_units(self) -> int | None:
        return engine.base_price_units(self.prices) if self.prices else None


@dataclass(frozen=True, slots=True)
class Quote:
    id: str
    gpu_id: str
    price_units: int
    seconds: int
    expires_at: datetime


_IS_GPU_MODEL = Query("SELECT 1 FROM gpus WHERE model_key = $1 AND delisted_at IS NULL LIMIT 1")
_IS_AI_MODEL = Query(
    "SELECT 1 FROM gpu_ai_models a JOIN gpus g ON g.id = a.gpu_id "
    "WHERE a.model_key = $1 AND g.delisted_at IS NULL LIMIT 1"
)


async def _match(conn: Conn, model: str) -> tuple[str, str, MatchKind]:
    key = named_key(model)
    if await conn.fetchval(_IS_GPU_MODEL, key) is not None:
        return "gpu", key, "gpu_model"
    if await conn.fetchval(_IS_AI_MODEL, key) is not None:
        return "ai", key, "ai_model"
    raise NotFound(
        f"No listed GPU is a {model!r} or serves it as an AI model.", code="model_not_found"
    )


def _percentile(ordered: list[int], q: int) -> int:
    return ordered[(len(ordered) - 1) * q // 100]


def _recommend(rows: list[Row]) -> Recommended | None:
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
    return record(Recommended, best, gpu_id=best["id"], price_units=best["effective_price_units"])


async def market_view(conn: Conn, *, model: str, now: datetime, settings: Settings) -> MarketView:
    kind, key, matched = await _match(conn, model)
    timeout = settings.heartbeat_timeout_seconds
    rows = await market.listed_rows(conn, kind, key, now, timeout)
    row = await market.stored(conn, kind, key)
    if row is not None:
        figures = Figures(
            row["base_price_units"],
            row["current_price_units"],
            row["multiplier_bp"],
            row["utilisation_bp"],
            row["recent_bookings"],
            row["supply"],
            maybe_time(row["updated_at"]),
        )
    else:
        preview = market.figures(None, await market.gather(conn, kind, key, now, timeout))
        inputs = preview.inputs
        figures = Figures(
            preview.base_units,
            preview.current_units,
            preview.multiplier_bp,
            inputs.utilisation,
            inputs.recent_bookings,
            inputs.supply,
            None,
        )
    own = sorted(r["price_units"] for r in rows)
    multiplier = figures.multiplier_bp
    return MarketView(
        model=model,
        matched=matched,
        gpus_total=len(rows),
        gpus_available=sum(1 for r in rows if r["status"] == "available"),
        prices=sorted(r["effective_price_units"] for r in rows),
        free_prices=sorted(r["effective_price_units"] for r in rows if r["status"] == "available"),
        figures=figures,
        recommended=_recommend(rows),
        online_gpu_ids=[r["id"] for r in rows if r["status"] in ("available", "booked")],
        provider_range=(
            engine.scale(_percentile(own, 25), multiplier),
            engine.scale(_percentile(own, 75), multiplier),
        )
        if own
        else None,
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
) -> list[Figures]:
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
        Figures(
            p["base_price_units"],
            p["current_price_units"],
            p["multiplier_bp"],
            p["utilisation_bp"],
            p["recent_bookings"],
            p["supply"],
            p["at"],
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
) -> Quote:
    gpu = await conn.fetchrow(_QUOTED_GPU, gpu_id)
    if gpu is None or gpu["delisted_at"] is not None:
        raise NotFound(f"No GPU {gpu_id!r}.", code="gpu_not_found")
    quote_id, price = new_id("quo"), gpu["effective_price_units"]
    expires_at = now + timedelta(seconds=settings.quote_ttl_seconds)
    await conn.execute(_INSERT_QUOTE, quote_id, gpu_id, client_id, price, now, expires_at)
    return Quote(quote_id, gpu_id, price, seconds, expires_at)
