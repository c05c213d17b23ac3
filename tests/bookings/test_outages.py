"""A GPU that drops stops costing its client, to the second (docs/outages.md): the clock stands
at the last heartbeat; a miner back within the grace period has the offline seconds refunded
and the booking goes on; one that is not ends the booking as `interrupted`, refunding
everything from the last heartbeat, however the end is noticed (the sweeper, a late return,
a release while offline). The miner is paid exactly what the client was charged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from tests.accounts.ledger_invariants import assert_ledger_invariants
from tests.bookings.booking_support import (
    Trio,
    figures,
    get_booking,
    get_order,
    market,
    parse_time,
    release_booking,
    views,
)
from tests.jobs.slice_support import submitted, sweep
from tests.support.api import Api
from tests.support.market import advance, booked, heartbeat
from tests.support.money import cost_units, money, units

PRICE = "3.6"  # 0.001 a second, so every second shows in the figures
FUNDS = "100"
TOTAL = units(PRICE)  # an hour


@pytest.fixture
def m(api: Api) -> Trio:
    return market(api, price=PRICE, funds=FUNDS)


def start(api: Api, m: Trio) -> dict[str, Any]:
    """A one-hour booking, its miner heartbeating 613 seconds into it and then silent."""
    booking = booked(api, m.client, m.gpu, hours=1)
    advance(api, 613, m.miner)
    return booking


def balance(api: Api, key: str) -> int:
    return units(figures(api, key)[0])


def test_a_miner_back_within_the_grace_has_the_offline_seconds_refunded(api: Api, m: Trio) -> None:
    booking = start(api, m)
    api.clock.advance(seconds=247)  # silent, past the 90-second timeout, within the grace
    offline = get_booking(api, m.client, booking["booking_id"])
    assert offline["miner_offline_since"] is not None
    assert offline["status"] == "active"

    heartbeat(api, m.miner)  # back
    back = get_booking(api, m.client, booking["booking_id"])
    refund = cost_units(PRICE, 247)
    assert (back["offline_seconds_refunded"], back["offline_refund"]) == (247, money(refund))
    assert back["miner_offline_since"] is None and back["status"] == "active"
    assert balance(api, m.client) == units(FUNDS) - TOTAL + refund
    events = [e["status"] for e in get_order(api, m.client, booking["order_id"])["history"]]
    assert events[-2:] == ["offline", "back"], events

    # It runs to its end: the client pays the hour less the 247 seconds, the miner gets that.
    advance(api, 3600, m.miner)
    sweep(api)
    done = get_booking(api, m.client, booking["booking_id"])
    assert done["status"] == "completed"
    assert done["amount_charged"] == money(TOTAL - refund)
    assert balance(api, m.client) == units(FUNDS) - TOTAL + refund
    assert balance(api, m.miner) == TOTAL - refund


def test_the_order_shows_the_offline_refund_and_its_amounts_add_up(api: Api, m: Trio) -> None:
    booking = start(api, m)
    api.clock.advance(seconds=247)  # silent past the timeout, within the grace
    heartbeat(api, m.miner)  # back: 247 s refunded
    advance(api, 3600, m.miner)
    sweep(api)
    order = get_order(api, m.client, booking["order_id"])
    ended = get_booking(api, m.client, booking["booking_id"])
    offline = cost_units(PRICE, 247)
    assert (order["offline_seconds_refunded"], order["offline_refund"]) == (247, money(offline))
    for shown in (order, ended):
        parts = (shown["amount_charged"], shown["refund"], shown["offline_refund"])
        assert sum(units(part) for part in parts) == units(shown["total_cost"]), shown
    assert balance(api, m.client) == units(FUNDS) - units(order["amount_charged"])


@pytest.mark.parametrize("noticed_by", ["sweeper", "late return"])
def test_a_miner_gone_past_the_grace_interrupts_the_booking_at_its_last_heartbeat(
    api: Api, m: Trio, noticed_by: str
) -> None:
    booking = start(api, m)
    api.clock.advance(seconds=90 + 300 + 1)  # offline, and the grace is over
    if noticed_by == "sweeper":
        sweep(api)
    else:
        heartbeat(api, m.miner)
    ended = get_booking(api, m.client, booking["booking_id"])
    served = cost_units(PRICE, 613)
    assert ended["status"] == "interrupted", ended
    assert ended["amount_charged"] == money(served)
    # Ended at the last heartbeat, however long after it the end was noticed.
    assert parse_time(ended["ended_at"]) == parse_time(booking["start_time"]) + timedelta(
        seconds=613
    )
    assert balance(api, m.client) == units(FUNDS) - served
    assert balance(api, m.miner) == served
    order = get_order(api, m.client, booking["order_id"])
    assert order["status"] == "interrupted", order
    # The history says what happened when: offline from the last heartbeat, interrupted once
    # the grace ran out (the booking read active until then).
    began = parse_time(booking["start_time"])
    assert [(e["status"], parse_time(e["at"])) for e in order["history"][-2:]] == [
        ("offline", began + timedelta(seconds=613)),
        ("interrupted", began + timedelta(seconds=613 + 90 + 300)),
    ]
    # Settled once: a later sweep or heartbeat moves no money.
    sweep(api)
    heartbeat(api, m.miner)
    assert (balance(api, m.client), balance(api, m.miner)) == (units(FUNDS) - served, served)


def test_a_release_while_the_miner_is_offline_charges_up_to_its_last_heartbeat(
    api: Api, m: Trio
) -> None:
    booking = start(api, m)
    api.clock.advance(seconds=200)
    released = release_booking(api, m.client, booking["booking_id"])
    assert released.status_code == 200, released.text
    served = cost_units(PRICE, 613)
    assert balance(api, m.client) == units(FUNDS) - served
    assert balance(api, m.miner) == served


def test_interrupted_orders_can_be_listed_by_their_status(api: Api, m: Trio) -> None:
    booking = start(api, m)
    api.clock.advance(seconds=90 + 300 + 1)
    sweep(api)
    listed = api.call("GET", "/v1/marketplace/orders", m.client, params={"status": "interrupted"})
    assert listed.status_code == 200, listed.text
    assert [o["order_id"] for o in listed.json()] == [booking["order_id"]]


@pytest.mark.parametrize(
    ("heard_for", "silent_for", "reads"),
    [
        (613, 200, "active"),  # offline within the grace
        (613, 90 + 300 + 1, "interrupted"),  # the grace ran out mid-window
        (3400, 600, "interrupted"),  # offline before the end, the grace ran out after it
        (3550, 400, "completed"),  # offline only at 3,640 s: it was online at its end
        (3400, 300, "completed"),  # past its end, its miner still within the grace
    ],
)
def test_a_silent_miners_booking_reads_and_lists_before_the_sweep_as_it_settles(
    api: Api, m: Trio, heard_for: int, silent_for: int, reads: str
) -> None:
    """The booking, its order (amounts, history) and the order list's status filters read
    the same before the sweep settles a silent miner's booking as after."""
    booking = booked(api, m.client, m.gpu, hours=1)
    advance(api, heard_for, m.miner)
    api.clock.advance(seconds=silent_for)
    before = views(api, m.client, booking)
    assert before[0]["status"] == before[1]["status"] == reads, before
    assert before[2][reads] == [booking["order_id"]]
    assert [i for ids in before[2].values() for i in ids] == [booking["order_id"]]  # once
    sweep(api)
    after = views(api, m.client, booking)
    for read_before, read_after in zip(before, after, strict=True):
        assert read_after == read_before


