"""Interruptible bookings: the bid is what they pay; an on-demand booking or a higher bid
displaces them after the notice, charging them to that second and refunding the rest at
once; bids can be raised; a GPU's details say what it costs now."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.bookings.booking_support import (
    Trio,
    book,
    booked,
    figures,
    get_booking,
    get_order,
    market,
    parse_time,
    release_booking,
)
from tests.jobs.slice_support import sweep
from tests.support.api import Api
from tests.support.gpus import details
from tests.support.market import Market, advance, heartbeat
from tests.support.money import cost_units, money, split, units
from tests.support.responses import assert_error

NOTICE = 30  # AITBC_PREEMPT_NOTICE_SECONDS by default


@pytest.fixture
def m(api: Api) -> Trio:
    return market(api, price="3.6")


def interruptible(api: Api, key: str, gpu_id: str, bid: str, hours: Any = 1, **body: Any) -> Any:
    return book(api, key, gpu_id, hours, rental_type="interruptible", bid_per_hour=bid, **body)


def events(api: Api, key: str, types: str) -> list[dict[str, Any]]:
    response = api.call("GET", "/v1/events", key, params={"types": types})
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()["events"]
    return found


def test_a_booking_that_names_no_type_is_on_demand_and_says_so(api: Api, m: Trio) -> None:
    made = booked(api, m.client, m.gpu, 1)
    assert (made["rental_type"], made["bid_per_hour"]) == ("on_demand", None)
    assert get_order(api, m.client, made["order_id"])["rental_type"] == "on_demand"


def test_an_interruptible_booking_pays_its_bid(api: Api, m: Trio) -> None:
    response = interruptible(api, m.client, m.gpu, "1.2", 2)
    assert response.status_code == 201, response.text
    made = response.json()
    assert made["rental_type"] == "interruptible"
    assert made["bid_per_hour"] == made["price_per_hour"] == "1.200000"
    assert made["total_cost"] == money(cost_units("1.2", 7200))
    assert figures(api, m.client) == (money(units("100") - units("2.4")), "2.400000")
    order = get_order(api, m.client, made["order_id"])
    assert (order["rental_type"], order["price_per_hour"]) == ("interruptible", "1.200000")


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"rental_type": "interruptible"}, 422, "bid_required"),
        ({"bid_per_hour": "1"}, 422, "bid_needs_interruptible"),
        ({"rental_type": "on_demand", "bid_per_hour": "1"}, 422, "bid_needs_interruptible"),
        # the least bid is AITBC_MIN_BID_SHARE (0.3) of 3.6: 1.08
        ({"rental_type": "interruptible", "bid_per_hour": "1.07"}, 409, "bid_below_minimum"),
        ({"rental_type": "interruptible", "bid_per_hour": "3.6"}, 409, "bid_not_below_on_demand"),
        ({"rental_type": "spot", "bid_per_hour": "1"}, 422, None),
        ({"rental_type": "interruptible", "bid_per_hour": "0"}, 422, None),
    ],
)
def test_bids_that_cannot_be_taken_are_refused(
    api: Api, m: Trio, body: dict[str, Any], status: int, code: str | None
) -> None:
    assert_error(book(api, m.client, m.gpu, 1, **body), status, code)
    assert figures(api, m.client) == ("100.000000", "0.000000")


def test_the_provider_chooses_whether_and_from_what_bid(api: Api, m: Trio) -> None:
    path = f"/v1/marketplace/gpu/{m.gpu}"
    changed = api.call("PATCH", path, m.miner, json={"min_bid_per_hour": "2"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["min_bid_per_hour"] == "2.000000"
    assert_error(interruptible(api, m.client, m.gpu, "1.5"), 409, "bid_below_minimum")
    assert details(api, m.gpu)["market"]["min_bid_per_hour"] == "2.000000"
    assert api.call("PATCH", path, m.miner, json={"interruptible": False}).status_code == 200
    assert_error(interruptible(api, m.client, m.gpu, "2.5"), 409, "interruptible_not_allowed")
    market_now = details(api, m.gpu)["market"]
    assert (market_now["interruptible"], market_now["lowest_winning_bid"]) == (False, None)
    # and back to the setting's share
    api.call("PATCH", path, m.miner, json={"interruptible": True, "min_bid_per_hour": None})
    assert interruptible(api, m.client, m.gpu, "1.08").status_code == 201


def test_an_on_demand_booking_preempts_after_the_notice_charging_to_that_second(
    api: Api, m: Trio
) -> None:
    held = interruptible(api, m.client, m.gpu, "1.8", 2).json()
    advance(api, 600, m.miner)
    noticed = api.clock.now()
    taking = booked(api, m.other, m.gpu, 1)

    taken_at = noticed + timedelta(seconds=NOTICE)
    assert parse_time(taking["start_time"]) == taken_at  # the GPU is its once the notice ends
    assert taking["status"] == "pending" and taking["rental_type"] == "on_demand"
    assert parse_time(taking["end_time"]) == taken_at + timedelta(hours=1)

    ended = get_booking(api, m.client, held["booking_id"])
    assert ended["status"] == "preempted"
    assert parse_time(ended["ended_at"]) == taken_at
    expected = split(cost_units("1.8", 7200), 7200, 600 + NOTICE)
    assert ended["amount_charged"] == money(expected.charged)
    assert ended["refund"] == money(expected.refund)
    # the unused escrow came back at once, while the notice runs
    assert figures(api, m.client) == (money(units("100") - expected.charged), "0.000000")

    notice = events(api, m.client, "booking.preempted")
    assert len(notice) == 1
    preemption = notice[0]["data"]["preemption"]
    assert preemption["by"] == "on_demand"
    assert parse_time(preemption["gpu_taken_at"]) == taken_at
    assert parse_time(preemption["noticed_at"]) == noticed
    assert [e["type"] for e in events(api, m.miner, "booking.preempted")] == ["booking.preempted"]
    refunds = events(api, m.client, "order.refunded")
    assert [(e["data"]["reason"], e["data"]["amount"]) for e in refunds] == [
        ("preempted", money(expected.refund))
    ]

    history = get_order(api, m.client, held["order_id"])["history"]
    assert [h["status"] for h in history] == ["active", "preempted"]
    note = history[-1]["note"]
    assert "on-demand booking at 3.600000" in note and "1.800000" in note
    assert "c2" not in note  # never names the other client
    theirs = get_order(api, m.other, taking["order_id"])["history"]
    assert [h["status"] for h in theirs] == ["pending", "preempting"]
    assert "c1" not in theirs[-1]["note"] and "1.800000" in theirs[-1]["note"]

    # the preempting booking begins when the notice ends
    advance(api, NOTICE, m.miner)
    assert get_booking(api, m.other, taking["booking_id"])["status"] == "active"


def test_a_higher_bid_displaces_a_lower_one_and_a_close_one_is_told_what_wins(
    api: Api, m: Trio
) -> None:
    low = interruptible(api, m.client, m.gpu, "1.5", 1).json()
    too_close = interruptible(api, m.other, m.gpu, "1.505", 1)
    body = assert_error(too_close, 409, "bid_too_low")
    assert "1.510000" in body["detail"]
    assert details(api, m.gpu)["market"]["lowest_winning_bid"] == "1.510000"

    advance(api, 100, m.miner)
    high = interruptible(api, m.other, m.gpu, "1.51", 1)
    assert high.status_code == 201, high.text
    assert get_booking(api, m.client, low["booking_id"])["status"] == "preempted"
    preemption = events(api, m.client, "booking.preempted")[0]["data"]["preemption"]
    assert preemption["by"] == "interruptible"
    note = get_order(api, m.client, low["order_id"])["history"][-1]["note"]
    assert "a bid of 1.510000 per hour over yours of 1.500000" in note


def test_an_interruptible_bid_never_displaces_an_on_demand_booking(api: Api, m: Trio) -> None:
    booked(api, m.client, m.gpu, 1)
    assert_error(interruptible(api, m.other, m.gpu, "3.5"), 409, "gpu_booked")
    market_now = details(api, m.gpu)["market"]
    assert (market_now["held_by"], market_now["lowest_winning_bid"]) == ("on_demand", None)


def test_a_reservation_outbid_before_it_begins_is_refunded_in_full(api: Api, m: Trio) -> None:
    start = api.clock.now() + timedelta(hours=2)
    reserved = interruptible(api, m.client, m.gpu, "1.2", 1, start_time=start.isoformat())
    assert reserved.status_code == 201, reserved.text
    taking = booked(api, m.other, m.gpu, 3)  # now to three hours from now: over it
    assert parse_time(taking["start_time"]) == api.clock.now()  # nothing to wait for
    ended = get_booking(api, m.client, reserved.json()["booking_id"])
    assert (ended["status"], ended["amount_charged"], ended["refund"]) == (
        "preempted",
        "0.000000",
        "1.200000",
    )
    assert figures(api, m.client) == ("100.000000", "0.000000")


def test_a_booking_displaced_by_a_later_reservation_keeps_the_gpu_for_the_notice_only(
    api: Api, m: Trio
) -> None:
    """Its agent stops its job within the notice: it is charged to the notice's end, not to
    the reservation's start half an hour later (it was, settled at once, and could not be
    released nor its miner's silence refunded)."""
    held = interruptible(api, m.client, m.gpu, "1.2", 2).json()
    advance(api, 600, m.miner)
    noticed = api.clock.now()
    later = noticed + timedelta(minutes=30)
    reserved = booked(api, m.other, m.gpu, 1, start_time=later.isoformat())
    assert parse_time(reserved["start_time"]) == later
    ended = get_booking(api, m.client, held["booking_id"])
    assert ended["status"] == "preempted"
    assert parse_time(ended["ended_at"]) == noticed + timedelta(seconds=NOTICE)
    expected = split(cost_units("1.2", 7200), 7200, 600 + NOTICE)
    assert ended["amount_charged"] == money(expected.charged)
    assert figures(api, m.client) == (money(units("100") - expected.charged), "0.000000")


