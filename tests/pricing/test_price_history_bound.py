"""The price history stays bounded: every point of the last 24 hours, then the last point of
each hour back to 90 days, nothing older (pruned by the sweeper once an hour)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from aitbc.db import create_db_engine
from aitbc.models import PriceHistory
from tests.support.api import Api

HISTORY = "/v1/marketplace/pricing/rtx4090/history"


def _points(database_url: str) -> list[Any]:
    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            return list(session.scalars(select(PriceHistory.at).order_by(PriceHistory.at)))
    finally:
        engine.dispose()


def test_the_sweeper_thins_out_and_drops_old_points(
    api: Api, app: FastAPI, database_url: str
) -> None:
    api.register_gpu(api.key("miner", "m-1"), name="RTX 4090")
    now = api.clock.now()
    # Every ten minutes for four days, and a day of points 100 days back.
    moments = [now - timedelta(minutes=10 * i) for i in range(1, 4 * 144 + 1)]
    moments += [now - timedelta(days=100, minutes=10 * i) for i in range(144)]
    row = {"kind": "gpu", "model_key": "rtx4090", "base_price_units": 500_000}
    row |= {"current_price_units": 500_000, "multiplier_bp": 10_000, "utilisation_bp": 0}
    row |= {"recent_bookings": 0, "supply": 1}
    engine = create_db_engine(database_url)
    try:
        with Session(engine) as session:
            session.execute(insert(PriceHistory), [row | {"at": at} for at in sorted(moments)])
            session.commit()
    finally:
        engine.dispose()
    hourly_before = api.call("GET", HISTORY, params={"bucket": "hour", "limit": 5000}).json()

    app.state.sweeper.run_once()

    kept = [at for at in _points(database_url) if at < now]
    recent = [at for at in kept if at >= now - timedelta(hours=24)]
    older = [at for at in kept if at < now - timedelta(hours=24)]
    assert len(recent) == 144  # all of the last day, one every ten minutes
    assert len(older) == 3 * 24  # one per hour for the three days before
    assert len({at.replace(minute=0, second=0, microsecond=0) for at in older}) == 72
    assert min(kept) > now - timedelta(days=90)
    hourly_after = api.call("GET", HISTORY, params={"bucket": "hour", "limit": 5000}).json()
    assert [p for p in hourly_after if p["at"] in {q["at"] for q in hourly_before}] == [
        p for p in hourly_before if now - timedelta(days=90) <= _at(p) < now
    ]


def _at(point: dict[str, Any]) -> Any:
    from datetime import datetime

    return datetime.fromisoformat(point["at"])
