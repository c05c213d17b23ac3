"""When prices are recomputed and stored (after a booking, by the sweeper, never more often
than ``pricing_interval_seconds``), the history endpoint over what was stored, and dynamic
pricing mode: a dynamic GPU costs its own price times its model's multiplier, and a booking
locks the effective price of its moment."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI

from aitbc.pricing import engine
from tests.pricing import pricing_support as ref
from tests.reviews.review_support import when
from tests.support.api import Api
from tests.support.gpus import details
from tests.support.market import Market, release
from tests.support.responses import assert_error, ok

PRICING = "/v1/marketplace/pricing"


def pricing(api: Api, model: str) -> dict[str, Any]:
    body: dict[str, Any] = ok(api.call("GET", f"{PRICING}/{model}"))
    return body


def history(api: Api, model: str, **params: Any) -> list[dict[str, Any]]:
    body = ok(api.call("GET", f"{PRICING}/{model}/history", params=params))
    assert isinstance(body, list)
    return body


def sweep(app: FastAPI) -> None:
    app.state.sweeper.run_once()


# --- after a booking ----------------------------------------------------------------------


def test_booking_recomputes_its_model_once_per_interval(
    api: Api, app: FastAPI, market: Market
) -> None:
    g1 = market.gpu(name="RTX 4090", price_per_hour="0.5")
    g2 = market.gpu(name="RTX 4090", price_per_hour="0.9")
    g3 = market.gpu(name="RTX 4090", price_per_hour="0.7")
    t0 = api.clock.now()
    assert ref.row_counts(app)["price_history"] == 0

    market.book("c-1", g1)
    [point] = history(api, "rtx4090")
    assert when(point["at"]) == t0
    # Supply 3, one booked (the new booking), one recent booking.
    util = ref.utilisation(1, 3)
    multiplier = ref.step(None, ref.target(util, 1, 3))
    assert multiplier == Decimal("0.9")
    assert Decimal(point["utilisation"]) == util
    assert point["recent_bookings"] == 1 and point["supply"] == 3
    assert Decimal(point["demand_multiplier"]) == multiplier
    assert point["base_price"] == "0.700000"
    assert point["current_price"] == ref.money(ref.scaled(Decimal("0.7"), multiplier))
    body = pricing(api, "RTX%204090")
    assert when(body["updated_at"]) == t0
    assert body["current_price"] == point["current_price"]
    assert Decimal(body["demand_multiplier"]) == multiplier
    assert body["demand"]["recent_bookings"] == 1 and body["demand"]["supply"] == 3

    # Another booking 59 s later: the stored price is fresh, nothing is recomputed.
    api.clock.advance(seconds=59)
    market.book("c-2", g2)
    assert len(history(api, "rtx4090")) == 1
    assert ref.row_counts(app)["price_history"] == 1
    assert when(pricing(api, "rtx4090")["updated_at"]) == t0

    # Once the interval has passed, the next booking recomputes (and stores) once more.
    api.clock.advance(seconds=2)
    market.book("c-3", g3)
    points = history(api, "rtx4090")
    assert len(points) == 2 and ref.row_counts(app)["price_history"] == 2
    assert when(points[-1]["at"]) == t0 + timedelta(seconds=61)
    util = ref.utilisation(3, 3)
    following = ref.step(multiplier, ref.target(util, 3, 3))
    assert following == Decimal("1.0")
    assert Decimal(points[-1]["demand_multiplier"]) == following
    assert points[-1]["recent_bookings"] == 3 and Decimal(points[-1]["utilisation"]) == 1


def test_booking_does_not_recompute_other_models(api: Api, app: FastAPI, market: Market) -> None:
    g1 = market.gpu(name="RTX 4090", price_per_hour="0.5")
    market.gpu(name="A100", price_per_hour="2")
    market.book("c-1", g1)
    assert len(history(api, "rtx4090")) == 1
    assert history(api, "a100") == []
    assert pricing(api, "A100")["updated_at"] is None


def test_a_refused_booking_does_not_recompute(api: Api, app: FastAPI, market: Market) -> None:
    g1 = market.gpu(name="RTX 4090", price_per_hour="0.5")
    poor = api.key("client", "c-poor")  # no funds
    response = api.call("POST", f"/v1/marketplace/gpu/{g1}/book", poor, json={"duration_hours": 1})
    assert_error(response, 402, "insufficient_funds")
    assert ref.row_counts(app)["price_history"] == 0
    assert ref.row_counts(app)["model_prices"] == 0


# --- the sweeper --------------------------------------------------------------------------


def test_sweeper_recomputes_stale_models_of_both_kinds(
    api: Api, app: FastAPI, market: Market
) -> None:
    market.gpu(name="RTX 4090", price_per_hour="0.5", ai_models=["llama2-7b"])
    market.gpu(name="RTX 4090", price_per_hour="0.7")
    market.gpu(name="A100", price_per_hour="2", ai_models=["llama2-7b"])
    t0 = api.clock.now()
    sweep(app)
    for model in ("rtx4090", "a100", "llama2-7b"):
        [point] = history(api, model)
        assert when(point["at"]) == t0
        assert Decimal(point["demand_multiplier"]) == Decimal("0.9")
        assert when(pricing(api, model)["updated_at"]) == t0
    assert ref.row_counts(app)["model_prices"] == 3
    assert history(api, "llama2-7b")[0]["base_price"] == "0.500000"  # median_low(0.5, 2)
    assert history(api, "llama2-7b")[0]["supply"] == 2

    # Fresh prices are left alone.
    api.clock.advance(seconds=30)
    sweep(app)
    assert ref.row_counts(app)["price_history"] == 3

    # Stale ones move one bounded step per recomputation, down to the floor.
    multipliers = []
    for _ in range(6):
        api.clock.advance(seconds=61)
        market.beat()
        sweep(app)
        multipliers.append(Decimal(history(api, "rtx4090")[-1]["demand_multiplier"]))
    assert multipliers == [Decimal(m) for m in ("0.8", "0.7", "0.6", "0.5", "0.5", "0.5")]
    assert ref.row_counts(app)["price_history"] == 3 * 7
    last = pricing(api, "rtx4090")
    assert last["current_price"] == ref.money(ref.scaled(Decimal("0.5"), Decimal("0.5")))
    assert last["base_price"] == "0.500000"


def test_sweeper_skips_delisted_models(api: Api, app: FastAPI, market: Market) -> None:
    gone = market.gpu(name="H100", price_per_hour="3")
    market.gpu(name="T4", price_per_hour="0.2")
    assert api.call("DELETE", f"/v1/marketplace/gpu/{gone}", market.miner_key).status_code == 200
    sweep(app)
    assert ref.row_counts(app)["model_prices"] == 1
    assert len(history(api, "t4")) == 1


def test_busy_market_climbs_by_at_most_a_tenth_per_recomputation(
    api: Api, app: FastAPI, market: Market
) -> None:
    """One dynamic GPU booked again every minute: utilisation 1.0 and a rising booking rate
    push the target up to 2.2; each recomputation moves at most 0.1; each booking pays the
    effective price of its own moment."""
    gpu = market.gpu(name="H100", price_per_hour="2", pricing_mode="dynamic")
    key = market.client("c-1", "10000")
    multiplier: Decimal | None = None
    seen = []
    for n in range(1, 15):
        expected_price = ref.scaled(Decimal(2), multiplier or Decimal(1))
        assert details(api, gpu)["price_per_hour"] == ref.money(expected_price)
        booked = market.book("c-1", gpu)
        assert booked["price_per_hour"] == ref.money(expected_price)
        multiplier = ref.step(multiplier, ref.target(Decimal(1), n, 1))
        point = history(api, "h100")[-1]
        assert Decimal(point["demand_multiplier"]) == multiplier
        assert point["recent_bookings"] == n
        seen.append(multiplier)
        api.clock.advance(seconds=61)
        release(api, key, gpu)
    assert seen == [Decimal(m) / 10 for m in (*range(11, 23), 22, 22)]
    assert max(seen) <= Decimal("3.0")
    assert len(history(api, "h100")) == 14


# --- the history endpoint -----------------------------------------------------------------


@pytest.fixture
def series(api: Api, app: FastAPI, market: Market) -> list[datetime]:
    """Recomputations of RTX 4090 (and llama2-7b) at 00:00, 00:10, 01:10, and the next day
    00:05; an idle market, so the multiplier steps 0.9, 0.8, 0.7, 0.6."""
    market.gpu(name="RTX 4090", price_per_hour="0.5", ai_models=["llama2-7b"])
    start = api.clock.now()
    moments = [
        start,
        start + timedelta(minutes=10),
        start + timedelta(hours=1, minutes=10),
        start + timedelta(days=1, minutes=5),
    ]
    for moment in moments:
        api.clock.set(moment)
        sweep(app)
    return moments


def test_history_raw_is_every_stored_point_in_order(api: Api, series: list[datetime]) -> None:
    points = history(api, "rtx4090")
    assert [when(p["at"]) for p in points] == series
    assert [Decimal(p["demand_multiplier"]) for p in points] == [
        Decimal("0.9"),
        Decimal("0.8"),
        Decimal("0.7"),
        Decimal("0.6"),
    ]
    assert [p["current_price"] for p in points] == ["0.450000", "0.400000", "0.350000", "0.300000"]
    for p in points:
        assert set(p) == {
            "at",
            "base_price",
            "current_price",
            "demand_multiplier",
            "utilisation",
            "recent_bookings",
            "supply",
        }
        assert p["base_price"] == "0.500000" and p["recent_bookings"] == 0
    assert history(api, "rtx4090", bucket="raw") == points
    assert history(api, "RTX%204090") == points
    assert [when(p["at"]) for p in history(api, "llama2-7b")] == series


def test_history_buckets_keep_the_last_point_of_each_hour_or_day(
    api: Api, series: list[datetime]
) -> None:
    hourly = history(api, "rtx4090", bucket="hour")
    assert [when(p["at"]) for p in hourly] == [series[1], series[2], series[3]]
    assert [p["current_price"] for p in hourly] == ["0.400000", "0.350000", "0.300000"]
    daily = history(api, "rtx4090", bucket="day")
    assert [when(p["at"]) for p in daily] == [series[2], series[3]]


def test_history_since_and_limit(api: Api, series: list[datetime]) -> None:
    since = series[0] + timedelta(hours=1)
    assert [when(p["at"]) for p in history(api, "rtx4090", since=since.isoformat())] == series[2:]
    # `since` is inclusive.
    inclusive = history(api, "rtx4090", since=series[1].isoformat())
    assert [when(p["at"]) for p in inclusive] == series[1:]
    assert history(api, "rtx4090", since=(series[3] + timedelta(seconds=1)).isoformat()) == []
    # Another zone, same instant.
    other_zone = series[1].astimezone(UTC).replace(tzinfo=None).isoformat() + "+02:00"
    shifted = history(api, "rtx4090", since=other_zone)
    assert [when(p["at"]) for p in shifted] == series  # two hours earlier: everything
    by_day = history(api, "rtx4090", since=series[1].isoformat(), bucket="day")
    assert [when(p["at"]) for p in by_day] == [series[2], series[3]]
    # The limit keeps the latest points.
    assert [when(p["at"]) for p in history(api, "rtx4090", limit=2)] == series[2:]


@pytest.mark.parametrize(
    "params",
    [
        {"bucket": "week"},
        {"since": "2030-01-01T00:00:00"},  # no time zone
        {"since": "soon"},
        {"limit": 0},
        {"limit": 5001},
    ],
    ids=repr,
)
def test_history_bad_parameters_are_422(
    api: Api, series: list[datetime], params: dict[str, Any]
) -> None:
    response = api.call("GET", f"{PRICING}/rtx4090/history", params=params)
    assert_error(response, 422, "validation_error")


# --- dynamic pricing mode -----------------------------------------------------------------


def _patch(api: Api, market: Market, gpu: str, body: dict[str, Any]) -> dict[str, Any]:
    response = api.call("PATCH", f"/v1/marketplace/gpu/{gpu}", market.miner_key, json=body)
    result: dict[str, Any] = ok(response)
    return result


def test_dynamic_mode_scales_the_gpus_own_price_and_a_booking_locks_it(
    api: Api, app: FastAPI, market: Market
) -> None:
    gpu = market.gpu(name="RTX 3090", price_per_hour="1.0")
    market.gpu(name="RTX 3090", price_per_hour="0.8")
    sweep(app)  # idle: the model's multiplier steps to 0.9
    assert Decimal(pricing(api, "rtx3090")["demand_multiplier"]) == Decimal("0.9")
    fixed = details(api, gpu)
    assert fixed["pricing_mode"] == "fixed"
    assert fixed["price_per_hour"] == fixed["base_price_per_hour"] == "1.000000"

    dynamic = _patch(api, market, gpu, {"pricing_mode": "dynamic"})
    assert dynamic["pricing_mode"] == "dynamic"
    assert dynamic["base_price_per_hour"] == "1.000000"
    assert dynamic["price_per_hour"] == "0.900000"
    assert details(api, gpu)["price_per_hour"] == "0.900000"
    listed = ok(api.call("GET", "/v1/marketplace/gpu/list", params={"model": "rtx3090"}))
    assert {g["gpu_id"]: g["price_per_hour"] for g in listed}[gpu] == "0.900000"

    # A new own price is scaled too.
    assert _patch(api, market, gpu, {"price_per_hour": "2"})["price_per_hour"] == "1.800000"

    # The booking pays the effective price of its moment ...
    booked = market.book("c-1", gpu, "2")
    assert booked["price_per_hour"] == "1.800000" and booked["total_cost"] == "3.600000"

    # ... and keeps it when the market moves afterwards.
    api.clock.advance(seconds=61)
    market.beat()
    sweep(app)
    assert Decimal(pricing(api, "rtx3090")["demand_multiplier"]) != Decimal("0.9")
    client = market.clients["c-1"]
    again = ok(api.call("GET", f"/v1/bookings/{booked['booking_id']}", client))
    assert again["price_per_hour"] == "1.800000" and again["total_cost"] == "3.600000"

    # Back to fixed: the GPU's own price.
    back = _patch(api, market, gpu, {"pricing_mode": "fixed"})
    assert back["price_per_hour"] == back["base_price_per_hour"] == "2.000000"


def test_dynamic_gpu_without_a_stored_market_price_costs_its_own_price(
    api: Api, market: Market
) -> None:
    gpu = market.gpu(name="L40S", price_per_hour="1.25", pricing_mode="dynamic")
    shown = details(api, gpu)
    assert shown["pricing_mode"] == "dynamic"
    assert shown["price_per_hour"] == shown["base_price_per_hour"] == "1.250000"


def test_fixed_gpus_ignore_the_multiplier(api: Api, app: FastAPI, market: Market) -> None:
    gpu = market.gpu(name="RTX 3090", price_per_hour="1.0")
    sweep(app)
    assert details(api, gpu)["price_per_hour"] == "1.000000"
    assert market.book("c-1", gpu)["price_per_hour"] == "1.000000"


def test_recomputation_applies_the_new_multiplier_to_dynamic_gpus(
    api: Api, app: FastAPI, market: Market
) -> None:
    """A dynamic GPU's price after a recomputation is exactly its own price x the stored
    multiplier, rounded half up to the micro-unit (engine.scale), whichever path computed it:
    the recomputation itself, or a PATCH to dynamic afterwards."""
    prices = ["1.0", "0.5", "0.123457", "2.345678", "0.000001"]
    followed = {p: market.gpu(name="A40", price_per_hour=p, pricing_mode="dynamic") for p in prices}
    patched = {p: market.gpu(name="A40", price_per_hour=p) for p in prices}
    sweep(app)  # multiplier 0.9
    for price in prices:
        _patch(api, market, patched[price], {"pricing_mode": "dynamic"})
    multiplier = Decimal(pricing(api, "a40")["demand_multiplier"])
    assert multiplier == Decimal("0.9")
    for price in prices:
        expected = ref.money(ref.scaled(Decimal(price), multiplier))
        assert details(api, patched[price])["price_per_hour"] == expected, price
        assert details(api, followed[price])["price_per_hour"] == expected, price
        stored = ref.effective_units(app, followed[price])
        assert type(stored) is int, (price, stored)
        assert stored == engine.scale(int(Decimal(price) * 10**6), 9_000), price


def test_recomputation_writes_only_the_dynamic_gpus_whose_price_moves(
    api: Api, app: FastAPI, market: Market
) -> None:
    """Measured against a fixed GPU of the same model and miner, whose row the sweeper writes
    at the same moments for everything else (its uptime): the dynamic GPU's row is written
    once more exactly when the multiplier moves."""
    followed = market.gpu(name="A40", price_per_hour="1.0", pricing_mode="dynamic")
    fixed = market.gpu(name="A40", price_per_hour="1.0")

    def revisions() -> tuple[int, int]:
        return ref.revision(app, followed), ref.revision(app, fixed)

    sweep(app)  # idle: the multiplier steps to 0.9
    before = revisions()
    steps = [Decimal(pricing(api, "a40")["demand_multiplier"])]
    for _ in range(8):  # down to the floor, then it stays there
        api.clock.advance(seconds=61)
        sweep(app)
        steps.append(Decimal(pricing(api, "a40")["demand_multiplier"]))
        after = revisions()
        extra_writes = (after[0] - before[0]) - (after[1] - before[1])
        assert extra_writes == (1 if steps[-1] != steps[-2] else 0), steps
        before = after
        assert details(api, followed)["price_per_hour"] == ref.money(Decimal("1.0") * steps[-1])
    assert steps[-1] == steps[-2]  # the floor was reached: a recomputation that moved nothing


def test_dynamic_price_after_recomputation_is_what_the_booking_charges(
    api: Api, app: FastAPI, market: Market
) -> None:
    gpu = market.gpu(name="A40", price_per_hour="1.0", pricing_mode="dynamic")
    sweep(app)  # multiplier 0.9
    shown = details(api, gpu)["price_per_hour"]
    booked = market.book("c-1", gpu, "1")
    assert booked["price_per_hour"] == shown == "0.900000"
    assert booked["total_cost"] == "0.900000"
    me = ok(api.call("GET", "/v1/accounts/me", market.clients["c-1"]))
    assert Decimal(me["balance"]) + Decimal(me["escrow"]) == Decimal(1000)
    assert me["escrow"] == "0.900000"
