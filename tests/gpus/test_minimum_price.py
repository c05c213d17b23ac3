"""No GPU is free: a price per hour below `AITBC_MIN_PRICE_PER_HOUR` (default 0.01) is refused
wherever a GPU's own price is set, and nothing is stored."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from aitbc.config import Settings
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import GPU_REGISTER, gpu_path, list_gpus
from tests.support.responses import assert_error


@pytest.fixture
def settings(database_url: str) -> Settings:
    """The product's defaults, minimum price included."""
    return Settings(
        database_url=database_url,
        admin_key=ADMIN_KEY,
        sweep_interval_seconds=0,
        environment="test",
    )


def _register(api: Api, key: str, price: Any) -> Any:
    spec = {"name": "RTX 4090", "memory_gb": 24, "price_per_hour": price}
    return api.call("POST", GPU_REGISTER, key, json={"gpu": spec})


@pytest.mark.parametrize("price", ["0", 0, "0.009999", "0.000001"])
def test_a_price_below_the_minimum_is_refused_everywhere(api: Api, price: Any) -> None:
    miner = api.key("miner", "m-1")
    error = assert_error(_register(api, miner, price), 422, "price_below_minimum")
    assert "at least 0.01" in error["detail"]
    daemon = {
        "gpus": [{"slot": "0", "model": "RTX 4090", "memory_gb": 24, "price_per_hour": price}]
    }
    assert_error(
        api.call("POST", "/v1/miners/register", miner, json=daemon), 422, "price_below_minimum"
    )
    assert list_gpus(api) == []

    response = _register(api, miner, "0.01")
    assert response.status_code == 201, response.text
    gpu_id = response.json()["gpu_id"]
    change = api.call("PATCH", gpu_path(gpu_id), miner, json={"price_per_hour": price})
    assert_error(change, 422, "price_below_minimum")
    assert list_gpus(api)[0]["base_price_per_hour"] == "0.010000"


def test_the_minimum_is_a_setting(database_url: str) -> None:
    with pytest.raises(ValueError):
        Settings(database_url=database_url, admin_key=ADMIN_KEY, min_price_per_hour=Decimal(0))
    lower = Settings(
        database_url=database_url, admin_key=ADMIN_KEY, min_price_per_hour=Decimal("0.5")
    )
    assert str(lower.min_price_per_hour) == "0.5"
