"""Booking a GPU: the 201 body, escrow, GPU state, future reservations, and every refusal
with its machine code and nothing changed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta, timezone
from functools import partial
from typing import Any

import pytest

from tests.accounts.ledger_invariants import assert_ledger_invariants, snapshot
from tests.bookings.booking_support import (
    Trio,
    account,
    book,
    figures,
    get_booking,
    ledger_lines,
    market,
    orders,
    parse_time,
    queued_job,
    release_gpu,
)
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import details
from tests.support.market import advance, booked, deposit, heartbeat
from tests.support.money import cost_units, money, seconds_of
from tests.support.responses import assert_error


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(database_url: str) -> Iterator[None]:
    yield
    assert_ledger_invariants(database_url)


@pytest.fixture
def m(api: Api) -> Trio:
    return market(api)


def test_book_now_returns_the_booking_and_moves_the_cost_into_escrow(api: Api, m: Trio) -> None:
    now = api.clock.now()
    job_id = queued_job(api, m.client)
    response = book(api, m.client, m.gpu, 2, job_id=job_id)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["booking_id"].startswith("bkg_") and body["order_id"].startswith("ord_")
    assert body["gpu_id"] == m.gpu
    assert body["client_id"] == "c1" and body["miner_id"] == "m1"
    assert body["job_id"] == job_id
    assert body["status"] == "active"
    assert parse_time(body["start_time"]) == now
    assert parse_time(body["end_time"]) == now + timedelta(hours=2)
    assert body["price_per_hour"] == "3.600000"
    assert body["total_cost"] == "7.200000"
    assert body["amount_charged"] == "0.000000" and body["refund"] == "0.000000"
    assert body["ended_at"] is None

    me = account(api, m.client)
    assert (me["balance"], me["escrow"], me["unsettled"]) == ("92.800000", "7.200000", "0.000000")
    assert figures(api, m.other) == ("100.000000", "0.000000")
    assert figures(api, m.miner) == ("0.000000", "0.000000")

    shown = details(api, m.gpu)
    assert shown["status"] == "booked"
    assert parse_time(shown["booking_expires"]) == now + timedelta(hours=2)
    assert shown["total_bookings"] == 1
    available = api.call("GET", "/v1/marketplace/gpu/list", params={"available": "true"}).json()
    assert m.gpu not in [g["gpu_id"] for g in available]

    lines = ledger_lines(api, m.client)
    escrow = [line for line in lines if line["kind"] == "booking_escrow"]
    assert sorted((line["account"], line["amount"]) for line in escrow) == [
        ("escrow", "7.200000"),
        ("main", "-7.200000"),
    ]
    assert {line["booking_id"] for line in escrow} == {body["booking_id"]}
    assert get_booking(api, m.client, body["booking_id"]) == body


@pytest.mark.parametrize("whose", ["another client's", "nobody's"])
def test_a_booking_names_only_a_job_of_its_own_client(api: Api, m: Trio, whose: str) -> None:
    job_id = queued_job(api, m.other) if whose == "another client's" else "job_nonexistent"
    assert_error(book(api, m.client, m.gpu, 1, job_id=job_id), 404, "job_not_found")
    assert figures(api, m.client) == ("100.000000", "0.000000")
    assert details(api, m.gpu)["status"] == "available"


@pytest.mark.parametrize(
    ("price", "hours", "total"),
    [
        ("0.333333", "1.5", "0.500000"),  # 499999.5 micro-units rounds half up
        ("1", "0.000278", "0.000278"),  # 1.0008 s is one second
        ("2.5", "0.1", "0.250000"),
        ("0.000001", "0.5", "0.000001"),  # half a micro-unit rounds up
        ("7.777777", "0.333333", "2.592592"),  # 1199.9988 s is 1200 s
        ("1.234567", "0.75", "0.925925"),
    ],
)
def test_total_cost_is_price_times_duration_rounded_half_up(
    api: Api, price: str, hours: str, total: str
) -> None:
    m = market(api, price=price)
    body = booked(api, m.client, m.gpu, hours)
    assert body["total_cost"] == total == money(cost_units(price, seconds_of(hours)))
    assert body["price_per_hour"] == money(cost_units(price, 3600))
    assert parse_time(body["end_time"]) - parse_time(body["start_time"]) == timedelta(
        seconds=seconds_of(hours)
    )
    assert figures(api, m.client)[1] == total


def test_duration_may_be_a_json_number_or_a_string(api: Api, m: Trio) -> None:
    first = booked(api, m.client, m.gpu, 0.5)
    assert first["total_cost"] == "1.800000"
    assert release_gpu(api, m.client, m.gpu).status_code == 200
    second = booked(api, m.client, m.gpu, "0.25")
    assert second["total_cost"] == "0.900000"


def test_no_gpu_is_free_so_no_booking_is(api: Api) -> None:
    miner = api.key("miner", "m-free")
    spec = {"name": "RTX 4090", "memory_gb": 24, "price_per_hour": "0"}
    response = api.call("POST", "/v1/marketplace/gpu/register", miner, json={"gpu": spec})
    assert_error(response, 422, "price_below_minimum")


def test_a_released_gpu_is_available_to_the_next_client_at_once(api: Api, m: Trio) -> None:
    booked(api, m.client, m.gpu, 1)
    advance(api, 60, m.miner)
    assert release_gpu(api, m.client, m.gpu).status_code == 200
    assert details(api, m.gpu)["status"] == "available"
    second = booked(api, m.other, m.gpu, 1)
    assert second["client_id"] == "c2"
    assert details(api, m.gpu)["total_bookings"] == 2


# Refusals: status, machine code, and not one row or balance changed.


def assert_refused_without_change(
    api: Api,
    database_url: str,
    request: Callable[[], Any],
    status: int,
    code: str,
    keys: tuple[str, ...] = (),
) -> None:
    before = snapshot(database_url)
    seen_before = [account(api, key) for key in keys]
    orders_before = api.call("GET", "/v1/marketplace/orders", ADMIN_KEY, params={"limit": 500})
    assert_error(request(), status, code)
    assert snapshot(database_url) == before
    assert [account(api, key) for key in keys] == seen_before
    orders_after = api.call("GET", "/v1/marketplace/orders", ADMIN_KEY, params={"limit": 500})
    assert orders_after.json() == orders_before.json()


def test_unknown_gpu_is_404(api: Api, m: Trio, database_url: str) -> None:
    assert_refused_without_change(
        api,
        database_url,
        lambda: book(api, m.client, "gpu_doesnotexist", 1),
        404,
        "gpu_not_found",
        (m.client,),
    )


def test_gpu_booked_by_someone_else_is_409(api: Api, m: Trio, database_url: str) -> None:
    booked(api, m.other, m.gpu, 1)
    assert_refused_without_change(
        api, database_url, lambda: book(api, m.client, m.gpu, 1), 409, "gpu_booked", (m.client,)
    )
    # Also for the booking client itself, and for a reservation starting inside the booking.
    assert_refused_without_change(
        api, database_url, lambda: book(api, m.other, m.gpu, 1), 409, "gpu_booked", (m.other,)
    )
    later = (api.clock.now() + timedelta(minutes=30)).isoformat()
    assert_refused_without_change(
        api,
        database_url,
        lambda: book(api, m.client, m.gpu, 1, start_time=later),
        409,
        "gpu_booked",
        (m.client,),
    )


def test_window_overlapping_a_reservation_is_409(api: Api, m: Trio, database_url: str) -> None:
    start = api.clock.now() + timedelta(hours=2)
    booked(api, m.other, m.gpu, 1, start_time=start.isoformat())
    for hours, start_time in [
        (3, None),  # now → +3 h runs into the reservation
        (1, start - timedelta(minutes=30)),  # ends inside it
        (0.5, start + timedelta(minutes=15)),  # inside it
        (4, start - timedelta(hours=1)),  # covers it
    ]:
        extra: dict[str, Any] = {} if start_time is None else {"start_time": start_time.isoformat()}
        assert_refused_without_change(
            api,
            database_url,
            partial(book, api, m.client, m.gpu, hours, **extra),
            409,
            "booking_overlap",
            (m.client,),
        )
    # Back to back on either side is fine.
    before = booked(api, m.client, m.gpu, 2)
    assert parse_time(before["end_time"]) == start
    after = booked(api, m.client, m.gpu, 1, start_time=(start + timedelta(hours=1)).isoformat())
    assert after["status"] == "pending"


def test_offline_gpu_is_409(api: Api, m: Trio, database_url: str) -> None:
    api.clock.advance(seconds=91)  # no heartbeat for more than 90 s
    assert details(api, m.gpu)["status"] == "offline"
    assert_refused_without_change(
        api, database_url, lambda: book(api, m.client, m.gpu, 1), 409, "gpu_offline", (m.client,)
    )
    heartbeat(api, m.miner)
    booked(api, m.client, m.gpu, 1)


def test_offline_means_more_than_90_seconds_without_a_heartbeat(api: Api, m: Trio) -> None:
    api.clock.advance(seconds=90)
    assert details(api, m.gpu)["status"] == "available"
    booked(api, m.client, m.gpu, 1)
    assert release_gpu(api, m.client, m.gpu).status_code == 200
    api.clock.advance(microseconds=1)
    assert details(api, m.gpu)["status"] == "offline"
    assert_error(book(api, m.client, m.gpu, 1), 409, "gpu_offline")


def test_start_time_in_another_time_zone(api: Api, m: Trio) -> None:
    start = api.clock.now() + timedelta(hours=1)
    local = start.astimezone(timezone(timedelta(hours=2))).isoformat()
    assert local.endswith("+02:00")
    body = booked(api, m.client, m.gpu, 1, start_time=local)
    assert parse_time(body["start_time"]) == start
    # The 201 body is the booking as every later read shows it, in UTC like every timestamp.
    assert body["start_time"].endswith(("Z", "+00:00")), body["start_time"]
    assert get_booking(api, m.client, body["booking_id"]) == body


def test_gpu_of_a_miner_reporting_offline_is_409(api: Api, m: Trio, database_url: str) -> None:
    response = api.call("POST", "/v1/miners/heartbeat", m.miner, json={"status": "offline"})
    assert response.status_code == 200, response.text
    assert_refused_without_change(
        api, database_url, lambda: book(api, m.client, m.gpu, 1), 409, "gpu_offline", (m.client,)
    )


def test_delisted_gpu_is_409(api: Api, m: Trio, database_url: str) -> None:
    response = api.call("DELETE", f"/v1/marketplace/gpu/{m.gpu}", m.miner)
    assert response.status_code == 200, response.text
    assert_refused_without_change(
        api, database_url, lambda: book(api, m.client, m.gpu, 1), 409, "gpu_delisted", (m.client,)
    )


def test_insufficient_balance_is_402(api: Api, m: Trio, database_url: str) -> None:
    # 28 h cost 100.8 > 100.
    assert_refused_without_change(
        api,
        database_url,
        lambda: book(api, m.client, m.gpu, 28),
        402,
        "insufficient_funds",
        (m.client,),
    )
    # A client that never had a deposit.
    poor = api.key("client", "c3")
    assert_refused_without_change(
        api, database_url, lambda: book(api, poor, m.gpu, 1), 402, "insufficient_funds", (poor,)
    )
    # Exactly the balance is enough: 100 / 3.6 h = 100000 s.
    body = booked(api, m.client, m.gpu, "27.777778")
    assert body["total_cost"] == "100.000000"
    assert figures(api, m.client) == ("0.000000", "100.000000")


def test_insufficient_balance_counts_money_already_in_escrow(
    api: Api, m: Trio, database_url: str
) -> None:
    second = api.register_gpu(m.miner, price_per_hour="10")
    booked(api, m.client, m.gpu, 20)  # 72 in escrow, 28 left
    assert_refused_without_change(
        api, database_url, lambda: book(api, m.client, second, 3), 402, "insufficient_funds"
    )
    booked(api, m.client, second, "2.8")
    assert figures(api, m.client) == ("0.000000", "100.000000")


def test_price_above_the_guard_is_409(api: Api, m: Trio, database_url: str) -> None:
    assert_refused_without_change(
        api,
        database_url,
        lambda: book(api, m.client, m.gpu, 1, max_price_per_hour="3.599999"),
        409,
        "price_above_limit",
        (m.client,),
    )
    assert booked(api, m.client, m.gpu, 1, max_price_per_hour="3.6")["price_per_hour"] == "3.600000"


def test_price_is_locked_at_booking_time(api: Api, m: Trio) -> None:
    body = booked(api, m.client, m.gpu, 1)
    patch = api.call("PATCH", f"/v1/marketplace/gpu/{m.gpu}", m.miner, json={"price_per_hour": "9"})
    assert patch.status_code == 200, patch.text
    advance(api, 1800, m.miner)
    released = release_gpu(api, m.client, m.gpu).json()
    assert released["price_per_hour"] == "3.600000" and released["amount_charged"] == "1.800000"
    assert get_booking(api, m.client, body["booking_id"])["total_cost"] == "3.600000"


@pytest.mark.parametrize(
    ("hours", "code"),
    [
        (0, "validation_error"),
        (-1, "validation_error"),
        ("-0.5", "validation_error"),
        ("0.0000001", "validation_error"),  # more than six decimals
        ("abc", "validation_error"),
        (None, "validation_error"),
        ("0.0001", "duration_too_short"),  # 0.36 s rounds to no second at all
        (721, "duration_too_long"),  # the default maximum is 720 h
        (100_001, "validation_error"),
    ],
)
def test_bad_duration_is_422(api: Api, m: Trio, database_url: str, hours: Any, code: str) -> None:
    assert_refused_without_change(
        api, database_url, lambda: book(api, m.client, m.gpu, hours), 422, code, (m.client,)
    )


def test_missing_duration_and_unknown_fields_are_422(api: Api, m: Trio, database_url: str) -> None:
    path = f"/v1/marketplace/gpu/{m.gpu}/book"
    for body in ({"gpu_id": m.gpu}, {"duration_hours": 1, "colour": "red"}, [1, 2], "x"):
        assert_refused_without_change(
            api,
            database_url,
            partial(api.call, "POST", path, m.client, json=body),
            422,
            "validation_error",
        )


def test_maximum_duration_is_allowed(api: Api) -> None:
    m = market(api, price="0.01", funds="10")
    body = booked(api, m.client, m.gpu, 720)
    assert body["total_cost"] == "7.200000"


def test_gpu_id_in_the_body_must_match_the_path(api: Api, m: Trio, database_url: str) -> None:
    other_gpu = api.register_gpu(m.miner)
    assert_refused_without_change(
        api,
        database_url,
        lambda: api.call(
            "POST",
            f"/v1/marketplace/gpu/{m.gpu}/book",
            m.client,
            json={"gpu_id": other_gpu, "duration_hours": 1},
        ),
        422,
        "gpu_id_mismatch",
    )
    # The body's gpu_id is optional.
    response = api.call(
        "POST", f"/v1/marketplace/gpu/{m.gpu}/book", m.client, json={"duration_hours": 1}
    )
    assert response.status_code == 201, response.text
    assert response.json()["gpu_id"] == m.gpu


def test_only_clients_book(api: Api, m: Trio, database_url: str) -> None:
    for key, status, code in [
        (m.miner, 403, "wrong_role"),
        (ADMIN_KEY, 403, "wrong_role"),
        (None, 401, "authentication_required"),
        ("aitbc_not-a-real-key", 401, "invalid_api_key"),
    ]:
        assert_refused_without_change(
            api, database_url, partial(book, api, key, m.gpu, 1), status, code
        )


def test_start_time_must_be_aware_near_and_not_past(api: Api, m: Trio, database_url: str) -> None:
    now = api.clock.now()
    for start, code in [
        (now - timedelta(minutes=10), "start_in_past"),
        (now + timedelta(days=91), "start_too_far"),
    ]:
        assert_refused_without_change(
            api,
            database_url,
            partial(book, api, m.client, m.gpu, 1, start_time=start.isoformat()),
            422,
            code,
        )
    naive = (now + timedelta(hours=1)).replace(tzinfo=None).isoformat()
    assert_refused_without_change(
        api,
        database_url,
        lambda: book(api, m.client, m.gpu, 1, start_time=naive),
        422,
        "validation_error",
    )


def test_start_a_little_in_the_past_means_now(api: Api, m: Trio) -> None:
    now = api.clock.now()
    body = booked(api, m.client, m.gpu, 1, start_time=(now - timedelta(minutes=2)).isoformat())
    assert parse_time(body["start_time"]) == now and body["status"] == "active"
    assert parse_time(body["end_time"]) == now + timedelta(hours=1)


def test_future_reservation_is_pending_until_its_start(api: Api, m: Trio) -> None:
    now = api.clock.now()
    start = now + timedelta(hours=1)
    body = booked(api, m.client, m.gpu, 2, start_time=start.isoformat())
    assert body["status"] == "pending"
    assert parse_time(body["start_time"]) == start
    assert parse_time(body["end_time"]) == start + timedelta(hours=2)
    assert body["total_cost"] == "7.200000"
    assert figures(api, m.client) == ("92.800000", "7.200000")  # paid up front

    shown = details(api, m.gpu)
    assert shown["status"] == "available" and shown["booking_expires"] is None
    assert shown["total_bookings"] == 1
    available = api.call("GET", "/v1/marketplace/gpu/list", params={"available": "true"}).json()
    assert m.gpu in [g["gpu_id"] for g in available]
    assert [o["status"] for o in orders(api, m.client)] == ["pending"]

    # Someone else may use the GPU until the reservation starts, and not a second longer.
    assert_error(book(api, m.other, m.gpu, "1.000278"), 409, "booking_overlap")
    filler = booked(api, m.other, m.gpu, 1)
    assert parse_time(filler["end_time"]) == start

    advance(api, 3599, m.miner)
    assert details(api, m.gpu)["booking_expires"] == filler["end_time"]
    assert get_booking(api, m.client, body["booking_id"])["status"] == "pending"

    advance(api, 1, m.miner)  # the reservation's start
    shown = details(api, m.gpu)
    assert shown["status"] == "booked"
    assert parse_time(shown["booking_expires"]) == start + timedelta(hours=2)
    assert get_booking(api, m.client, body["booking_id"])["status"] == "active"
    assert get_booking(api, m.other, filler["booking_id"])["status"] == "completed"
    assert [o["status"] for o in orders(api, m.client)] == ["active"]
    assert_error(book(api, m.other, m.gpu, 1), 409, "gpu_booked")


def test_reservations_may_follow_each_other_and_count_as_bookings(api: Api, m: Trio) -> None:
    now = api.clock.now()
    for i in range(3):
        booked(api, m.client, m.gpu, 1, start_time=(now + timedelta(hours=1 + i)).isoformat())
    assert details(api, m.gpu)["total_bookings"] == 3
    assert figures(api, m.client) == ("89.200000", "10.800000")
    deposit(api, "c1", "0.000001")
    assert figures(api, m.client) == ("89.200001", "10.800000")


def test_a_gpu_shows_its_next_reservation(api: Api, m: Trio) -> None:
    assert details(api, m.gpu)["next_reservation_at"] is None
    start = api.clock.now() + timedelta(days=2)
    reserved = booked(api, m.client, m.gpu, 1, start_time=start.isoformat())
    later = booked(api, m.other, m.gpu, 1, start_time=(start + timedelta(days=1)).isoformat())
    shown = details(api, m.gpu)
    assert shown["status"] == "available"
    assert shown["next_reservation_at"] == reserved["start_time"]
    listed = api.call("GET", "/v1/marketplace/gpu/list").json()
    assert listed[0]["next_reservation_at"] == reserved["start_time"]
    # Once the first one runs, the next is the later one. The miner may be away until just
    # before it begins (nothing of its runs meanwhile): two days of heartbeats every minute
    # would cost the test thousands of requests.
    api.clock.advance(seconds=2 * 86400 - 90)
    advance(api, 150, m.miner)  # back 30 s before the start, online through its first minute
    running = details(api, m.gpu)
    assert running["status"] == "booked"
    assert running["next_reservation_at"] == later["start_time"]


def test_a_booking_that_costs_nothing_is_still_made_and_posts_nothing(
    api: Api, database_url: str
) -> None:
    """One second at a millionth of a token an hour rounds to nothing: the booking, its
    order and the GPU's count are written all the same, and no money moves."""
    miner = api.key("miner", "m-free")
    client = api.key("client", "c-free")
    deposit(api, "c-free", "1")
    gpu = api.register_gpu(miner, price_per_hour="0.000001")
    before = api.call("GET", "/v1/accounts/me", client).json()
    made = api.call(
        "POST", f"/v1/marketplace/gpu/{gpu}/book", client, json={"duration_hours": "0.000278"}
    )
    assert made.status_code == 201, made.text
    booking = made.json()
    assert booking["total_cost"] == "0.000000"
    shown = api.call("GET", f"/v1/bookings/{booking['booking_id']}", client)
    assert shown.status_code == 200, shown.text
    assert details(api, gpu)["total_bookings"] == 1
    assert api.call("GET", "/v1/accounts/me", client).json() == before
    assert_ledger_invariants(database_url)
