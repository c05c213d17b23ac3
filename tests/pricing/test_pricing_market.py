"""``GET /v1/marketplace/pricing/{model}``: GPU-model and AI-model matching, the market
figures over the matching GPUs, the client and provider recommendations, and that a GET
never writes."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import pytest
from fastapi import FastAPI

from tests.pricing import pricing_support as ref
from tests.support.api import Api
from tests.support.market import Market
from tests.support.responses import assert_error, ok

PRICING = "/v1/marketplace/pricing"


def pricing(api: Api, model: str, key: str = "") -> dict[str, Any]:
    body: dict[str, Any] = ok(api.call("GET", f"{PRICING}/{quote(model, safe='')}", key))
    return body


@pytest.fixture
def fleet(market: Market) -> dict[str, str]:
    """Three RTX 4090s (spelled three ways) and an A100; two serve llama2-7b."""
    return {
        "g1": market.gpu(name="RTX 4090", price_per_hour="0.5", ai_models=["llama2-7b"]),
        "g2": market.gpu(name="rtx-4090", price_per_hour="0.9"),
        "g3": market.gpu(name=" RTX  4090 ", price_per_hour="0.7", region="eu-west"),
        "a100": market.gpu(
            name="A100", price_per_hour="2.0", ai_models=["Llama2-7B", "stable-diffusion"]
        ),
    }


# --- matching -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spelling", ["RTX 4090", "rtx4090", "RTX4090", "rtx 4090", "Rtx-4090", "rtx_4090", "RTX  4090"]
)
def test_gpu_model_matches_case_and_space_insensitively(
    api: Api, fleet: dict[str, str], spelling: str
) -> None:
    body = pricing(api, spelling)
    assert body["matched"] == "gpu_model"
    assert body["model"] == spelling
    assert body["gpus_total"] == 3


def test_url_encoded_model_as_the_cli_sends_it(api: Api, fleet: dict[str, str]) -> None:
    response = api.call("GET", f"{PRICING}/RTX%204090")
    body = ok(response)
    assert body["matched"] == "gpu_model" and body["model"] == "RTX 4090"
    assert body == pricing(api, "rtx4090") | {"model": "RTX 4090"}


def test_an_ai_model_named_with_a_slash(api: Api, market: Market) -> None:
    """Hugging Face names hold a slash (org/model): sent encoded, as the CLI does, or not."""
    market.gpu(name="H100", price_per_hour="2.0", ai_models=["meta-llama/Llama-2-7b"])
    for sent in ("meta-llama%2FLlama-2-7b", "meta-llama/Llama-2-7b"):
        body = ok(api.call("GET", f"{PRICING}/{sent}"))
        assert (body["model"], body["matched"]) == ("meta-llama/Llama-2-7b", "ai_model")
        assert body["gpus_total"] == 1
        assert ok(api.call("GET", f"{PRICING}/{sent}/history")) == []
    unknown = api.call("GET", f"{PRICING}/meta-llama%2FLlama-3")
    assert_error(unknown, 404, "model_not_found")


@pytest.mark.parametrize("spelling", ["llama2-7b", "LLAMA2-7B", "llama2 7b", "llama27b"])
def test_ai_model_served_by_gpus(api: Api, fleet: dict[str, str], spelling: str) -> None:
    body = pricing(api, spelling)
    assert body["matched"] == "ai_model"
    assert body["model"] == spelling
    assert body["gpus_total"] == 2
    assert body["price_min"] == "0.500000" and body["price_max"] == "2.000000"
    assert body["price_average"] == "1.250000"
    assert body["price_median"] == "0.500000"  # the lower middle of two


def test_unknown_model_is_404_model_not_found(api: Api, fleet: dict[str, str]) -> None:
    for model in ("H100", "rtx409", "llama3-70b", "RTX 4090 Ti"):
        assert_error(api.call("GET", f"{PRICING}/{quote(model)}"), 404, "model_not_found")
    assert_error(api.call("GET", f"{PRICING}/H100/history"), 404, "model_not_found")


def test_delisted_gpus_do_not_count(api: Api, market: Market, fleet: dict[str, str]) -> None:
    delisted = api.call("DELETE", f"/v1/marketplace/gpu/{fleet['a100']}", market.miner_key)
    assert delisted.status_code == 200, delisted.text
    assert_error(api.call("GET", f"{PRICING}/A100"), 404, "model_not_found")
    assert_error(api.call("GET", f"{PRICING}/stable-diffusion"), 404, "model_not_found")
    llama = pricing(api, "llama2-7b")
    assert llama["gpus_total"] == 1 and llama["price_max"] == "0.500000"


def test_gpu_model_wins_over_an_ai_model_of_the_same_name(api: Api, market: Market) -> None:
    market.gpu(name="T4", price_per_hour="0.2")
    market.gpu(name="A10", price_per_hour="0.6", ai_models=["t4"])
    body = pricing(api, "t4")
    assert body["matched"] == "gpu_model" and body["gpus_total"] == 1
    assert body["price_max"] == "0.200000"


def test_pricing_is_public(api: Api, fleet: dict[str, str]) -> None:
    anonymous = api.client.get(f"{PRICING}/rtx4090")
    assert anonymous.status_code == 200
    assert pricing(api, "rtx4090", api.key("client", "c-1")) == anonymous.json()
    assert pricing(api, "rtx4090", api.key("miner", "m-9")) == anonymous.json()


# --- the market figures -------------------------------------------------------------------


def test_counts_and_price_statistics(api: Api, fleet: dict[str, str]) -> None:
    body = pricing(api, "RTX 4090")
    assert body["gpus_total"] == 3 and body["gpus_available"] == 3
    assert body["price_min"] == "0.500000"
    assert body["price_max"] == "0.900000"
    assert body["price_average"] == "0.700000"
    assert body["price_median"] == "0.700000"


def test_average_is_rounded_half_up_and_median_is_a_listed_price(api: Api, market: Market) -> None:
    for price in ("0.100001", "0.100002", "0.400000", "0.900000"):
        market.gpu(name="L4", price_per_hour=price)
    body = pricing(api, "L4")
    # (100001 + 100002 + 400000 + 900000) / 4 = 375000.75 micro-units
    assert body["price_average"] == "0.375001"
    assert body["price_median"] == "0.100002"
    assert body["base_price"] == "0.100002"


def test_booked_and_offline_gpus_count_in_total_but_not_available(
    api: Api, market: Market, fleet: dict[str, str]
) -> None:
    other = Market(api, miner_id="m-2")
    late = other.gpu(name="RTX 4090", price_per_hour="0.6")
    market.book("c-1", fleet["g1"], "2")
    api.clock.advance(seconds=60)
    market.beat()
    api.clock.advance(seconds=40)  # m-2 last heard of 100 s ago: offline
    gone = ok(api.call("GET", f"/v1/marketplace/gpu/{late}"))
    assert gone["status"] == "offline"
    body = pricing(api, "rtx4090")
    assert body["gpus_total"] == 4
    assert body["gpus_available"] == 2  # g2 and g3
    assert body["price_min"] == "0.500000" and body["price_max"] == "0.900000"
    assert body["price_average"] == "0.675000"
    assert body["price_median"] == "0.600000"
    # Demand is that of the last recomputation (the booking's): 1 of 4 online GPUs booked.
    assert body["demand"]["supply"] == 4 and body["demand"]["recent_bookings"] == 1
    assert Decimal(body["demand"]["utilisation"]) == Decimal("0.25")
    llama = pricing(api, "llama2-7b")
    assert llama["gpus_total"] == 2 and llama["gpus_available"] == 1


def test_recent_bookings_leave_out_free_ones_and_gpus_out_of_supply(
    api: Api, app: FastAPI, market: Market, fleet: dict[str, str]
) -> None:
    """Reservations cancelled before they began cost nothing: made and taken back, they
    would raise anyone's price. Bookings on GPUs delisted or offline since are not demand
    on the model's supply either."""
    other = Market(api, miner_id="m-2")
    gone = other.gpu(name="RTX 4090", price_per_hour="0.6")
    market.book("c-1", fleet["g1"], "2")  # real demand
    c2 = market.client("c-2")
    for hour in range(5):  # reservations a day ahead, each cancelled at once
        start = api.clock.now() + timedelta(days=1, hours=2 * hour)
        made = market.book("c-2", fleet["g2"], "1", start_time=start.isoformat())
        released = api.call("POST", f"/v1/bookings/{made['booking_id']}/release", c2)
        assert ok(released)["status"] == "cancelled"
    start = api.clock.now() + timedelta(days=2)
    market.book("c-2", fleet["g3"], "1", start_time=start.isoformat())  # held, so counted
    other.book("c-3", gone, "1")
    api.pass_time(120, market.miner_key)  # m-2 falls silent: its GPU is offline
    app.state.sweeper.run_once()
    assert pricing(api, "rtx4090")["demand"]["recent_bookings"] == 2


