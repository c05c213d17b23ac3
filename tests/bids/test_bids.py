"""Bids: a standing request for GPUs at a maximum price per hour, filled by ordinary bookings
for the client (charged like any booking) when a matching GPU is available at or below the
price, now or on a later sweep; capacity, provider and GPU model; funds; cancel; expiry;
listing; validation."""

from __future__ import annotations

from typing import Any

import pytest

from tests.jobs.slice_support import (
    BID_FIELDS,
    BIDS,
    balance,
    bid,
    bid_of,
    booking,
    bookings,
    cancel_bid,
    my_bids,
    orders,
    place_bid,
    set_price,
    stats,
    sweep,
)
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import details
from tests.support.market import advance, booked, deposit, release
from tests.support.money import cost_units, money, units
from tests.support.responses import assert_error, ok


@pytest.fixture
def miner(api: Api) -> str:
    return api.key("miner", "m1")


@pytest.fixture
def client(api: Api) -> str:
    key = api.key("client", "c1")
    deposit(api, "c1", "100")
    return key


def _spent(*costs: int) -> str:
    return money(units("100") - sum(costs))


# --- filling -------------------------------------------------------------------------------


def test_a_bid_is_filled_at_once_by_a_real_booking(api: Api, miner: str, client: str) -> None:
    gpu_id = api.register_gpu(miner, price_per_hour="0.5")

    response = place_bid(api, client, capacity=1, price="0.6", notes="for training")

    assert response.status_code == 202, response.text
    placed = response.json()
    assert set(placed) == BID_FIELDS
    assert placed["id"].startswith("bid")
    assert placed["status"] == "filled"
    assert (placed["capacity"], placed["filled"]) == (1, 1)
    assert (placed["price"], placed["notes"], placed["client_id"]) == (
        "0.600000",
        "for training",
        "c1",
    )
    assert placed["closed_at"] == "2030-01-01T00:00:00Z"
    [booking_id] = placed["booking_ids"]
    [made] = bookings(api, client)
    assert made["booking_id"] == booking_id
    assert (made["gpu_id"], made["client_id"], made["miner_id"]) == (gpu_id, "c1", "m1")
    assert made["price_per_hour"] == "0.500000"  # the GPU's price, not the bid's
    assert (made["total_cost"], made["status"]) == ("0.500000", "active")
    assert made["duration_hours"] == "1.000000"
    assert balance(api, client) == ("99.500000", "0.500000")
    assert details(api, gpu_id)["status"] == "booked"
    [order] = orders(api, client)
    assert order["booking_id"] == booking_id
    assert bid_of(api, client, placed["id"]) == placed


def test_a_bid_at_exactly_the_price_is_filled(api: Api, miner: str, client: str) -> None:
    api.register_gpu(miner, price_per_hour="0.5")

    assert bid(api, client, capacity=1, price="0.5")["status"] == "filled"


def test_the_bid_duration_sets_the_booking_length_and_cost(
    api: Api, miner: str, client: str
) -> None:
    api.register_gpu(miner, price_per_hour="3.6")

    placed = bid(api, client, capacity=1, price="4", duration_hours="0.25")

    assert placed["duration_hours"] == "0.250000"
    made = booking(api, client, placed["booking_ids"][0])
    assert (made["duration_hours"], made["total_cost"]) == ("0.250000", "0.900000")
    assert made["end_time"] == "2030-01-01T00:15:00Z"
    assert balance(api, client) == (_spent(cost_units("3.6", 900)), "0.900000")


def test_a_bid_below_the_price_stays_open_until_the_price_drops(
    api: Api, miner: str, client: str
) -> None:
    gpu_id = api.register_gpu(miner, price_per_hour="0.5")

    placed = bid(api, client, capacity=1, price="0.4")

    assert (placed["status"], placed["filled"], placed["booking_ids"]) == ("open", 0, [])
    assert placed["closed_at"] is None
    assert bookings(api, client) == []
    assert balance(api, client) == ("100.000000", "0.000000")
    sweep(api)
    assert bid_of(api, client, placed["id"])["status"] == "open"

    set_price(api, miner, gpu_id, "0.4")
    sweep(api)

    filled = bid_of(api, client, placed["id"])
    assert (filled["status"], filled["filled"]) == ("filled", 1)
    [made] = bookings(api, client)
    assert (made["gpu_id"], made["booking_id"]) == (gpu_id, filled["booking_ids"][0])
    assert balance(api, client) == ("99.600000", "0.400000")