def test_a_raised_bid_is_paid_from_then_on(api: Api, m: Trio) -> None:
    made = interruptible(api, m.client, m.gpu, "1.2", 1).json()
    advance(api, 1200, m.miner)
    raised = api.call(
        "POST", f"/v1/bookings/{made['booking_id']}/bid", m.client, json={"bid_per_hour": "2.4"}
    )
    assert raised.status_code == 200, raised.text
    body = raised.json()
    first = cost_units("1.2", 1200)  # the seconds before keep their price
    total = first + cost_units("2.4", 2400)
    assert (body["bid_per_hour"], body["total_cost"]) == ("2.400000", money(total))
    assert figures(api, m.client) == (money(units("100") - total), money(total))
    assert details(api, m.gpu)["market"]["lowest_winning_bid"] == "2.410000"

    advance(api, 600, m.miner)
    released = release_booking(api, m.client, made["booking_id"]).json()
    charged = first + cost_units("2.4", 600)
    assert released["amount_charged"] == money(charged)
    assert figures(api, m.client) == (money(units("100") - charged), "0.000000")
    history = get_order(api, m.client, made["order_id"])["history"]
    assert [h["status"] for h in history] == ["active", "bid_raised", "released"]


@pytest.mark.parametrize("then", ["the miner is back", "the miner never returns"])
def test_a_bid_raised_while_the_miner_is_quiet_prices_only_the_heard_seconds_at_the_old_bid(
    api: Api, m: Trio, then: str
) -> None:
    """Raised 60 s after the last heartbeat (not yet offline): those 60 s are served only if
    the miner is heard again, so they are not fixed at the old bid: the offline time is
    refunded at the bid it was priced at, and an interruption charges up to the heartbeat."""
    made = interruptible(api, m.client, m.gpu, "1.2", 1).json()
    advance(api, 600, m.miner)  # the last heartbeat
    api.clock.advance(seconds=60)
    path = f"/v1/bookings/{made['booking_id']}/bid"
    raised = api.call("POST", path, m.client, json={"bid_per_hour": "2.4"})
    assert raised.status_code == 200, raised.text
    if then == "the miner is back":
        api.clock.advance(seconds=140)
        heartbeat(api, m.miner)  # back within the grace, 200 s after the last heartbeat
        advance(api, 3600, m.miner)
        paid = cost_units("1.2", 600) + cost_units("2.4", 3600 - 600 - 200)
    else:
        api.clock.advance(seconds=600)
        sweep(api)
        ended = get_booking(api, m.client, made["booking_id"])
        assert ended["status"] == "interrupted"
        paid = cost_units("1.2", 600)
        assert ended["amount_charged"] == money(paid)
    assert figures(api, m.client) == (money(units("100") - paid), "0.000000")