def test_before_any_recomputation_the_figures_are_a_preview(
    api: Api, fleet: dict[str, str]
) -> None:
    body = pricing(api, "rtx4090")
    assert body["updated_at"] is None
    # Idle: target 0.5, one step down from 1.0.
    multiplier = ref.step(None, ref.target(Decimal(0), 0, 3))
    assert multiplier == Decimal("0.9")
    base = ref.median_low([Decimal("0.5"), Decimal("0.9"), Decimal("0.7")])
    assert body["base_price"] == ref.money(base) == "0.700000"
    assert body["current_price"] == ref.money(ref.scaled(base, multiplier)) == "0.630000"
    assert Decimal(body["demand_multiplier"]) == multiplier
    assert body["demand_multiplier"] == ref.ratio(multiplier)
    demand = body["demand"]
    assert Decimal(demand["utilisation"]) == 0
    assert demand["recent_bookings"] == 0
    assert demand["window_minutes"] == 60
    assert demand["supply"] == 3


def test_provider_range_is_the_middle_half_scaled_by_the_multiplier(
    api: Api, market: Market
) -> None:
    for price in ("0.9", "0.5", "0.7", "0.6", "0.8"):
        market.gpu(name="RTX 3090", price_per_hour=price)
    body = pricing(api, "RTX 3090")
    multiplier = Decimal(body["demand_multiplier"])
    assert multiplier == Decimal("0.9")
    assert body["provider_price_range"] == {
        "low": ref.money(ref.scaled(Decimal("0.6"), multiplier)),
        "high": ref.money(ref.scaled(Decimal("0.8"), multiplier)),
    }
    assert body["provider_price_range"] == {"low": "0.540000", "high": "0.720000"}
    assert "25th" in body["provider_price_rule"] and "75th" in body["provider_price_rule"]