def test_a_bid_without_any_gpu_is_filled_by_the_sweeper_once_one_is_registered(
    api: Api, miner: str, client: str
) -> None:
    placed = bid(api, client, capacity=1, price="1")
    assert placed["status"] == "open"
    sweep(api)
    assert bid_of(api, client, placed["id"])["status"] == "open"

    gpu_id = api.register_gpu(miner, price_per_hour="0.8")
    assert bid_of(api, client, placed["id"])["status"] == "open"  # until the sweep
    sweep(api)

    filled = bid_of(api, client, placed["id"])
    assert filled["status"] == "filled"
    assert filled["closed_at"] == "2030-01-01T00:00:00Z"
    [made] = bookings(api, client)
    assert made["gpu_id"] == gpu_id
    assert balance(api, client) == ("99.200000", "0.800000")


def test_a_bid_is_filled_once_the_gpu_is_released(api: Api, miner: str, client: str) -> None:
    other = api.key("client", "c2")
    deposit(api, "c2", "100")
    gpu_id = api.register_gpu(miner, price_per_hour="0.5")
    booked(api, other, gpu_id, hours=2)

    placed = bid(api, client, capacity=1, price="0.5")
    assert placed["status"] == "open"
    advance(api, 600, miner)
    sweep(api)
    assert bid_of(api, client, placed["id"])["status"] == "open"

    release(api, other, gpu_id)
    sweep(api)

    filled = bid_of(api, client, placed["id"])
    assert filled["status"] == "filled"
    [made] = bookings(api, client)
    assert (made["gpu_id"], made["start_time"]) == (gpu_id, "2030-01-01T00:10:00Z")


def test_a_bid_is_filled_once_the_gpus_booking_runs_out(api: Api, miner: str, client: str) -> None:
    other = api.key("client", "c2")
    deposit(api, "c2", "100")
    gpu_id = api.register_gpu(miner, price_per_hour="0.5")
    booked(api, other, gpu_id, hours=1)
    placed = bid(api, client, capacity=1, price="0.5")

    advance(api, 3600, miner)
    sweep(api)

    assert bid_of(api, client, placed["id"])["status"] == "filled"
    [made] = bookings(api, client)
    assert made["start_time"] == "2030-01-01T01:00:00Z"


def test_a_bid_is_not_filled_by_an_offline_miners_gpu(api: Api, miner: str, client: str) -> None:
    api.register_gpu(miner, price_per_hour="0.5")
    advance(api, 91)  # the miner is silent: offline

    placed = bid(api, client, capacity=1, price="1")
    sweep(api)

    assert bid_of(api, client, placed["id"])["status"] == "open"
    advance(api, 1, miner)
    sweep(api)
    assert bid_of(api, client, placed["id"])["status"] == "filled"


def test_capacity_two_books_the_two_cheapest_matching_gpus(
    api: Api, miner: str, client: str
) -> None:
    cheap = api.register_gpu(miner, price_per_hour="0.3")
    middle = api.register_gpu(miner, price_per_hour="0.5")
    dear = api.register_gpu(miner, price_per_hour="0.9")

    placed = bid(api, client, capacity=2, price="0.6")

    assert (placed["status"], placed["filled"], len(placed["booking_ids"])) == ("filled", 2, 2)
    made = {b["booking_id"]: b["gpu_id"] for b in bookings(api, client)}
    assert set(made) == set(placed["booking_ids"])
    assert set(made.values()) == {cheap, middle}
    assert details(api, dear)["status"] == "available"
    assert balance(api, client) == ("99.200000", "0.800000")


