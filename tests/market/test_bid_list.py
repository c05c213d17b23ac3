"""The list by bid: ``sort=bid`` (the lowest winning bid first, GPUs no bid wins now last)
and ``bid_max``; each GPU listed so shows the bid a GPU's details show."""

from __future__ import annotations

from typing import Any

import pytest

from tests.bookings.booking_support import book, booked
from tests.support.api import Api
from tests.support.gpus import details
from tests.support.market import Market


@pytest.fixture
def gpus(api: Api, market: Market) -> dict[str, str]:
    """Six GPUs, each won by a different bid now (or by none)."""
    made = {
        "free_cheap": market.gpu(price_per_hour="1"),  # least bid 0.3
        "free_dear": market.gpu(price_per_hour="3"),  # least bid 0.9
        "own_minimum": market.gpu(price_per_hour="2"),  # least bid 0.45, the provider's
        "held_by_bid": market.gpu(price_per_hour="2"),  # held at 0.7: 0.71 wins it
        "held_on_demand": market.gpu(price_per_hour="0.5"),  # no bid wins it
        "no_bids": market.gpu(price_per_hour="0.4"),  # not interruptible
    }
    path = "/v1/marketplace/gpu/{}"
    for gpu, body in [
        ("own_minimum", {"min_bid_per_hour": "0.45"}),
        ("no_bids", {"interruptible": False}),
    ]:
        changed = api.call("PATCH", path.format(made[gpu]), market.miner_key, json=body)
        assert changed.status_code == 200, changed.text
    market.beat()
    client = market.client("c1", "100")
    held = book(
        api, client, made["held_by_bid"], 1, rental_type="interruptible", bid_per_hour="0.7"
    )
    assert held.status_code == 201, held.text
    booked(api, client, made["held_on_demand"], 1)
    return made


def listed(api: Api, key: str, **params: Any) -> tuple[list[dict[str, Any]], str | None]:
    response = api.call("GET", "/v1/marketplace/gpu/list", key, params=params)
    assert response.status_code == 200, response.text
    return response.json(), response.headers.get("X-Next-Cursor")


def paged(api: Api, key: str, **params: Any) -> list[str]:
    """The list's GPU ids read two at a time, page after page by cursor."""
    found, cursor = listed(api, key, limit=2, **params)
    while cursor:
        more, cursor = listed(api, key, limit=2, cursor=cursor, **params)
        found += more
    return [g["gpu_id"] for g in found]


def test_sorted_by_bid_the_cheapest_win_comes_first_and_the_unwinnable_last(
    api: Api, market: Market, gpus: dict[str, str]
) -> None:
    key = market.client("c1")
    shown, _ = listed(api, key, sort="bid")
    names = {gpu_id: name for name, gpu_id in gpus.items()}
    assert [names[g["gpu_id"]] for g in shown[:4]] == [
        "free_cheap",
        "own_minimum",
        "held_by_bid",
        "free_dear",
    ]
    assert {names[g["gpu_id"]] for g in shown[4:]} == {"held_on_demand", "no_bids"}
    for gpu in shown:  # what the list shows is what the details show
        assert (
            gpu["lowest_winning_bid"] == details(api, gpu["gpu_id"])["market"]["lowest_winning_bid"]
        )
    assert [g["lowest_winning_bid"] for g in shown] == [
        "0.300000",
        "0.450000",
        "0.710000",
        "0.900000",
        None,
        None,
    ]
    assert paged(api, key, sort="bid") == [g["gpu_id"] for g in shown]


def test_bid_max_lists_only_what_that_bid_wins_now(
    api: Api, market: Market, gpus: dict[str, str]
) -> None:
    key = market.client("c1")
    shown, _ = listed(api, key, bid_max="0.71")
    assert {g["gpu_id"] for g in shown} == {
        gpus["free_cheap"],
        gpus["own_minimum"],
        gpus["held_by_bid"],
    }
    assert all(g["lowest_winning_bid"] is not None for g in shown)
    shown, _ = listed(api, key, bid_max="0.7")  # a bid equal to the holder's does not win
    assert gpus["held_by_bid"] not in {g["gpu_id"] for g in shown}
    plain, _ = listed(api, key)  # a list not asked by bid does not compute it
    assert all("lowest_winning_bid" not in g for g in plain)


def test_a_bad_bid_max_is_a_clear_error(api: Api, market: Market) -> None:
    response = api.call(
        "GET", "/v1/marketplace/gpu/list", market.client("c1"), params={"bid_max": "-1"}
    )
    assert response.status_code == 422, response.text
