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
)
from tests.jobs.slice_support import sweep
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


def test_a_reservation_spent_wholly_offline_ends_with_nothing_left_to_settle(
    api: Api, m: Trio, database_url: str
) -> None:
    """The miner is silent from before a short reservation begins until after it ends, and
    back within the grace: all of it is refunded as offline time when the miner returns, so
    the booking's end moves no money and posts no closing transaction."""
    api.clock.advance(seconds=1)
    at = api.clock.now() + timedelta(hours=1)
    reserved = booked(api, m.client, m.gpu, "0.000278", start_time=at.isoformat())  # 1 s
    api.clock.advance(seconds=3601)  # silent all along: past the end, within the grace
    heartbeat(api, m.miner)
    back = get_booking(api, m.client, reserved["booking_id"])
    assert (back["offline_seconds_refunded"], back["offline_refund"]) == (1, money(units("0.001")))
    sweep(api)
    done = get_booking(api, m.client, reserved["booking_id"])
    assert (done["status"], done["amount_charged"], done["refund"]) == (
        "completed",
        "0.000000",
        "0.000000",
    )
    assert figures(api, m.client) == (FUNDS + ".000000", "0.000000")
    assert_ledger_invariants(database_url)
