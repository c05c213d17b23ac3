"""The list by clearing price: ``sort=cleared`` (the price each GPU last cleared at, lowest
first; GPUs never rented interruptibly last) and ``cleared_max``; each GPU listed so shows
the figure its details show first among its recent clearing prices."""

from __future__ import annotations

from typing import Any

import pytest

from tests.bookings.booking_support import book, booked
from tests.market.test_bid_list import listed, paged
from tests.support.api import Api
from tests.support.gpus import details
from tests.support.market import Market, release


@pytest.fixture
def gpus(api: Api, market: Market) -> dict[str, str]:
    """GPUs at 1 per hour with their interruptible bookings' bids, oldest first."""
    history = {
        "cheap": ["0.4"],
        "lately_cheaper": ["0.8", "0.5"],  # the newest bid counts
        "lately_dearer": ["0.35", "0.7"],
        "dear": ["0.9"],
        "on_demand_only": [],
        "never_booked": [],
    }
    made = {name: market.gpu(price_per_hour="1") for name in history}
    client = market.client("c1", "100")
    for name, bids in history.items():
        for bid in bids:
            market.beat()
            response = book(
                api, client, made[name], 1, rental_type="interruptible", bid_per_hour=bid
            )
            assert response.status_code == 201, response.text
            api.clock.advance(seconds=60)
            release(api, client, made[name])
    market.beat()
    booked(api, client, made["on_demand_only"], 1)
    return made


def test_sorted_by_clearing_price_the_lowest_last_price_comes_first(
    api: Api, market: Market, gpus: dict[str, str]
) -> None:
    key = market.client("c1")
    shown, _ = listed(api, key, sort="cleared")
    names = [{gpu_id: name for name, gpu_id in gpus.items()}[g["gpu_id"]] for g in shown]
    assert names[:4] == ["cheap", "lately_cheaper", "lately_dearer", "dear"]
    assert set(names[4:]) == {"on_demand_only", "never_booked"}
    assert [g["last_clearing_price"] for g in shown] == [
        "0.400000",
        "0.500000",
        "0.700000",
        "0.900000",
        None,
        None,
    ]
    for gpu in shown:  # what the list shows is the newest of what the details show
        cleared = details(api, gpu["gpu_id"])["market"]["recent_clearing_prices"]
        newest = cleared[0]["bid_per_hour"] if cleared else None
        assert gpu["last_clearing_price"] == newest
        assert "lowest_winning_bid" not in gpu
    assert paged(api, key, sort="cleared") == [g["gpu_id"] for g in shown]  # page by page


def test_cleared_max_lists_what_last_cleared_at_most_at_it(
    api: Api, market: Market, gpus: dict[str, str]
) -> None:
    key = market.client("c1")
    shown, _ = listed(api, key, cleared_max="0.5")
    assert {g["gpu_id"] for g in shown} == {gpus["cheap"], gpus["lately_cheaper"]}
    # Filtered by both figures, each GPU shows both.
    both, _ = listed(api, key, cleared_max="0.5", sort="bid")
    assert all({"lowest_winning_bid", "last_clearing_price"} <= set(g) for g in both)
    assert [g["lowest_winning_bid"] for g in both] == ["0.300000", "0.300000"]
    plain, _ = listed(api, key)  # a list not asked by clearing price does not compute it
    assert all("last_clearing_price" not in g for g in plain)


@pytest.mark.parametrize("params", [{"cleared_max": "-1"}, {"cleared_max": "x"}])
def test_a_bad_cleared_max_is_a_clear_error(
    api: Api, market: Market, params: dict[str, Any]
) -> None:
    response = api.call("GET", "/v1/marketplace/gpu/list", market.client("c1"), params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"] == "validation_error"