def test_a_partly_filled_bid_stays_open_until_the_rest_is_found(
    api: Api, miner: str, client: str
) -> None:
    first = api.register_gpu(miner, price_per_hour="0.5")
    api.register_gpu(miner, price_per_hour="0.9")  # too dear

    placed = bid(api, client, capacity=2, price="0.6")

    assert (placed["status"], placed["filled"]) == ("open", 1)
    assert stats(api)["activeBids"] == 1
    second = api.register_gpu(miner, price_per_hour="0.6")
    sweep(api)
    done = bid_of(api, client, placed["id"])
    assert (done["status"], done["filled"], len(done["booking_ids"])) == ("filled", 2, 2)
    assert done["booking_ids"][0] == placed["booking_ids"][0]
    assert {b["gpu_id"] for b in bookings(api, client)} == {first, second}
    assert balance(api, client) == ("98.900000", "1.100000")
    assert stats(api)["activeBids"] == 0


def test_the_oldest_open_bid_is_filled_first(api: Api, miner: str, client: str) -> None:
    other = api.key("client", "c2")
    deposit(api, "c2", "100")
    older = bid(api, other, capacity=1, price="1")
    advance(api, 1)
    newer = bid(api, client, capacity=1, price="1")
    api.register_gpu(miner, price_per_hour="0.5")

    sweep(api)

    assert bid_of(api, other, older["id"])["status"] == "filled"
    assert bid_of(api, client, newer["id"])["status"] == "open"
    assert bookings(api, client) == []


def test_bids_no_gpu_can_fill_do_not_keep_a_newer_one_from_being_filled(
    api: Api, miner: str, client: str
) -> None:
    """A sweep tries the open bids a page of 50 at a time, going on where the last sweep
    stopped: the 51st bid is reached although the 50 before it never fill."""
    cheap = api.key("client", "c-cheap")
    deposit(api, "c-cheap", "100")
    for _ in range(50):
        bid(api, cheap, capacity=1, price="0.01")  # below any GPU's price
    advance(api, 1)
    placed = bid(api, client, capacity=1, price="1")
    api.register_gpu(miner, price_per_hour="0.5")
    sweep(api)
    sweep(api)
    assert bid_of(api, client, placed["id"])["status"] == "filled"
    assert len(bookings(api, client)) == 1


def test_the_provider_restricts_matching(api: Api, miner: str, client: str) -> None:
    m2 = api.key("miner", "m2")
    api.register_gpu(m2, price_per_hour="0.2")  # cheaper, but not m1's
    mine = api.register_gpu(miner, price_per_hour="0.5")

    placed = bid(api, client, capacity=1, price="1", provider="m1")

    assert placed["provider"] == "m1"
    assert placed["status"] == "filled"
    [made] = bookings(api, client)
    assert (made["gpu_id"], made["miner_id"]) == (mine, "m1")
    nobody = bid(api, client, capacity=1, price="1", provider="m9")
    assert nobody["status"] == "open"
    sweep(api)
    assert bid_of(api, client, nobody["id"])["status"] == "open"


def test_the_gpu_model_restricts_matching(api: Api, miner: str, client: str) -> None:
    api.register_gpu(miner, name="A100", memory_gb=80, price_per_hour="0.2")
    rtx = api.register_gpu(miner, name="RTX 4090", memory_gb=24, price_per_hour="0.5")

    placed = bid(api, client, capacity=1, price="1", gpu_model="rtx-4090")

    assert placed["status"] == "filled"
    [made] = bookings(api, client)
    assert made["gpu_id"] == rtx
    h100 = bid(api, client, capacity=1, price="10", gpu_model="H100")
    assert h100["status"] == "open"
    h100_gpu = api.register_gpu(miner, name="H100", memory_gb=80, price_per_hour="3")
    sweep(api)
    assert bid_of(api, client, h100["id"])["status"] == "filled"
    assert {b["gpu_id"] for b in bookings(api, client)} == {rtx, h100_gpu}


def test_insufficient_funds_leave_the_bid_open(api: Api, miner: str) -> None:
    poor = api.key("client", "c3")
    deposit(api, "c3", "0.1")
    gpu_id = api.register_gpu(miner, price_per_hour="0.5")

    placed = bid(api, poor, capacity=1, price="1")

    assert (placed["status"], placed["filled"]) == ("open", 0)
    assert bookings(api, poor) == []
    assert balance(api, poor) == ("0.100000", "0.000000")
    assert details(api, gpu_id)["status"] == "available"
    sweep(api)
    assert bid_of(api, poor, placed["id"])["status"] == "open"
    assert balance(api, poor) == ("0.100000", "0.000000")

    deposit(api, "c3", "1")
    sweep(api)
    assert bid_of(api, poor, placed["id"])["status"] == "filled"
    assert balance(api, poor) == ("0.600000", "0.500000")


