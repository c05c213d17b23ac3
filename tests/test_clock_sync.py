"""Nodes go by the database's clock: a node whose own clock is off still bills and judges
presence by the database's time, so two nodes whose clocks differ agree on "now"."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from aitbc.app import create_app
from aitbc.clock_sync import step
from aitbc.config import Settings
from aitbc.kit.clock import DatabaseClock, SystemClock
from aitbc.store.store import Store
from tests.support.api import PG_URL

T0 = datetime(2031, 5, 1, 12, 0, tzinfo=UTC)


def test_the_database_time_stood_at_the_middle_of_the_round_trip() -> None:
    local = [T0]
    clock = DatabaseClock(local=lambda: local[0])
    sent, received = T0, T0 + timedelta(seconds=2)
    offset = clock.step(sent, T0 + timedelta(seconds=6), received)
    assert offset == timedelta(seconds=5)
    local[0] = T0 + timedelta(seconds=10)
    assert clock.now() == T0 + timedelta(seconds=15)


def _skewed(seconds: float) -> DatabaseClock:
    return DatabaseClock(local=lambda: datetime.now(UTC) + timedelta(seconds=seconds))


def test_two_nodes_whose_clocks_are_five_seconds_apart_agree_on_now(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    if not PG_URL:
        pytest.skip("a node on SQLite is the database's host")
    behind, on_time = _skewed(-5), _skewed(0)

    async def both() -> tuple[datetime, datetime]:
        store = Store(database_url)
        await store.open()
        try:
            await step(store, behind, warn_beyond=1.0)
            await step(store, on_time, warn_beyond=1.0)
            return behind.now(), on_time.now()
        finally:
            await store.close()

    with caplog.at_level(logging.WARNING, logger="aitbc.clock"):
        first, second = asyncio.run(both())
    assert abs((first - second).total_seconds()) < 0.1
    said = [record.getMessage() for record in caplog.records]
    assert len(said) == 1 and "-5.0" in said[0] and "off the database's" in said[0]


def test_a_node_on_postgresql_goes_by_the_database_clock(settings: Settings) -> None:
    app = create_app(settings)
    if not PG_URL:
        assert isinstance(app.state.clock, SystemClock)
        return
    assert isinstance(app.state.clock, DatabaseClock)
    with TestClient(app) as client:
        assert client.get("/health").status_code == 200
        assert app.state.stepping is not None and not app.state.stepping.done()
