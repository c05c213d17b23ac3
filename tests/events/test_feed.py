"""The event feed through the API: each change's events, to whom they go, cursors, filters
and the long poll."""

from __future__ import annotations

from typing import Any

from tests.support.api import Api
from tests.support.market import Market, booked, release


def events(api: Api, key: str, **params: Any) -> dict[str, Any]:
    response = api.call("GET", "/v1/events", key, params=params)
    assert response.status_code == 200, response.text
    page: dict[str, Any] = response.json()
    return page


def types(page: dict[str, Any]) -> list[str]:
    return [event["type"] for event in page["events"]]


def test_a_booking_and_its_release_reach_the_renter_and_the_provider(
    api: Api, market: Market
) -> None:
    gpu = market.gpu(price_per_hour="2")
    renter = market.client("c1")
    made = booked(api, renter, gpu, hours=1)
    api.pass_time(600, market.miner_key)
    ended = release(api, renter, gpu)

    mine = events(api, renter)
    assert types(mine) == [
        "account.deposit",
        "booking.created",
        "booking.started",
        "booking.released",
        "order.refunded",
    ]
    created = mine["events"][1]
    assert created["object"] == "booking" and created["object_id"] == made["booking_id"]
    assert (
        created["data"]["status"] == "active"
        and created["data"]["total_cost"] == made["total_cost"]
    )
    released = mine["events"][3]["data"]
    shown = api.call("GET", f"/v1/bookings/{made['booking_id']}", renter).json()
    assert released == shown  # the booking as the API shows it
    assert released["status"] == "released" and ended
    refund = mine["events"][4]["data"]
    assert refund["reason"] == "released" and refund["booking_id"] == made["booking_id"]
    ids = [event["id"] for event in mine["events"]]
    assert ids == sorted(ids) and mine["next_after"] == ids[-1] and mine["more"] is False

    provider = events(api, market.miner_key)
    assert types(provider) == [
        "booking.created",
        "booking.started",
        "booking.released",
        "order.refunded",
    ]
    # Another client sees none of it.
    assert events(api, market.client("c2"))["events"][1:] == []
