"""Early release: used whole seconds charged pro rata and paid to the provider, the rest
refunded, exact to the micro-unit; cancellation of reservations; who may release."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.accounts.ledger_invariants import assert_ledger_invariants, snapshot
from tests.bookings.booking_support import (
    Trio,
    account,
    figures,
    get_booking,
    get_order,
    ledger_lines,
    market,
    parse_time,
    release_booking,
    release_gpu,
)
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import details
from tests.support.market import advance, booked
from tests.support.money import cost_units, money, seconds_of, split, units, used_seconds
from tests.support.responses import assert_error


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(database_url: str) -> Iterator[None]:
    yield
    assert_ledger_invariants(database_url)


@pytest.fixture
def m(api: Api) -> Trio:
    return market(api)


@pytest.mark.parametrize(
    ("price", "hours", "elapsed", "used", "charged", "refund"),
    [
        # total 0.500000 over 5400 s; 1234.5 s is 1235 started seconds:
        # 500000 * 1235 / 5400 = 114351.85 → 114352
        ("0.333333", "1.5", 1234.5, 1235, "0.114352", "0.385648"),
        ("3.6", "2", 1800, 1800, "1.800000", "5.400000"),
        # a quarter of a second is one started second: 250000 / 360 = 694.44 → 694
        ("2.5", "0.1", 0.25, 1, "0.000694", "0.249306"),
        # half of one micro-unit rounds up to the whole of it
        ("0.000001", "0.5", 900, 900, "0.000001", "0.000000"),
        ("7.777777", "0.333333", 600, 600, "1.296296", "1.296296"),
        # one micro-second past a whole second starts the next one: 1800 of 3600 s
        ("5", "1", 1799.000001, 1800, "2.500000", "2.500000"),
        # 2999997 * 10799 / 10800 = 2999719.22 → 2999719
        ("0.999999", "3", 10799, 10799, "2.999719", "0.000278"),
        # 1 micro-second short of the end is the last started second: everything charged
        ("1.234567", "0.75", 2699.999999, 2700, "0.925925", "0.000000"),
        # 43 s of 3661 s at 0.01: total 10169.44 → 10169; 10169 * 43 / 3661 = 119.44 → 119
        ("0.01", "1.016944", 42.5, 43, "0.000119", "0.010050"),
    ],
)
def test_early_release_charges_used_seconds_pro_rata(
    api: Api,
    database_url: str,
    price: str,
    hours: str,
    elapsed: float,
    used: int,
    charged: str,
    refund: str,
) -> None:
    m = market(api, price=price)
    body = booked(api, m.client, m.gpu, hours)
    total, booked_seconds = units(body["total_cost"]), seconds_of(hours)
    assert total == cost_units(price, booked_seconds)
    expected = split(
        total, booked_seconds, used_seconds(round(elapsed * 1_000_000), booked_seconds)
    )
    assert (money(expected.charged), money(expected.refund)) == (charged, refund)

    advance(api, elapsed, m.miner)
    response = release_gpu(api, m.client, m.gpu)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["booking_id"] == body["booking_id"]
    assert result["status"] == "released"
    assert result["used_seconds"] == used
    assert result["amount_charged"] == charged and result["refund"] == refund
    assert result["total_cost"] == body["total_cost"]
    assert parse_time(result["ended_at"]) == api.clock.now()
    assert parse_time(result["end_time"]) == parse_time(body["end_time"])  # the window stays

    assert figures(api, m.client) == (money(units("100") - units(charged)), "0.000000")
    assert figures(api, m.miner) == (charged, "0.000000")
    assert get_booking(api, m.client, body["booking_id"]) == {
        k: v for k, v in result.items() if k != "used_seconds"
    }
    order = get_order(api, m.client, body["order_id"])
    assert order["status"] == "released"
    assert (order["amount_charged"], order["refund"]) == (charged, refund)
    assert parse_time(order["closed_at"]) == api.clock.now()
    assert details(api, m.gpu)["status"] in ("available", "offline")
    assert details(api, m.gpu)["booking_expires"] is None

    figures_in_db = assert_ledger_invariants(database_url)
    assert figures_in_db.transactions["booking_released"] == 1
    assert figures_in_db.balance("m1") == units(charged)


def test_release_posts_one_balanced_transaction_visible_in_both_ledgers(api: Api, m: Trio) -> None:
    body = booked(api, m.client, m.gpu, 2)
    advance(api, 1800, m.miner)
    assert release_gpu(api, m.client, m.gpu).status_code == 200
    client_lines = [
        (line["account"], line["amount"])
        for line in ledger_lines(api, m.client)
        if line["kind"] == "booking_released"
    ]
    assert sorted(client_lines) == [("escrow", "-7.200000"), ("main", "5.400000")]
    miner_lines = ledger_lines(api, m.miner)
    assert [(line["kind"], line["account"], line["amount"]) for line in miner_lines] == [
        ("booking_released", "main", "1.800000")
    ]
    assert miner_lines[0]["booking_id"] == body["booking_id"]


def test_release_in_the_same_instant_charges_nothing(api: Api, m: Trio) -> None:
    body = booked(api, m.client, m.gpu, 1)
    result = release_gpu(api, m.client, m.gpu).json()
    assert result["used_seconds"] == 0
    assert result["amount_charged"] == "0.000000" and result["refund"] == "3.600000"
    assert figures(api, m.client) == ("100.000000", "0.000000")
    # Nothing used, everything refunded: the order is cancelled, not released.
    assert get_booking(api, m.client, body["booking_id"])["status"] == "cancelled"


def test_releasing_a_reservation_that_has_not_started_refunds_it_whole(api: Api, m: Trio) -> None:
    start = api.clock.now() + timedelta(hours=1)
    body = booked(api, m.client, m.gpu, 2, start_time=start.isoformat())
    advance(api, 3599.5, m.miner)  # still half a second before its start
    response = release_booking(api, m.client, body["booking_id"])
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["status"] == "cancelled"
    assert result["used_seconds"] == 0
    assert (result["amount_charged"], result["refund"]) == ("0.000000", "7.200000")
    assert figures(api, m.client) == ("100.000000", "0.000000")
    assert figures(api, m.miner) == ("0.000000", "0.000000")
    order = get_order(api, m.client, body["order_id"])
    assert order["status"] == "cancelled"
    assert [h["status"] for h in order["history"]] == ["pending", "cancelled"]
    # The window is free again.
    booked(api, m.other, m.gpu, 3)


def test_reservation_released_through_the_gpu_path_is_cancelled(api: Api, m: Trio) -> None:
    start = api.clock.now() + timedelta(hours=1)
    body = booked(api, m.client, m.gpu, 1, start_time=start.isoformat())
    result = release_gpu(api, m.client, m.gpu).json()
    assert result["booking_id"] == body["booking_id"] and result["status"] == "cancelled"
    assert figures(api, m.client) == ("100.000000", "0.000000")


def test_nothing_to_release_is_409(api: Api, m: Trio, database_url: str) -> None:
    assert_error(release_gpu(api, m.client, m.gpu), 409, "nothing_to_release")
    body = booked(api, m.client, m.gpu, 1)
    advance(api, 60, m.miner)
    assert release_gpu(api, m.client, m.gpu).status_code == 200
    before = snapshot(database_url)
    assert_error(release_gpu(api, m.client, m.gpu), 409, "nothing_to_release")
    assert_error(release_booking(api, m.client, body["booking_id"]), 409, "nothing_to_release")
    assert_error(release_gpu(api, ADMIN_KEY, m.gpu), 409, "nothing_to_release")
    assert snapshot(database_url) == before


def test_unknown_gpu_or_booking_is_404(api: Api, m: Trio) -> None:
    assert_error(release_gpu(api, m.client, "gpu_nope"), 404, "gpu_not_found")
    assert_error(release_booking(api, m.client, "bkg_nope"), 404, "booking_not_found")


def test_somebody_elses_booking_is_not_there_for_the_caller(
    api: Api, m: Trio, database_url: str
) -> None:
    body = booked(api, m.other, m.gpu, 1)
    advance(api, 60, m.miner)
    before = snapshot(database_url)
    assert_error(release_gpu(api, m.client, m.gpu), 409, "nothing_to_release")
    # The same answer as for a booking that does not exist, as `show` gives.
    assert_error(release_booking(api, m.client, body["booking_id"]), 404, "booking_not_found")
    shown = api.call("GET", f"/v1/bookings/{body['booking_id']}", m.client)
    assert_error(shown, 404, "booking_not_found")
    assert_error(release_gpu(api, m.miner, m.gpu), 403, "wrong_role")
    assert_error(release_booking(api, m.miner, body["booking_id"]), 403, "wrong_role")
    assert_error(release_gpu(api, None, m.gpu), 401, "authentication_required")
    assert snapshot(database_url) == before
    assert get_booking(api, m.other, body["booking_id"])["status"] == "active"


def test_a_clients_release_on_a_shared_gpu_touches_only_its_own_booking(api: Api, m: Trio) -> None:
    current = booked(api, m.other, m.gpu, 1)
    start = api.clock.now() + timedelta(hours=2)
    mine = booked(api, m.client, m.gpu, 1, start_time=start.isoformat())
    result = release_gpu(api, m.client, m.gpu).json()
    assert result["booking_id"] == mine["booking_id"] and result["status"] == "cancelled"
    assert get_booking(api, m.other, current["booking_id"])["status"] == "active"
    assert figures(api, m.other) == ("96.400000", "3.600000")


@pytest.mark.parametrize("path", ["gpu", "booking"])
def test_admin_can_release_any_booking(api: Api, m: Trio, path: str) -> None:
    body = booked(api, m.client, m.gpu, 2)
    advance(api, 900, m.miner)
    response = (
        release_gpu(api, ADMIN_KEY, m.gpu)
        if path == "gpu"
        else release_booking(api, ADMIN_KEY, body["booking_id"])
    )
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["booking_id"] == body["booking_id"]
    assert (result["amount_charged"], result["refund"]) == ("0.900000", "6.300000")
    assert figures(api, m.client) == ("99.100000", "0.000000")
    assert figures(api, m.miner) == ("0.900000", "0.000000")


def test_admin_release_on_the_gpu_path_ends_the_current_booking_first(api: Api, m: Trio) -> None:
    current = booked(api, m.other, m.gpu, 1)
    start = api.clock.now() + timedelta(hours=2)
    later = booked(api, m.client, m.gpu, 1, start_time=start.isoformat())
    advance(api, 60, m.miner)
    result = release_gpu(api, ADMIN_KEY, m.gpu).json()
    assert result["booking_id"] == current["booking_id"] and result["status"] == "released"
    assert get_booking(api, m.client, later["booking_id"])["status"] == "pending"


def test_release_after_the_time_is_up_is_409_and_the_booking_completed(
    api: Api, m: Trio, database_url: str
) -> None:
    body = booked(api, m.client, m.gpu, 1)
    advance(api, 3600, m.miner)
    assert_error(release_gpu(api, m.client, m.gpu), 409, "nothing_to_release")
    assert_error(release_booking(api, m.client, body["booking_id"]), 409, "nothing_to_release")
    shown = get_booking(api, m.client, body["booking_id"])
    assert shown["status"] == "completed"
    assert (shown["amount_charged"], shown["refund"]) == ("3.600000", "0.000000")
    assert figures(api, m.client) == ("96.400000", "0.000000")
    assert figures(api, m.miner) == ("3.600000", "0.000000")
    assert get_order(api, m.client, body["order_id"])["status"] == "completed"


def test_booking_path_releases_one_of_several_bookings(api: Api, m: Trio) -> None:
    now = api.clock.now()
    current = booked(api, m.client, m.gpu, 1)
    later = booked(api, m.client, m.gpu, 1, start_time=(now + timedelta(hours=3)).isoformat())
    advance(api, 10, m.miner)
    result = release_booking(api, m.client, later["booking_id"]).json()
    assert result["status"] == "cancelled" and result["refund"] == "3.600000"
    assert get_booking(api, m.client, current["booking_id"])["status"] == "active"
    assert account(api, m.client)["escrow"] == "3.600000"
    # The GPU path now releases the current booking.
    result = release_gpu(api, m.client, m.gpu).json()
    assert result["booking_id"] == current["booking_id"]
    assert result["amount_charged"] == "0.010000"  # 10 of 3600 s at 3.6


def test_a_booking_never_starts_before_the_gpus_last_holder_let_go(api: Api, m: Trio) -> None:
    """A booking whose clock was read while another client's release waited to commit (here:
    the clock set back to that moment) starts when the release let go of the GPU, not
    before: the two never hold the GPU at once."""
    first = booked(api, m.client, m.gpu, hours=1)
    advance(api, 100, m.miner)
    released_at = api.clock.now()
    assert release_booking(api, m.client, first["booking_id"]).status_code == 200
    api.clock.set(released_at - timedelta(milliseconds=250))
    second = booked(api, m.other, m.gpu, hours=1)
    assert parse_time(second["start_time"]) == released_at
    assert parse_time(second["end_time"]) == released_at + timedelta(hours=1)
    assert parse_time(get_booking(api, m.client, first["booking_id"])["ended_at"]) == released_at
