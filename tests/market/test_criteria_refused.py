"""What a bid, a job or a booking by criteria asks for is refused for what is wrong with it:
a model name of nothing but spaces, dashes and underscores names no model (it would match
every GPU), and a start out of range is not "no GPU meets the criteria". A GPU is not listed
as such a model, nor is one priced."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.support.api import Api
from tests.support.market import Market
from tests.support.responses import assert_error

NAMES_NOTHING = ["-", " - ", "__"]


@pytest.fixture
def renter(api: Api, market: Market) -> str:
    api.register_gpu(market.miner_key, price_per_hour="0.5")
    return market.client("c1")


def _refused(api: Api, renter: str, path: str, body: dict[str, Any]) -> None:
    assert_error(api.call("POST", path, renter, json=body), 422, "invalid_model")


@pytest.mark.parametrize("name", NAMES_NOTHING)
def test_a_bid_for_no_model_is_refused(api: Api, renter: str, name: str) -> None:
    _refused(api, renter, "/v1/marketplace/bids", {"capacity": 1, "price": "1", "gpu_model": name})
    assert api.call("GET", "/v1/marketplace/bids", renter).json() == []


@pytest.mark.parametrize("field", ["gpu_model", "ai_model", "gpu"])
def test_a_job_for_no_model_is_refused(api: Api, renter: str, field: str) -> None:
    body = {"duration_hours": 1, "constraints": {field: "-"}}
    _refused(api, renter, "/v1/jobs", body)
    assert api.call("GET", "/v1/jobs", renter).json() == []


@pytest.mark.parametrize("field", ["model", "ai_model"])
def test_booking_no_model_by_criteria_is_refused(api: Api, renter: str, field: str) -> None:
    _refused(api, renter, "/v1/marketplace/book", {"duration_hours": 1, field: " - "})
    assert api.call("GET", "/v1/bookings", renter).json() == []


@pytest.mark.parametrize(
    ("minutes", "code"), [(-10, "start_in_past"), (91 * 24 * 60, "start_too_far")]
)
@pytest.mark.parametrize("count", [1, 2])
def test_booking_by_criteria_with_a_start_out_of_range_is_refused_as_such(
    api: Api, renter: str, minutes: int, code: str, count: int
) -> None:
    """Not `no GPU meets the criteria`, which is what every GPU's refusal used to add up to."""
    start = (api.clock.now() + timedelta(minutes=minutes)).isoformat()
    body = {"duration_hours": 1, "start_time": start, "count": count}
    assert_error(api.call("POST", "/v1/marketplace/book", renter, json=body), 422, code)


@pytest.mark.parametrize("name", NAMES_NOTHING)
def test_a_gpu_is_not_listed_as_no_model(api: Api, market: Market, name: str) -> None:
    before = api.call("GET", "/v1/marketplace/gpu/list").json()
    gpu = {"name": name, "memory_gb": 24, "price_per_hour": "0.5"}
    registered = api.call(
        "POST", "/v1/marketplace/gpu/register", market.miner_key, json={"gpu": gpu}
    )
    assert_error(registered, 422, "invalid_model")
    caps = {"gpu": {"model": name, "memory_gb": 24}}
    by_daemon = api.call(
        "POST", "/v1/miners/register", market.miner_key, json={"capabilities": caps}
    )
    assert_error(by_daemon, 422, "invalid_model")
    assert api.call("GET", "/v1/marketplace/gpu/list").json() == before


@pytest.mark.parametrize("name", ["%20", "-", "_%20_"])
def test_no_model_is_priced(api: Api, renter: str, name: str) -> None:
    assert_error(api.call("GET", f"/v1/marketplace/pricing/{name}"), 422, "invalid_model")
