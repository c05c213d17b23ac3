"""A model name of nothing but spaces, dashes and underscores names no model: asked for
by a bid, a job or a booking by criteria it is refused, rather than matching every GPU."""

from __future__ import annotations

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
