"""Two writes that lock the same GPUs in opposite orders: PostgreSQL ends one of them as a
deadlock, and the store runs that one again instead of failing the request."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from aitbc.bookings import service
from tests.jobs.slice_support import place_bid, set_price
from tests.support.api import PG_URL, Api
from tests.support.market import deposit, heartbeat
from tests.support.together import all_at_once

pytestmark = pytest.mark.skipif(not PG_URL, reason="row locks and deadlocks: PostgreSQL")


def test_a_bid_and_a_gang_locking_gpus_in_opposite_orders_both_get_an_answer(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    miner = api.key("miner", "m1")
    _, second = sorted(api.register_gpu(miner, price_per_hour="0.5") for _ in range(2))
    set_price(api, miner, second, "0.3")  # the bid takes the cheaper one first: `second`
    bidder = api.key("client", "c1")
    deposit(api, "c1", "100")
    ganger = api.key("client", "c2")
    deposit(api, "c2", "100")
    heartbeat(api, miner)
    real = service.lock_gpu

    async def slow_lock(*args: Any, **kwargs: Any) -> Any:
        locked = await real(*args, **kwargs)
        await asyncio.sleep(0.3)  # the other write takes its first GPU meanwhile
        return locked

    monkeypatch.setattr(service, "lock_gpu", slow_lock)
    bid, gang = all_at_once(
        [
            lambda: place_bid(api, bidder, capacity=2, price="1"),  # `second`, then `first`
            lambda: api.call(  # `first`, then `second`
                "POST", "/v1/marketplace/book", ganger, json={"duration_hours": 1, "count": 2}
            ),
        ]
    )
    assert 503 not in (bid.status_code, gang.status_code), (bid.text, gang.text)
    assert bid.status_code == 202, bid.text
    assert gang.status_code in (201, 409), gang.text  # 409: the bid took the GPUs first
