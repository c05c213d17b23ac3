"""The documented pricing formula (docs/pricing.md) written again, independently of
``aitbc.pricing.engine``, in exact decimals; plus DB snapshots for the read-only checks.
Imported as ``pricing.pricing_support``.

    rush     = min(0.5, 0.1 x recent bookings / max(supply, 1))
    pressure = utilisation + rush
    target   = clamp(1 + 1.5 x (pressure - 0.7), 0.5, 3.0)
    next     = clamp(target, previous - 0.1, previous + 0.1)   (previous = 1.0 at first)
    base     = the median listed price (the lower middle for an even count)
    current  = base x next, rounded half up to 0.000001

The engine works in basis points with integer division; the reference rounds each
intermediate quantity down to a basis point the same way, so the two agree exactly."""

from __future__ import annotations

from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text

from tests.support import db

BP = Decimal("0.0001")
MICRO = Decimal("0.000001")


def floor_bp(value: Decimal) -> Decimal:
    return value.quantize(BP, rounding=ROUND_FLOOR)


def utilisation(busy: int, supply: int) -> Decimal:
    return Decimal(0) if supply <= 0 else floor_bp(Decimal(busy) / supply)


def target(util: Decimal, recent: int, supply: int) -> Decimal:
    rush = min(Decimal("0.5"), floor_bp(Decimal("0.1") * recent / max(supply, 1)))
    pressure = util + rush
    raw = floor_bp(1 + Decimal("1.5") * (pressure - Decimal("0.7")))
    return max(Decimal("0.5"), min(Decimal("3.0"), raw))


def step(previous: Decimal | None, goal: Decimal) -> Decimal:
    prev = Decimal(1) if previous is None else previous
    return max(prev - Decimal("0.1"), min(prev + Decimal("0.1"), goal))


def median_low(prices: list[Decimal]) -> Decimal:
    ordered = sorted(prices)
    return ordered[(len(ordered) - 1) // 2]


def scaled(price: Decimal, multiplier: Decimal) -> Decimal:
    return (price * multiplier).quantize(MICRO, rounding=ROUND_HALF_UP)


def money(value: Decimal | str) -> str:
    """How the API writes an amount: a string with six decimals."""
    return str(Decimal(value).quantize(MICRO))


def ratio(value: Decimal) -> str:
    """How the API writes a multiplier or utilisation: four decimals."""
    return str(value.quantize(BP))


def row_counts(app: FastAPI) -> dict[str, int]:
    """Row counts of every table, and the pricing tables' full contents."""
    from aitbc.models import Base

    counts: dict[str, Any] = {}
    with db.engine(app).connect() as conn:
        for table in Base.metadata.sorted_tables:
            counts[table.name] = conn.execute(text(f'SELECT COUNT(*) FROM "{table.name}"')).scalar()
    return counts


def pricing_rows(app: FastAPI) -> dict[str, list[tuple[Any, ...]]]:
    with db.engine(app).connect() as conn:
        prices = conn.execute(text("SELECT * FROM model_prices ORDER BY kind, model_key")).all()
        history = conn.execute(text("SELECT * FROM price_history ORDER BY id")).all()
    return {
        "model_prices": [tuple(r) for r in prices],
        "price_history": [tuple(r) for r in history],
    }


def effective_units(app: FastAPI, gpu_id: str) -> Any:
    """The stored effective price of a GPU, exactly as the database returns it."""
    with db.engine(app).connect() as conn:
        return conn.execute(
            text("SELECT effective_price_units FROM gpus WHERE id = :g"), {"g": gpu_id}
        ).scalar()


def revision(app: FastAPI, gpu_id: str) -> Any:
    """The GPU row's revision (moved by every write of the row)."""
    with db.engine(app).connect() as conn:
        return conn.execute(text("SELECT revision FROM gpus WHERE id = :g"), {"g": gpu_id}).scalar()