# --- the client recommendation ------------------------------------------------------------


def _recommended(api: Api, model: str) -> str | None:
    chosen = pricing(api, model)["recommended_gpu"]
    return None if chosen is None else str(chosen["gpu_id"])


def test_recommendation_is_the_cheapest_well_rated_available_gpu(
    api: Api, market: Market, admin_key: str
) -> None:
    cheap = market.gpu(name="RTX 4080", price_per_hour="0.5")  # unrated
    good = market.gpu(name="RTX 4080", price_per_hour="0.8", region="eu")  # 5, 4 -> 4.50
    poor = market.gpu(name="RTX 4080", price_per_hour="0.6")  # 3 -> 3.00
    edge = market.gpu(name="RTX 4080", price_per_hour="0.9")  # 4 -> exactly 4.00
    busy = market.gpu(name="RTX 4080", price_per_hour="0.3")  # 5, but booked
    good_reviews = [
        market.reviewed("c-1", good, 5)["review_id"],
        market.reviewed("c-2", good, 4)["review_id"],
    ]
    market.reviewed("c-1", poor, 3)
    market.reviewed("c-1", edge, 4)
    market.reviewed("c-1", busy, 5)
    market.book("c-3", busy, "3")
    market.beat()

    body = pricing(api, "RTX 4080")
    assert body["recommended_gpu"] == {
        "gpu_id": good,
        "model": "RTX 4080",
        "price_per_hour": "0.800000",
        "average_rating": "4.50",
        "review_count": 2,
        "region": "eu",
    }
    assert "4.00" in body["recommendation_rule"]

    # Without the 4.50 GPU's reviews, the one rated exactly 4.00 is the well-rated one.
    for rid in good_reviews:
        assert api.call("POST", f"/v1/admin/reviews/{rid}/hide", admin_key).status_code == 200
    assert _recommended(api, "RTX 4080") == edge

    # With no well-rated GPU available, the cheapest available one.
    market.book("c-4", edge, "3")
    assert _recommended(api, "RTX 4080") == cheap
    chosen = pricing(api, "rtx4080")["recommended_gpu"]
    assert chosen["average_rating"] is None and chosen["review_count"] == 0

    # Nothing available: no recommendation.
    market.book("c-5", cheap, "3")
    market.book("c-6", good, "3")
    market.book("c-7", poor, "3")
    body = pricing(api, "RTX 4080")
    assert body["gpus_available"] == 0 and body["recommended_gpu"] is None