def test_a_client_without_an_account_leaves_the_bid_open(api: Api, miner: str) -> None:
    broke = api.key("client", "c4")
    api.register_gpu(miner, price_per_hour="0.5")

    placed = bid(api, broke, capacity=1, price="1")

    assert placed["status"] == "open"
    assert bookings(api, broke) == []


# --- cancel --------------------------------------------------------------------------------


def test_the_owner_cancels_an_open_bid(api: Api, miner: str, client: str) -> None:
    placed = bid(api, client, capacity=1, price="1")
    advance(api, 30)

    response = cancel_bid(api, client, placed["id"])

    cancelled = ok(response)
    assert set(cancelled) == BID_FIELDS
    assert (cancelled["status"], cancelled["closed_at"]) == ("cancelled", "2030-01-01T00:00:30Z")
    assert bid_of(api, client, placed["id"])["status"] == "cancelled"
    assert_error(cancel_bid(api, client, placed["id"]), 409, "bid_closed")
    api.register_gpu(miner, price_per_hour="0.5")
    sweep(api)
    assert bid_of(api, client, placed["id"])["status"] == "cancelled"
    assert bookings(api, client) == []
    assert balance(api, client) == ("100.000000", "0.000000")


def test_only_the_owner_or_an_admin_cancels(api: Api, miner: str, client: str) -> None:
    other = api.key("client", "c2")
    placed = bid(api, client, capacity=1, price="1")

    assert_error(cancel_bid(api, other, placed["id"]), 404, "bid_not_found")
    assert_error(cancel_bid(api, miner, placed["id"]), 403, "wrong_role")
    assert_error(cancel_bid(api, None, placed["id"]), 401, "authentication_required")
    assert bid_of(api, client, placed["id"])["status"] == "open"
    assert_error(cancel_bid(api, client, "bid_missing"), 404, "bid_not_found")

    assert ok(cancel_bid(api, ADMIN_KEY, placed["id"]))["status"] == "cancelled"


def test_a_filled_bid_cannot_be_cancelled_and_its_booking_stands(
    api: Api, miner: str, client: str
) -> None:
    api.register_gpu(miner, price_per_hour="0.5")
    placed = bid(api, client, capacity=1, price="1")

    assert_error(cancel_bid(api, client, placed["id"]), 409, "bid_closed")
    assert [b["status"] for b in bookings(api, client)] == ["active"]


def test_cancelling_a_partly_filled_bid_keeps_its_bookings(
    api: Api, miner: str, client: str
) -> None:
    api.register_gpu(miner, price_per_hour="0.5")
    placed = bid(api, client, capacity=2, price="1")
    assert (placed["status"], placed["filled"]) == ("open", 1)

    cancelled = ok(cancel_bid(api, client, placed["id"]))

    assert (cancelled["status"], cancelled["filled"]) == ("cancelled", 1)
    assert cancelled["booking_ids"] == placed["booking_ids"]
    api.register_gpu(miner, price_per_hour="0.5")
    sweep(api)
    assert len(bookings(api, client)) == 1
    assert balance(api, client) == ("99.500000", "0.500000")


# --- expiry --------------------------------------------------------------------------------


def test_a_bid_expires_after_its_ttl(api: Api, miner: str, client: str) -> None:
    placed = bid(api, client, capacity=1, price="1", ttl_hours=2)
    assert placed["expires_at"] == "2030-01-01T02:00:00Z"

    advance(api, 2 * 3600 - 1)
    assert bid_of(api, client, placed["id"])["status"] == "open"
    assert stats(api)["activeBids"] == 1

    advance(api, 1)
    assert bid_of(api, client, placed["id"])["status"] == "expired"  # before any sweep
    assert stats(api)["activeBids"] == 0
    sweep(api)
    expired = bid_of(api, client, placed["id"])
    assert (expired["status"], expired["closed_at"]) == ("expired", "2030-01-01T02:00:00Z")
    assert stats(api)["activeBids"] == 0

    api.register_gpu(miner, price_per_hour="0.5")
    sweep(api)
    assert bid_of(api, client, placed["id"])["status"] == "expired"
    assert bookings(api, client) == []
    assert_error(cancel_bid(api, client, placed["id"]), 409, "bid_closed")


