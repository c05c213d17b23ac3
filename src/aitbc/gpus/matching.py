"""Choosing GPUs for bids and jobs: available now, meeting the constraints, cheapest first,
then the best rated, then the most reviewed."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from aitbc.gpus.naming import like_pattern
from aitbc.gpus.query import status_columns
from aitbc.models import Gpu, GpuAiModel, Miner

RULE = "cheapest available GPU that meets the constraints, then best rated, then most reviewed"


@dataclass(frozen=True, slots=True)
class Constraints:
    gpu_model_key: str | None = None
    memory_min_gb: int | None = None
    ai_model_key: str | None = None
    region: str | None = None
    max_price_units: int | None = None
    miner_id: str | None = None


def candidates(
    session: Session,
    *,
    constraints: Constraints,
    now: datetime,
    heartbeat_timeout: int,
    exclude: Collection[str] = (),
    limit: int = 5,
) -> list[str]:
    status, _ = status_columns(now, heartbeat_timeout)
    rating = Gpu.rating_sum * 1.0 / func.nullif(Gpu.review_count, 0)
    query = (
        select(Gpu.id)
        .join(Miner, Miner.id == Gpu.miner_id)
        .where(Gpu.delisted_at.is_(None), status == "available")
    )
    c = constraints
    if c.gpu_model_key:
        query = query.where(Gpu.model_key.like(like_pattern(c.gpu_model_key), escape="\\"))
    if c.memory_min_gb is not None:
        query = query.where(Gpu.memory_gb >= c.memory_min_gb)
    if c.ai_model_key:
        query = query.where(
            Gpu.id.in_(select(GpuAiModel.gpu_id).where(GpuAiModel.model_key == c.ai_model_key))
        )
    if c.region:
        query = query.where(func.lower(Gpu.region) == c.region.lower())
    if c.max_price_units is not None:
        query = query.where(Gpu.effective_price_units <= c.max_price_units)
    if c.miner_id:
        query = query.where(Gpu.miner_id == c.miner_id)
    if exclude:
        query = query.where(Gpu.id.not_in(list(exclude)))
    query = query.order_by(
        Gpu.effective_price_units.asc(),
        rating.desc().nulls_last(),
        Gpu.review_count.desc(),
        Gpu.id.asc(),
    )
    return list(session.scalars(query.limit(limit)))