def test_recommendation_ties_go_to_the_higher_rating_then_more_reviews(
    api: Api, market: Market
) -> None:
    few = market.gpu(name="V100", price_per_hour="0.4")  # 5 -> 5.00 (1)
    many = market.gpu(name="V100", price_per_hour="0.4")  # 5, 5 -> 5.00 (2)
    lower = market.gpu(name="V100", price_per_hour="0.4")  # 4 -> 4.00 (1)
    market.reviewed("c-1", few, 5)
    market.reviewed("c-1", many, 5)
    market.reviewed("c-2", many, 5)
    market.reviewed("c-1", lower, 4)
    market.beat()
    assert _recommended(api, "V100") == many


def test_offline_gpus_are_never_recommended(api: Api, market: Market) -> None:
    other = Market(api, miner_id="m-2")
    offline = other.gpu(name="T4", price_per_hour="0.1")
    online = market.gpu(name="T4", price_per_hour="0.2")
    other.reviewed("c-1", offline, 5)
    api.clock.advance(seconds=91)
    market.beat()
    assert _recommended(api, "T4") == online


def test_recommendation_for_an_ai_model(api: Api, market: Market) -> None:
    market.gpu(name="A100", price_per_hour="2", ai_models=["sdxl"])
    cheaper = market.gpu(name="L4", price_per_hour="0.7", ai_models=["sdxl"])
    market.gpu(name="T4", price_per_hour="0.1")  # does not serve it
    assert _recommended(api, "SDXL") == cheaper


# --- a GET never writes -------------------------------------------------------------------


def _reads(api: Api) -> None:
    for path in (
        f"{PRICING}/rtx4090",
        f"{PRICING}/RTX%204090",
        f"{PRICING}/llama2-7b",
        f"{PRICING}/A100",
        f"{PRICING}/nothing-like-it",
        f"{PRICING}/rtx4090/history",
        f"{PRICING}/rtx4090/history?bucket=day",
        f"{PRICING}/llama2-7b/history?bucket=hour",
    ):
        assert api.call("GET", path).status_code in (200, 404)


def test_get_never_writes(api: Api, app: FastAPI, market: Market, fleet: dict[str, str]) -> None:
    before = ref.row_counts(app)
    assert before["model_prices"] == 0 and before["price_history"] == 0
    _reads(api)
    api.clock.advance(minutes=10)
    _reads(api)
    assert ref.row_counts(app) == before
    assert pricing(api, "rtx4090")["updated_at"] is None
    assert pricing(api, "llama2-7b")["updated_at"] is None
    assert ok(api.call("GET", f"{PRICING}/rtx4090/history")) == []

    # After a recomputation, reads still leave every pricing row as it was.
    market.book("c-1", fleet["g2"])
    stored = ref.pricing_rows(app)
    counts = ref.row_counts(app)
    assert counts["price_history"] == 1
    updated = pricing(api, "rtx4090")["updated_at"]
    assert updated is not None
    api.clock.advance(minutes=10)
    _reads(api)
    assert ref.pricing_rows(app) == stored
    assert ref.row_counts(app) == counts
    assert pricing(api, "rtx4090")["updated_at"] == updated