def test_the_default_ttl_is_a_day(api: Api, client: str) -> None:
    placed = bid(api, client, capacity=1, price="1")

    assert placed["expires_at"] == "2030-01-02T00:00:00Z"
    advance(api, 24 * 3600)
    assert bid_of(api, client, placed["id"])["status"] == "expired"


def test_an_expired_bid_is_not_filled_even_if_never_swept(
    api: Api, miner: str, client: str
) -> None:
    placed = bid(api, client, capacity=1, price="1", ttl_hours=1)
    advance(api, 3600)
    api.register_gpu(miner, price_per_hour="0.5")

    sweep(api)

    assert bid_of(api, client, placed["id"])["status"] == "expired"
    assert bookings(api, client) == []


# --- listing -------------------------------------------------------------------------------


def test_clients_list_their_own_bids_and_an_admin_all(api: Api, client: str) -> None:
    other = api.key("client", "c2")
    first = bid(api, client, capacity=1, price="1")
    advance(api, 1)
    second = bid(api, client, capacity=2, price="2")
    theirs = bid(api, other, capacity=1, price="3")

    mine = my_bids(api, client)
    assert [b["id"] for b in mine] == [second["id"], first["id"]]  # newest first
    assert all(set(b) == BID_FIELDS for b in mine)
    assert [b["id"] for b in my_bids(api, other)] == [theirs["id"]]
    assert {b["id"] for b in my_bids(api, ADMIN_KEY)} == {first["id"], second["id"], theirs["id"]}
    assert my_bids(api, api.key("miner", "m7")) == []
    assert_error(api.call("GET", BIDS), 401, "authentication_required")
    page = ok(api.call("GET", BIDS, ADMIN_KEY, params={"limit": 1, "offset": 1}))
    assert len(page) == 1
    assert_error(api.call("GET", BIDS, client, params={"limit": 0}), 422)


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"price": "1"},
        {"capacity": 1},
        {"capacity": 0, "price": "1"},
        {"capacity": 65, "price": "1"},
        {"capacity": "many", "price": "1"},
        {"capacity": 1, "price": "0"},
        {"capacity": 1, "price": "-1"},
        {"capacity": 1, "price": "abc"},
        {"capacity": 1, "price": "0.1234567"},
        {"capacity": 1, "price": "1", "ttl_hours": 0},
        {"capacity": 1, "price": "1", "ttl_hours": 721},
        {"capacity": 1, "price": "1", "duration_hours": 0},
        {"capacity": 1, "price": "1", "duration_hours": "721"},
        {"capacity": 1, "price": "1", "notes": "x" * 1001},
        {"capacity": 1, "price": "1", "provider": "p" * 129},
        {"capacity": 1, "price": "1", "colour": "blue"},
    ],
)
def test_bad_input_is_422(api: Api, client: str, body: dict[str, Any]) -> None:
    assert_error(place_bid(api, client, **body), 422)

    assert my_bids(api, client) == []


def test_bad_json_is_422(api: Api, client: str) -> None:
    response = api.call(
        "POST", BIDS, client, content=b"{", headers={"Content-Type": "application/json"}
    )

    assert_error(response, 422)


def test_only_clients_place_bids(api: Api, miner: str) -> None:
    assert_error(place_bid(api, miner, capacity=1, price="1"), 403, "wrong_role")
    assert_error(place_bid(api, ADMIN_KEY, capacity=1, price="1"), 403, "wrong_role")
    assert_error(
        api.call("POST", BIDS, None, json={"capacity": 1, "price": "1"}),
        401,
        "authentication_required",
    )
    assert my_bids(api, ADMIN_KEY) == []
