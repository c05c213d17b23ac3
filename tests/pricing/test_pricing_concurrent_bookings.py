"""Simultaneous bookings of one model's GPUs, over real HTTP: every booking succeeds (pricing
never fails a booking), the model's price is recomputed and stored exactly once per interval,
and each booking paid the effective price of its GPU."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tests.pricing import pricing_support as ref
from tests.support.api import Api
from tests.support.market import Market
from tests.support.responses import ok
from tests.support.together import each_with_a_client

GPUS = 8


def _book(key: str, gpu: str) -> Callable[[httpx.Client], httpx.Response]:
    def call(client: httpx.Client) -> httpx.Response:
        return client.post(
            f"/v1/marketplace/gpu/{gpu}/book",
            headers={"X-Api-Key": key},
            json={"gpu_id": gpu, "duration_hours": 1},
        )

    return call


def _history(api: Api, model: str) -> list[dict[str, Any]]:
    body = ok(api.call("GET", f"/v1/marketplace/pricing/{model}/history"))
    assert isinstance(body, list)
    return body


@pytest.mark.parametrize("mode", ["fixed", "dynamic"])
@pytest.mark.parametrize("priced_before", [False, True], ids=["first-price", "stale-price"])
def test_simultaneous_bookings_recompute_the_model_once(
    api: Api, app: FastAPI, live_server: str, mode: str, priced_before: bool
) -> None:
    market = Market(api)
    gpus = [market.gpu(name="RTX 5090", price_per_hour="1", pricing_mode=mode) for _ in range(GPUS)]
    keys = [market.client(f"c-{n}") for n in range(GPUS)]
    if priced_before:
        app.state.sweeper.run_once()  # an idle market: 0.9
        api.clock.advance(seconds=61)  # now stale
        market.beat()
    before = len(_history(api, "rtx5090"))
    prices = {g: ok(api.call("GET", f"/v1/marketplace/gpu/{g}"))["price_per_hour"] for g in gpus}

    responses = each_with_a_client(
        live_server, [_book(k, g) for k, g in zip(keys, gpus, strict=True)]
    )
    for response in responses:
        assert isinstance(response, httpx.Response), response
        assert response.status_code == 201, response.text

    points = _history(api, "rtx5090")
    assert len(points) == before + 1
    assert ref.row_counts(app)["model_prices"] == 1
    # Each booking paid its GPU's price of the moment: before the recomputation or, for a
    # dynamic GPU booked after it, the new one.
    after = {g: ok(api.call("GET", f"/v1/marketplace/gpu/{g}"))["price_per_hour"] for g in gpus}
    for response in responses:
        body = response.json()
        assert body["price_per_hour"] in {prices[body["gpu_id"]], after[body["gpu_id"]]}, body
    if mode == "fixed":
        assert after == prices