@pytest.mark.parametrize(
    ("heard_for", "silent_for", "reads"),
    [
        (901, 0, "cancelled"),  # its time ran out
        (100, 90 + 300 + 1, "interrupted"),  # its miner went away past the grace
    ],
)
def test_a_job_booking_whose_miner_never_took_the_job_reads_as_it_settles(
    api: Api, m: Trio, heard_for: int, silent_for: int, reads: str
) -> None:
    """It served nothing: before the sweep it reads what the sweep makes of it, charged
    nothing, and lists under that status."""
    made = submitted(
        api, m.client, duration_hours="0.25", ttl_seconds=60, constraints={"gpu_model": "RTX 4090"}
    )
    booking = get_booking(api, m.client, made["booking_id"])
    advance(api, heard_for, m.miner)  # online, never polling: the job is never taken
    api.clock.advance(seconds=silent_for)
    before = views(api, m.client, booking)
    assert (before[1]["status"], before[1]["amount_charged"]) == (reads, "0.000000"), before[1]
    assert before[1]["refund"] == before[1]["total_cost"]
    assert before[2][reads] == [booking["order_id"]]
    assert figures(api, m.client) == (FUNDS + ".000000", "0.000000")  # all of it back
    sweep(api)
    after = views(api, m.client, booking)
    for read_before, read_after in zip(before, after, strict=True):
        assert read_after == read_before
    assert figures(api, m.client) == (FUNDS + ".000000", "0.000000")