def test_a_bid_is_only_raised_on_an_interruptible_booking(api: Api, m: Trio) -> None:
    made = interruptible(api, m.client, m.gpu, "1.2", 1).json()
    path = f"/v1/bookings/{made['booking_id']}/bid"
    lower = api.call("POST", path, m.client, json={"bid_per_hour": "1.2"})
    assert_error(lower, 409, "bid_not_higher")
    above = api.call("POST", path, m.client, json={"bid_per_hour": "3.6"})
    assert_error(above, 409, "bid_not_below_on_demand")
    assert_error(api.call("POST", path, m.other, json={"bid_per_hour": "2"}), 404)
    release_booking(api, m.client, made["booking_id"])
    assert_error(api.call("POST", path, m.client, json={"bid_per_hour": "2"}), 409, "booking_ended")
    on_demand = booked(api, m.client, m.gpu, 1)
    plain = f"/v1/bookings/{on_demand['booking_id']}/bid"
    assert_error(api.call("POST", plain, m.client, json={"bid_per_hour": "2"}), 409)


def test_details_show_what_the_gpu_costs_now(api: Api, m: Trio) -> None:
    free = details(api, m.gpu)["market"]
    assert free == {
        "on_demand_price_per_hour": "3.600000",
        "interruptible": True,
        "min_bid_per_hour": "1.080000",
        "held_by": None,
        "held_until": None,
        "lowest_winning_bid": "1.080000",
        "recent_clearing_prices": [],
    }
    interruptible(api, m.client, m.gpu, "1.5", 1)
    held = details(api, m.gpu)["market"]
    assert (held["held_by"], held["lowest_winning_bid"]) == ("interruptible", "1.510000")
    assert [p["bid_per_hour"] for p in held["recent_clearing_prices"]] == ["1.500000"]


