"""Quotes: ``POST /v1/marketplace/gpu/{id}/quote`` promises a price per hour for a few
minutes; booking with its ``quote_id`` pays that price even if the market moved, once, only
for its client and GPU, and only before it expires."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI

from tests.pricing import pricing_support as ref
from tests.reviews.review_support import when
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import details
from tests.support.market import Market, deposit, release
from tests.support.responses import assert_error, ok

GPU = "/v1/marketplace/gpu"


def quote(api: Api, key: str, gpu: str, hours: Any = "2") -> Any:
    return api.call("POST", f"{GPU}/{gpu}/quote", key, json={"duration_hours": hours})


def take_quote(api: Api, key: str, gpu: str, hours: Any = "2") -> dict[str, Any]:
    body: dict[str, Any] = ok(quote(api, key, gpu, hours), 201)
    return body


def book_with(api: Api, market: Market, key: str, gpu: str, quote_id: str, hours: str = "1") -> Any:
    market.beat()
    return api.call(
        "POST",
        f"{GPU}/{gpu}/book",
        key,
        json={"gpu_id": gpu, "duration_hours": hours, "quote_id": quote_id},
    )


def test_quote_is_201_with_price_total_and_expiry(api: Api, market: Market) -> None:
    gpu = market.gpu(name="RTX 4090", price_per_hour="1.5")
    key = market.client("c-1")
    body = take_quote(api, key, gpu, "2")
    assert body["quote_id"].startswith("quo")
    assert body["gpu_id"] == gpu
    assert body["price_per_hour"] == "1.500000"
    assert Decimal(body["duration_hours"]) == 2
    assert body["total_cost"] == "3.000000"
    assert when(body["expires_at"]) == api.clock.now() + timedelta(seconds=300)
    # Total rounded half up to the micro-unit, like a booking's.
    odd = take_quote(api, key, gpu, "0.333333")  # 1199.9988 s -> 1200 s
    assert odd["total_cost"] == "0.500000"
    third = market.gpu(name="RTX 4090", price_per_hour="0.000007")
    assert take_quote(api, key, third, "0.5")["total_cost"] == "0.000004"  # 3.5 -> 4


def test_quote_does_not_book_or_write_prices(api: Api, app: FastAPI, market: Market) -> None:
    gpu = market.gpu(name="RTX 4090", price_per_hour="1.5")
    key = market.client("c-1")
    before = ref.row_counts(app)
    take_quote(api, key, gpu)
    after = ref.row_counts(app)
    assert after["quotes"] == before["quotes"] + 1
    assert {k: v for k, v in after.items() if k != "quotes"} == {
        k: v for k, v in before.items() if k != "quotes"
    }
    assert details(api, gpu)["status"] == "available"
    me = ok(api.call("GET", "/v1/accounts/me", key))
    assert me["balance"] == "1000.000000" and me["escrow"] == "0.000000"


def test_quote_of_a_dynamic_gpu_includes_the_multiplier(
    api: Api, app: FastAPI, market: Market
) -> None:
    gpu = market.gpu(name="RTX 4090", price_per_hour="2", pricing_mode="dynamic")
    app.state.sweeper.run_once()  # idle: 0.9
    body = take_quote(api, market.client("c-1"), gpu, "1")
    assert body["price_per_hour"] == details(api, gpu)["price_per_hour"]
    assert body["price_per_hour"] == ref.money(ref.scaled(Decimal(2), Decimal("0.9")))


def test_booking_with_the_quote_pays_the_quoted_price_after_the_market_rose(
    api: Api, market: Market
) -> None:
    gpu = market.gpu(name="H100", price_per_hour="1", pricing_mode="dynamic")
    # c-2's booking lifts the multiplier to 1.1.
    market.book("c-2", gpu)
    api.clock.advance(seconds=30)
    release(api, market.clients["c-2"], gpu)
    key = market.client("c-1")
    promised = take_quote(api, key, gpu, "1")
    assert promised["price_per_hour"] == "1.100000"
    # c-3's booking a minute later lifts it to 1.2.
    api.clock.advance(seconds=31)
    market.book("c-3", gpu)
    api.clock.advance(seconds=30)
    release(api, market.clients["c-3"], gpu)
    market.beat()
    moved = details(api, gpu)["price_per_hour"]
    assert Decimal(moved) > Decimal("1.1")

    booked = ok(book_with(api, market, key, gpu, promised["quote_id"], "2"), 201)
    assert booked["price_per_hour"] == "1.100000"
    assert booked["total_cost"] == "2.200000"
    assert when(booked["start_time"]) == api.clock.now()
    me = ok(api.call("GET", "/v1/accounts/me", key))
    assert me["escrow"] == "2.200000"


def test_booking_with_the_quote_pays_the_quoted_price_after_the_market_fell(
    api: Api, app: FastAPI, market: Market
) -> None:
    gpu = market.gpu(name="H100", price_per_hour="1", pricing_mode="dynamic")
    key = market.client("c-1")
    promised = take_quote(api, key, gpu, "1")
    assert promised["price_per_hour"] == "1.000000"
    api.clock.advance(seconds=120)
    market.beat()
    app.state.sweeper.run_once()  # idle: the multiplier drops to 0.9
    assert Decimal(details(api, gpu)["price_per_hour"]) < 1
    booked = ok(book_with(api, market, key, gpu, promised["quote_id"]), 201)
    assert booked["price_per_hour"] == "1.000000" and booked["total_cost"] == "1.000000"


def test_booking_without_a_quote_pays_the_current_price(api: Api, market: Market) -> None:
    gpu = market.gpu(name="RTX 4090", price_per_hour="1.5")
    key = market.client("c-1")
    take_quote(api, key, gpu)
    assert (
        ok(api.call("PATCH", f"{GPU}/{gpu}", market.miner_key, json={"price_per_hour": "3"}))[
            "price_per_hour"
        ]
        == "3.000000"
    )
    assert market.book("c-1", gpu)["price_per_hour"] == "3.000000"


def test_quote_honoured_after_the_miner_raised_the_price(api: Api, market: Market) -> None:
    gpu = market.gpu(name="RTX 4090", price_per_hour="1.5")
    key = market.client("c-1")
    promised = take_quote(api, key, gpu)
    ok(api.call("PATCH", f"{GPU}/{gpu}", market.miner_key, json={"price_per_hour": "3"}))
    booked = ok(book_with(api, market, key, gpu, promised["quote_id"]), 201)
    assert booked["price_per_hour"] == "1.500000"


def test_expired_quote_is_409(api: Api, market: Market) -> None:
    gpu = market.gpu(name="RTX 4090", price_per_hour="1.5")
    key = market.client("c-1")
    late = take_quote(api, key, gpu)
    api.clock.advance(seconds=1)
    in_time = take_quote(api, key, gpu)
    api.clock.advance(seconds=299)  # `late` is exactly 300 s old
    assert_error(book_with(api, market, key, gpu, late["quote_id"]), 409, "quote_expired")
    # One second short of its expiry, a quote still holds.
    assert ok(book_with(api, market, key, gpu, in_time["quote_id"]), 201)["price_per_hour"] == (
        "1.500000"
    )
    api.clock.advance(hours=2)
    assert_error(book_with(api, market, key, gpu, late["quote_id"]), 409, "quote_expired")


def test_a_quote_is_used_once(api: Api, market: Market) -> None:
    gpu = market.gpu(name="RTX 4090", price_per_hour="1.5")
    key = market.client("c-1")
    promised = take_quote(api, key, gpu)
    ok(book_with(api, market, key, gpu, promised["quote_id"]), 201)
    api.clock.advance(seconds=10)
    release(api, key, gpu)
    assert_error(book_with(api, market, key, gpu, promised["quote_id"]), 409, "quote_used")


def test_another_clients_quote_is_404(api: Api, market: Market) -> None:
    gpu = market.gpu(name="RTX 4090", price_per_hour="1.5")
    mine = take_quote(api, market.client("c-1"), gpu)
    other = market.client("c-2")
    assert_error(book_with(api, market, other, gpu, mine["quote_id"]), 404, "quote_not_found")
    assert_error(book_with(api, market, other, gpu, "quo_nope"), 404, "quote_not_found")
    # The owner can still use it.
    ok(book_with(api, market, market.clients["c-1"], gpu, mine["quote_id"]), 201)


def test_quote_for_another_gpu_is_422(api: Api, market: Market) -> None:
    gpu = market.gpu(name="RTX 4090", price_per_hour="1.5")
    other = market.gpu(name="RTX 4090", price_per_hour="0.1")
    key = market.client("c-1")
    promised = take_quote(api, key, gpu)
    assert_error(book_with(api, market, key, other, promised["quote_id"]), 422, "quote_mismatch")
    assert ok(book_with(api, market, key, gpu, promised["quote_id"]), 201)["price_per_hour"] == (
        "1.500000"
    )


def test_a_refused_booking_does_not_spend_the_quote(api: Api, market: Market) -> None:
    gpu = market.gpu(name="RTX 4090", price_per_hour="1.5")
    key = api.key("client", "c-1")  # no funds yet
    promised = take_quote(api, key, gpu)
    assert_error(book_with(api, market, key, gpu, promised["quote_id"]), 402, "insufficient_funds")
    # Busy GPU: assert_error before the quote is looked at.
    market.book("c-2", gpu)
    deposit(api, "c-1", "100")
    assert_error(book_with(api, market, key, gpu, promised["quote_id"]), 409, "gpu_booked")
    release(api, market.clients["c-2"], gpu)
    # A price limit below the quoted price refuses the booking, and keeps the quote.
    over = api.call(
        "POST",
        f"{GPU}/{gpu}/book",
        key,
        json={"duration_hours": 1, "quote_id": promised["quote_id"], "max_price_per_hour": "1.4"},
    )
    assert_error(over, 409, "price_above_limit")
    booked = ok(book_with(api, market, key, gpu, promised["quote_id"]), 201)
    assert booked["price_per_hour"] == "1.500000"


def test_quote_does_not_hold_the_gpu(api: Api, market: Market) -> None:
    gpu = market.gpu(name="RTX 4090", price_per_hour="1.5")
    key = market.client("c-1")
    promised = take_quote(api, key, gpu)
    market.book("c-2", gpu)
    assert_error(book_with(api, market, key, gpu, promised["quote_id"]), 409, "gpu_booked")


def test_quote_needs_a_client_key_and_a_listed_gpu(api: Api, market: Market) -> None:
    gpu = market.gpu(name="RTX 4090", price_per_hour="1.5")
    assert_error(quote(api, market.miner_key, gpu), 403, "wrong_role")
    assert_error(quote(api, ADMIN_KEY, gpu), 403, "wrong_role")
    assert_error(quote(api, "", gpu), 401, "authentication_required")
    key = market.client("c-1")
    assert_error(quote(api, key, "gpu_nope"), 404, "gpu_not_found")
    gone = market.gpu(name="RTX 4090", price_per_hour="1")
    assert api.call("DELETE", f"{GPU}/{gone}", market.miner_key).status_code == 200
    assert_error(quote(api, key, gone), 404, "gpu_not_found")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"duration_hours": 0}, "validation_error"),
        ({"duration_hours": -1}, "validation_error"),
        ({"duration_hours": "abc"}, "validation_error"),
        ({}, "validation_error"),
        ({"duration_hours": 1, "price": "0.1"}, "validation_error"),
        ({"duration_hours": 721}, "duration_too_long"),
    ],
    ids=repr,
)
def test_quote_validation(api: Api, market: Market, body: dict[str, Any], code: str) -> None:
    gpu = market.gpu(name="RTX 4090", price_per_hour="1.5")
    response = api.call("POST", f"{GPU}/{gpu}/quote", market.client("c-1"), json=body)
    assert_error(response, 422, code)