def test_a_reservation_spent_wholly_offline_is_refunded_whole_when_its_miner_returns(
    api: Api, m: Trio, database_url: str
) -> None:
    """The miner is silent from before a short reservation begins until after it ends, and
    back within the grace: the reservation, whose time ran out meanwhile, ends on the return,
    charged nothing (its clock never started), everything back to the client."""
    api.clock.advance(seconds=1)
    at = api.clock.now() + timedelta(hours=1)
    reserved = booked(api, m.client, m.gpu, "0.000278", start_time=at.isoformat())  # 1 s
    api.clock.advance(seconds=3601)  # silent all along: past the end, within the grace
    heartbeat(api, m.miner)
    back = get_booking(api, m.client, reserved["booking_id"])
    assert (back["status"], back["amount_charged"], back["refund"]) == (
        "completed",
        "0.000000",
        "0.001000",
    )
    sweep(api)
    assert get_booking(api, m.client, reserved["booking_id"]) == back
    assert figures(api, m.client) == (FUNDS + ".000000", "0.000000")
    assert_ledger_invariants(database_url)


@pytest.mark.parametrize("then", ["the miner returns", "the grace runs out"])
def test_a_booking_that_ends_while_its_miner_is_away_shows_what_it_will_settle_at(
    api: Api, m: Trio, then: str
) -> None:
    booking = booked(api, m.client, m.gpu, hours=1)
    advance(api, 3400, m.miner)  # then silent: offline at 3,490 s, within the grace past the end
    api.clock.advance(seconds=300)
    served = cost_units(PRICE, 3400)
    awaiting = get_booking(api, m.client, booking["booking_id"])
    assert awaiting["amount_charged"] == money(served), awaiting
    assert awaiting["miner_offline_since"] is not None
    order = get_order(api, m.client, booking["order_id"])
    assert order["amount_charged"] == money(served), order

    if then == "the miner returns":
        heartbeat(api, m.miner)
    else:
        api.clock.advance(seconds=300)
    sweep(api)
    settled = get_booking(api, m.client, booking["booking_id"])
    assert settled["amount_charged"] == money(served), settled
    assert settled["status"] == ("completed" if then == "the miner returns" else "interrupted")
    assert balance(api, m.client) == units(FUNDS) - served
    assert balance(api, m.miner) == served


def _declared_offline(api: Api, m: Trio) -> None:
    heartbeat(api, m.miner, status="offline")


def _deregistered(api: Api, m: Trio) -> None:
    response = api.call("DELETE", "/v1/miners/m1", m.miner)
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("leave", [_declared_offline, _deregistered])
def test_a_miner_that_says_it_has_left_is_an_outage_for_its_renter(
    api: Api, m: Trio, leave: Any
) -> None:
    """Its heartbeats go on, but it has said it does not serve: billed as a silence from its
    last serving heartbeat, and the booking cannot be extended."""
    booking = start(api, m)
    leave(api, m)
    extended = api.call(
        "POST", f"/v1/bookings/{booking['booking_id']}/extend", m.client, json={"hours": 1}
    )
    assert extended.status_code == 409 and extended.json()["error"] == "gpu_offline", extended.text
    for _ in range(60):  # it keeps calling, every minute, past the booking's end
        api.clock.advance(seconds=60)
        heartbeat(api, m.miner, **({"status": "offline"} if leave is _declared_offline else {}))
    sweep(api)
    ended = get_booking(api, m.client, booking["booking_id"])
    served = cost_units(PRICE, 613)
    assert (ended["status"], ended["amount_charged"]) == ("interrupted", money(served)), ended
    assert balance(api, m.client) == units(FUNDS) - served
    assert balance(api, m.miner) == served
