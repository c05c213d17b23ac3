"""Shortcuts for the review tests: posting and reading reviews, the stored aggregates, and
the reference average. A review needs a *started* booking: ``Market.used`` makes one."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from fastapi import FastAPI
from sqlalchemy import text

from tests.support import db
from tests.support.api import Api
from tests.support.gpus import gpu_path


def reviews_path(gpu_id: str) -> str:
    return f"{gpu_path(gpu_id)}/reviews"


def dec(value: Any) -> Decimal | None:
    """A decimal from the wire (a string such as "4.50"), None for null."""
    return None if value is None else Decimal(str(value))


def when(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


def post_review(
    api: Api, key: str, gpu_id: str, rating: Any, comment: Any = None, **extra: Any
) -> Any:
    return api.call(
        "POST", reviews_path(gpu_id), key, json={"rating": rating, "comment": comment, **extra}
    )


def public_reviews(api: Api, gpu_id: str, **params: Any) -> Any:
    response = api.call("GET", reviews_path(gpu_id), params=params)
    assert response.status_code == 200, response.text
    return response.json()


def stored_aggregates(app: FastAPI, gpu_id: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """(the GPU's rating_sum and review_count, the same recomputed from its visible reviews)."""
    with db.engine(app).connect() as conn:
        kept = conn.execute(
            text("SELECT rating_sum, review_count FROM gpus WHERE id = :g"), {"g": gpu_id}
        ).one()
        recount = conn.execute(
            text(
                "SELECT COALESCE(SUM(rating), 0), COUNT(*) FROM reviews "
                "WHERE gpu_id = :g AND hidden_at IS NULL"
            ),
            {"g": gpu_id},
        ).one()
    return (int(kept[0]), int(kept[1])), (int(recount[0]), int(recount[1]))


def average(ratings: list[int]) -> Decimal | None:
    """The mean of the ratings to two decimals, half up (None when there are none)."""
    if not ratings:
        return None
    return (Decimal(sum(ratings)) / len(ratings)).quantize(Decimal("0.01"), "ROUND_HALF_UP")