def test_the_pricing_endpoint_shows_the_lowest_winning_bid_and_clearing_prices(
    api: Api, m: Trio
) -> None:
    def pricing() -> dict[str, Any]:
        response = api.call("GET", "/v1/marketplace/pricing/rtx4090", m.client)
        assert response.status_code == 200, response.text
        shown: dict[str, Any] = response.json()["interruptible"]
        return shown

    api.call("POST", "/v1/miners/heartbeat", m.miner, json={})
    assert pricing() == {
        "gpus_open_to_bids": 1,
        "lowest_winning_bid": "1.080000",
        "recent_clearing_prices": [],
    }
    interruptible(api, m.client, m.gpu, "1.5", 1)
    held = pricing()
    assert held["lowest_winning_bid"] == "1.510000"
    assert [p["bid_per_hour"] for p in held["recent_clearing_prices"]] == ["1.500000"]
    booked(api, m.other, m.gpu, 1)  # preempts it: held on demand once the notice ends
    assert pricing()["lowest_winning_bid"] is None  # already, during the notice
    shown = details(api, m.gpu)["market"]
    assert (shown["held_by"], shown["lowest_winning_bid"]) == ("on_demand", None)


def test_a_quote_says_it_is_on_demand(api: Api, m: Trio) -> None:
    response = api.call(
        "POST", f"/v1/marketplace/gpu/{m.gpu}/quote", m.client, json={"duration_hours": 1}
    )
    assert response.status_code == 201, response.text
    assert response.json()["rental_type"] == "on_demand"


