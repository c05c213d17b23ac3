"""GET /v1/marketplace/stats: totalOffers and openCapacity count open offers, averagePrice is
their mean price as an exact six-decimal string (rounded half up), activeBids counts open
bids that have not expired."""

from __future__ import annotations

from decimal import Decimal

from tests.jobs.slice_support import bid, cancel_bid, delist, stats, sync
from tests.support.api import Api
from tests.support.market import advance, deposit
from tests.support.money import half_up, money, units
from tests.support.responses import ok


def _fleet(api: Api, miner_key: str, prices: list[str]) -> list[str]:
    return [api.register_gpu(miner_key, price_per_hour=p) for p in prices]


def test_stats_from_the_offers(api: Api) -> None:
    miner = api.key("miner", "m1")
    prices = ["0.5", "2.25", "0.3"]
    _fleet(api, miner, prices)
    sync(api)

    total = sum(units(p) for p in prices)
    assert stats(api) == {
        "totalOffers": 3,
        "openCapacity": 3,
        "averagePrice": money(half_up(total, 3)),
        "activeBids": 0,
    }
    assert stats(api)["averagePrice"] == "1.016667"


def test_average_price_is_an_exact_decimal_string(api: Api) -> None:
    miner = api.key("miner", "m1")
    _fleet(api, miner, ["0.1", "0.2", "0.2"])
    sync(api)

    body = stats(api)

    assert body["averagePrice"] == "0.166667"  # 0.5 / 3, half up at the sixth decimal
    assert isinstance(body["averagePrice"], str)
    assert Decimal(body["averagePrice"]).as_tuple().exponent == -6


def test_average_price_rounds_half_up(api: Api) -> None:
    miner = api.key("miner", "m1")
    _fleet(api, miner, ["0.000001", "0.000002"])
    sync(api)

    assert stats(api)["averagePrice"] == "0.000002"  # 1.5 micro-units, half up


def test_closed_offers_leave_the_stats(api: Api) -> None:
    m1 = api.key("miner", "m1")
    m2 = api.key("miner", "m2")
    _fleet(api, m1, ["0.5", "2.25"])
    _fleet(api, m2, ["0.3"])
    extra = api.register_gpu(m1, price_per_hour="1.1")
    sync(api)
    assert stats(api)["totalOffers"] == 4

    delist(api, m1, extra)
    advance(api, 91, m1)  # m2 offline
    sync(api)

    assert stats(api) == {
        "totalOffers": 2,
        "openCapacity": 2,
        "averagePrice": "1.375000",
        "activeBids": 0,
    }


def test_stats_see_new_gpus_at_once(api: Api) -> None:
    miner = api.key("miner", "m1")
    _fleet(api, miner, ["1"])
    assert (stats(api)["totalOffers"], stats(api)["averagePrice"]) == (1, "1.000000")
    api.register_gpu(miner, price_per_hour="2")
    assert (stats(api)["totalOffers"], stats(api)["averagePrice"]) == (2, "1.500000")


def test_active_bids_count_open_unexpired_bids_only(api: Api) -> None:
    miner = api.key("miner", "m1")
    c1 = api.key("client", "c1")
    c2 = api.key("client", "c2")
    deposit(api, "c1", "100")
    deposit(api, "c2", "100")
    api.register_gpu(miner, price_per_hour="0.5")
    sync(api)

    filled = bid(api, c1, capacity=1, price="0.5")
    assert filled["status"] == "filled"
    open_1 = bid(api, c1, capacity=1, price="0.1")
    open_2 = bid(api, c2, capacity=2, price="0.2", ttl_hours=1)
    to_cancel = bid(api, c2, capacity=1, price="0.1")
    assert ok(cancel_bid(api, c2, to_cancel["id"]))["status"] == "cancelled"

    assert stats(api)["activeBids"] == 2
    assert (open_1["status"], open_2["status"]) == ("open", "open")

    advance(api, 3599, miner)
    assert stats(api)["activeBids"] == 2
    advance(api, 1, miner)  # open_2 reaches its ttl
    assert stats(api)["activeBids"] == 1
    advance(api, 23 * 3600)  # open_1 too (24 h default; the miner's presence is moot)
    assert stats(api)["activeBids"] == 0


def test_stats_are_public(api: Api) -> None:
    response = api.call("GET", "/v1/marketplace/stats")

    assert response.status_code == 200, response.text
    assert set(response.json()) == {"totalOffers", "openCapacity", "averagePrice", "activeBids"}
