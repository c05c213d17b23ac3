"""Extending a booking: the extra time is charged into escrow; assert_error when it would overlap
the next reservation, for somebody else's booking, and once the booking has ended."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.accounts.ledger_invariants import assert_ledger_invariants, snapshot
from tests.bookings.booking_support import (
    Trio,
    extend,
    figures,
    get_booking,
    ledger_lines,
    market,
    parse_time,
    release_gpu,
)
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import details
from tests.support.market import advance, booked
from tests.support.money import cost_units, money, split, units
from tests.support.responses import assert_error


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(database_url: str) -> Iterator[None]:
    yield
    assert_ledger_invariants(database_url)


@pytest.fixture
def m(api: Api) -> Trio:
    return market(api)


def test_extend_charges_the_extra_time_into_escrow(api: Api, m: Trio) -> None:
    body = booked(api, m.client, m.gpu, 1)
    end = parse_time(body["end_time"])
    advance(api, 600, m.miner)
    response = extend(api, m.client, body["booking_id"], 0.5)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["booking_id"] == body["booking_id"] and result["order_id"] == body["order_id"]
    assert parse_time(result["end_time"]) == end + timedelta(minutes=30)
    assert result["start_time"] == body["start_time"]
    assert result["total_cost"] == "5.400000"
    assert result["duration_hours"] == "1.500000"
    assert result["status"] == "active"
    assert figures(api, m.client) == ("94.600000", "5.400000")
    assert parse_time(details(api, m.gpu)["booking_expires"]) == end + timedelta(minutes=30)
    lines = [
        (line["account"], line["amount"])
        for line in ledger_lines(api, m.client)
        if line["kind"] == "booking_extension"
    ]
    assert sorted(lines) == [("escrow", "1.800000"), ("main", "-1.800000")]
    assert get_booking(api, m.client, body["booking_id"]) == result


def test_extension_cost_is_rounded_on_its_own_and_release_prorates_the_new_total(
    api: Api,
) -> None:
    m = market(api, price="0.333333")
    body = booked(api, m.client, m.gpu, "1.5")  # 499999.5 → 500000
    result = extend(api, m.client, body["booking_id"], "0.5").json()  # 166666.5 → 166667
    assert cost_units("0.333333", 1800) == 166_667
    assert result["total_cost"] == "0.666667"
    extended = extend(api, m.client, body["booking_id"], "0.000278").json()  # one more second
    assert extended["total_cost"] == money(666_667 + cost_units("0.333333", 1))
    total = units(extended["total_cost"])

    advance(api, 3600.5, m.miner)
    released = release_gpu(api, m.client, m.gpu).json()
    expected = split(total, 7201, 3601)
    assert released["used_seconds"] == 3601
    assert released["amount_charged"] == money(expected.charged)
    assert released["refund"] == money(expected.refund)
    assert figures(api, m.miner)[0] == money(expected.charged)


def test_a_pending_reservation_can_be_extended(api: Api, m: Trio) -> None:
    start = api.clock.now() + timedelta(hours=1)
    body = booked(api, m.client, m.gpu, 1, start_time=start.isoformat())
    result = extend(api, m.client, body["booking_id"], 2).json()
    assert result["status"] == "pending"
    assert parse_time(result["end_time"]) == start + timedelta(hours=3)
    assert figures(api, m.client) == ("89.200000", "10.800000")


def test_extension_overlapping_the_next_reservation_is_409(
    api: Api, m: Trio, database_url: str
) -> None:
    body = booked(api, m.client, m.gpu, 1)
    next_start = api.clock.now() + timedelta(hours=2)
    booked(api, m.other, m.gpu, 1, start_time=next_start.isoformat())
    before = snapshot(database_url)
    assert_error(extend(api, m.client, body["booking_id"], "1.000278"), 409, "booking_overlap")
    assert_error(extend(api, m.client, body["booking_id"], 5), 409, "booking_overlap")
    assert snapshot(database_url) == before
    # Up to the reservation's start exactly is fine.
    result = extend(api, m.client, body["booking_id"], 1).json()
    assert parse_time(result["end_time"]) == next_start


def test_only_the_bookings_client_or_an_admin_extends(api: Api, m: Trio, database_url: str) -> None:
    body = booked(api, m.client, m.gpu, 1)
    before = snapshot(database_url)
    assert_error(extend(api, m.other, body["booking_id"], 1), 404, "booking_not_found")
    assert_error(extend(api, m.miner, body["booking_id"], 1), 403, "wrong_role")
    assert_error(extend(api, None, body["booking_id"], 1), 401, "authentication_required")
    assert_error(extend(api, m.client, "bkg_nope", 1), 404, "booking_not_found")
    assert snapshot(database_url) == before
    # An admin's extension is charged to the booking's client.
    assert extend(api, ADMIN_KEY, body["booking_id"], 1).status_code == 200
    assert figures(api, m.client) == ("92.800000", "7.200000")


def test_extending_an_ended_booking_is_409(api: Api, m: Trio, database_url: str) -> None:
    ran_out = booked(api, m.client, m.gpu, 1)
    advance(api, 3600, m.miner)
    assert_error(extend(api, m.client, ran_out["booking_id"], 1), 409, "booking_ended")
    released = booked(api, m.client, m.gpu, 1)
    advance(api, 60, m.miner)
    assert release_gpu(api, m.client, m.gpu).status_code == 200
    before = snapshot(database_url)
    assert_error(extend(api, m.client, released["booking_id"], 1), 409, "booking_ended")
    assert snapshot(database_url) == before
    assert figures(api, m.client) == (
        money(units("100") - units("3.6") - units("0.06")),
        "0.000000",
    )


def test_extension_without_the_money_is_402(api: Api, database_url: str) -> None:
    m = market(api, funds="5")
    body = booked(api, m.client, m.gpu, 1)
    before = snapshot(database_url)
    assert_error(extend(api, m.client, body["booking_id"], 1), 402, "insufficient_funds")
    assert snapshot(database_url) == before
    assert figures(api, m.client) == ("1.400000", "3.600000")


@pytest.mark.parametrize(
    ("hours", "code"),
    [(0, "validation_error"), (-1, "validation_error"), ("0.0001", "duration_too_short")],
)
def test_bad_extension_is_422(api: Api, m: Trio, hours: object, code: str) -> None:
    body = booked(api, m.client, m.gpu, 1)
    assert_error(extend(api, m.client, body["booking_id"], hours), 422, code)


def test_extension_beyond_the_maximum_duration_is_422(api: Api) -> None:
    m = market(api, price="0.01")
    body = booked(api, m.client, m.gpu, 700)
    assert_error(extend(api, m.client, body["booking_id"], "20.000278"), 422, "duration_too_long")
    assert extend(api, m.client, body["booking_id"], 20).status_code == 200


@pytest.mark.parametrize("path", ["/v1/bookings/{id}/extend", "/v1/gangs/{id}/extend"])
def test_an_extension_is_checked_before_its_idempotency_key(api: Api, path: str) -> None:
    """The caller first, then the hours, then the key: a key of the wrong form, or one used
    for another request, does not hide what is wrong with the hours."""
    m = market(api)
    target = path.format(id=booked(api, m.client, m.gpu, 1)["booking_id"])
    too_long = {"hours": 721}
    assert_error(api.call("POST", target, None, json=too_long), 401, "authentication_required")
    odd_key = {"Idempotency-Key": "k" * 300}
    assert_error(
        api.call("POST", target, m.client, json=too_long, headers=odd_key),
        422,
        "duration_too_long",
    )
    used = {"Idempotency-Key": "extend-once"}
    assert api.call("POST", target, m.client, json={"hours": 1}, headers=used).status_code in (
        200,
        404,  # a booking's id is no gang's
    )
    assert_error(
        api.call("POST", target, m.client, json=too_long, headers=used), 422, "duration_too_long"
    )