def test_a_reservation_preempted_once_begun_records_its_start_then_its_end(
    api: Api, m: Trio
) -> None:
    start = api.clock.now() + timedelta(hours=1)
    reserved = interruptible(api, m.client, m.gpu, "1.2", 2, start_time=start.isoformat())
    made = reserved.json()
    advance(api, 3600 + 600, m.miner)  # begun; no sweep has recorded its start
    booked(api, m.other, m.gpu, 1)
    history = get_order(api, m.client, made["order_id"])["history"]
    assert [h["status"] for h in history] == ["pending", "active", "preempted"]
    assert parse_time(history[1]["at"]) == start
    ended = get_booking(api, m.client, made["booking_id"])
    expected = split(cost_units("1.2", 7200), 7200, 600 + NOTICE)
    assert ended["amount_charged"] == money(expected.charged)


def test_a_reservation_beginning_within_the_notice_ends_at_once_and_costs_nothing(
    api: Api, m: Trio
) -> None:
    soon = api.clock.now() + timedelta(seconds=10)
    reserved = interruptible(api, m.client, m.gpu, "1.2", 1, start_time=soon.isoformat())
    taking = booked(api, m.other, m.gpu, 1)
    assert parse_time(taking["start_time"]) == api.clock.now()  # no notice to wait for
    ended = get_booking(api, m.client, reserved.json()["booking_id"])
    assert (ended["status"], ended["amount_charged"]) == ("preempted", "0.000000")
    assert figures(api, m.client) == ("100.000000", "0.000000")


def test_winning_a_gpu_now_takes_outbidding_every_booking_it_would_displace(
    api: Api, m: Trio
) -> None:
    interruptible(api, m.client, m.gpu, "1.5", "0.0025")  # holds it for 9 s
    soon = api.clock.now() + timedelta(seconds=9)
    then = interruptible(api, m.other, m.gpu, "1.2", 1, start_time=soon.isoformat())
    assert then.status_code == 201, then.text
    response = api.call("GET", "/v1/marketplace/pricing/rtx4090", m.client)
    assert response.json()["interruptible"]["lowest_winning_bid"] == "1.510000"


def test_the_bid_a_gpus_details_show_wins_it_and_a_step_less_does_not(api: Api, m: Trio) -> None:
    interruptible(api, m.client, m.gpu, "1.2", "0.0025")  # holds it for 9 s
    soon = api.clock.now() + timedelta(seconds=9)
    then = interruptible(api, m.other, m.gpu, "1.5", 1, start_time=soon.isoformat())
    assert then.status_code == 201, then.text
    shown = details(api, m.gpu)["market"]
    assert (shown["held_by"], shown["lowest_winning_bid"]) == ("interruptible", "1.510000")
    third = Market(api, miner_id="m1", miner_key=m.miner).client("c3", "100")
    assert_error(interruptible(api, third, m.gpu, "1.5", "0.01"), 409, "bid_too_low")
    assert interruptible(api, third, m.gpu, "1.51", "0.01").status_code == 201


def test_the_miners_heartbeat_answer_names_its_bookings_in_notice(api: Api, m: Trio) -> None:
    def notices() -> list[dict[str, Any]]:
        beat = api.call("POST", "/v1/miners/heartbeat", m.miner, json={})
        assert beat.status_code == 200, beat.text
        found: list[dict[str, Any]] = beat.json()["preemptions"]
        return found

    made = interruptible(api, m.client, m.gpu, "1.2", 1).json()
    assert notices() == []
    booked(api, m.other, m.gpu, 1)
    taken = api.clock.now() + timedelta(seconds=NOTICE)
    [notice] = notices()
    assert (notice["booking_id"], notice["gpu_id"], notice["job_id"]) == (
        made["booking_id"],
        m.gpu,
        None,
    )
    assert parse_time(notice["gpu_taken_at"]) == taken
    advance(api, NOTICE - 1)
    assert len(notices()) == 1
    advance(api, 1)  # the notice is over: the GPU is the preempting booking's
    assert notices() == []
