"""The GPU filters that every search shares (the list, and the matching of bids and jobs):
each a condition on ``g`` (gpus) whose value goes in as a numbered parameter."""

from __future__ import annotations

from aitbc.store.query import Params


def conditions(
    params: Params,
    *,
    region: str | None = None,
    memory_min: int | None = None,
    price_max_units: int | None = None,
    miner_id: str | None = None,
    ai_model_key: str | None = None,
) -> list[str]:
    """The conditions for the filters given (None: not filtered on)."""
    where = []
    if region:
        where.append(f"lower(g.region) = {params.add(region.lower())}")
    if memory_min is not None:
        where.append(f"g.memory_gb >= {params.add(memory_min)}")
    if price_max_units is not None:
        where.append(f"g.effective_price_units <= {params.add(price_max_units)}")
    if miner_id:
        where.append(f"g.miner_id = {params.add(miner_id)}")
    if ai_model_key:
        where.append(
            "g.id IN (SELECT a.gpu_id FROM gpu_ai_models a "
            f"WHERE a.model_key = {params.add(ai_model_key)})"
        )
    return where
