"""Automatic release: once a booking's end passes, every read shows it completed, the GPU
available and the money with the provider, before any sweep; the sweeper (or the next change
to the GPU) then posts the settlement, exactly once, without changing what anyone sees."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI

from tests.accounts.ledger_invariants import assert_ledger_invariants, snapshot
from tests.bookings.booking_support import (
    Trio,
    account,
    extend,
    get_booking,
    get_order,
    ledger_lines,
    market,
    orders,
    parse_time,
    release_gpu,
)
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import details
from tests.support.market import advance, booked, heartbeat
from tests.support.responses import assert_error


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(database_url: str) -> Iterator[None]:
    yield
    assert_ledger_invariants(database_url)


@pytest.fixture
def m(api: Api) -> Trio:
    return market(api)


def sweep(app: FastAPI) -> int:
    settled: int = app.state.sweeper.run_once()
    return settled


def views(api: Api, m: Trio, body: dict[str, Any]) -> dict[str, Any]:
    """Everything a client, the miner and the public can read about one booking."""
    return {
        "booking": get_booking(api, m.client, body["booking_id"]),
        "booking_as_miner": get_booking(api, m.miner, body["booking_id"]),
        "order": get_order(api, m.client, body["order_id"]),
        "orders_as_miner": orders(api, m.miner),
        "completed_orders": orders(api, ADMIN_KEY, status="completed"),
        # Uptime is the sweeper's to refresh; everything else about the GPU stays.
        "gpu": {k: v for k, v in details(api, m.gpu).items() if not k.startswith("uptime_")},
        "client": {k: v for k, v in account(api, m.client).items() if k != "unsettled"},
        "miner": {k: v for k, v in account(api, m.miner).items() if k != "unsettled"},
    }


def assert_same_views(now: dict[str, Any], before: dict[str, Any]) -> None:
    for name, seen in before.items():
        assert now[name] == seen, name


def test_an_expired_booking_is_completed_everywhere_before_any_sweep(
    api: Api, app: FastAPI, m: Trio, database_url: str
) -> None:
    body = booked(api, m.client, m.gpu, 1)
    end = parse_time(body["end_time"])
    advance(api, 3599.999999, m.miner)
    assert details(api, m.gpu)["status"] == "booked"
    assert get_booking(api, m.client, body["booking_id"])["status"] == "active"

    advance(api, 0.000001, m.miner)  # exactly the end
    shown = details(api, m.gpu)
    assert shown["status"] == "available" and shown["booking_expires"] is None
    listed = api.call("GET", "/v1/marketplace/gpu/list", params={"available": "true"}).json()
    assert m.gpu in [g["gpu_id"] for g in listed]

    shown = get_booking(api, m.client, body["booking_id"])
    assert shown["status"] == "completed"
    assert (shown["amount_charged"], shown["refund"]) == ("3.600000", "0.000000")
    assert shown["ended_at"] is not None and parse_time(shown["ended_at"]) == end
    order = get_order(api, m.client, body["order_id"])
    assert order["status"] == "completed"
    assert parse_time(order["closed_at"]) == end
    assert [(h["status"], parse_time(h["at"])) for h in order["history"]] == [
        ("active", parse_time(body["start_time"])),
        ("completed", end),
    ]
    assert [o["order_id"] for o in orders(api, m.client, status="completed")] == [body["order_id"]]
    assert orders(api, m.client, status="active") == []

    client = account(api, m.client)
    assert (client["balance"], client["escrow"], client["unsettled"]) == (
        "96.400000",
        "0.000000",
        "3.600000",
    )
    miner = account(api, m.miner)
    assert (miner["balance"], miner["escrow"], miner["unsettled"]) == (
        "3.600000",
        "0.000000",
        "3.600000",
    )
    # Nothing is in the ledger yet: the figures above are effective ones.
    stored = assert_ledger_invariants(database_url)
    assert stored.transactions["booking_completed"] == 0
    assert stored.balance("c1", "escrow") == 3_600_000


def test_the_sweep_settles_exactly_once_and_changes_no_view(
    api: Api, app: FastAPI, m: Trio, database_url: str
) -> None:
    body = booked(api, m.client, m.gpu, 1)
    advance(api, 4000, m.miner)
    seen = views(api, m, body)

    assert sweep(app) == 1
    after = assert_ledger_invariants(database_url)
    assert after.transactions["booking_completed"] == 1
    assert after.balance("m1") == 3_600_000 and after.balance("c1", "escrow") == 0
    assert_same_views(views(api, m, body), seen)
    assert account(api, m.client)["unsettled"] == "0.000000"
    assert account(api, m.miner)["unsettled"] == "0.000000"
    miner_lines = ledger_lines(api, m.miner)
    assert [(line["kind"], line["amount"]) for line in miner_lines] == [
        ("booking_completed", "3.600000")
    ]

    frozen = snapshot(database_url)
    assert sweep(app) == 0
    assert sweep(app) == 0
    assert snapshot(database_url) == frozen
    assert_same_views(views(api, m, body), seen)


def test_the_next_booking_on_the_gpu_settles_the_old_one(
    api: Api, m: Trio, database_url: str
) -> None:
    first = booked(api, m.client, m.gpu, 1)
    advance(api, 3600, m.miner)
    assert assert_ledger_invariants(database_url).transactions["booking_completed"] == 0
    second = booked(api, m.other, m.gpu, 1)
    stored = assert_ledger_invariants(database_url)
    assert stored.transactions["booking_completed"] == 1
    assert stored.balance("m1") == 3_600_000
    assert get_booking(api, m.client, first["booking_id"])["status"] == "completed"
    assert get_booking(api, m.other, second["booking_id"])["status"] == "active"
    assert details(api, m.gpu)["total_bookings"] == 2


@pytest.mark.parametrize("action", ["release", "extend", "delist"])
def test_other_changes_to_the_gpu_settle_it_too(
    api: Api, m: Trio, database_url: str, action: str
) -> None:
    first = booked(api, m.client, m.gpu, 1)
    if action != "delist":
        second = booked(api, m.client, m.gpu, 1, start_time=first["end_time"])
    advance(api, 3600, m.miner)
    if action == "release":
        result = release_gpu(api, m.client, m.gpu).json()
        assert result["booking_id"] == second["booking_id"]
        assert result["status"] == "cancelled"
    elif action == "extend":
        assert extend(api, m.client, second["booking_id"], 1).status_code == 200
    else:
        response = api.call("DELETE", f"/v1/marketplace/gpu/{m.gpu}", m.miner)
        assert response.status_code == 200, response.text
    stored = assert_ledger_invariants(database_url)
    assert stored.transactions["booking_completed"] == 1
    assert stored.balance("m1") == 3_600_000
    assert get_booking(api, m.client, first["booking_id"])["status"] == "completed"


def test_a_refused_release_after_the_end_leaves_settlement_to_later(
    api: Api, app: FastAPI, m: Trio, database_url: str
) -> None:
    booked(api, m.client, m.gpu, 1)
    advance(api, 3600, m.miner)
    assert_error(release_gpu(api, m.client, m.gpu), 409, "nothing_to_release")
    assert account(api, m.miner)["balance"] == "3.600000"
    assert sweep(app) == 1
    assert assert_ledger_invariants(database_url).transactions["booking_completed"] == 1


def test_a_reservation_that_started_and_ended_unobserved_shows_its_whole_history(
    api: Api, app: FastAPI, m: Trio
) -> None:
    start = api.clock.now() + timedelta(hours=1)
    body = booked(api, m.client, m.gpu, 1, start_time=start.isoformat())
    advance(api, 3 * 3600, m.miner)
    expected = [("pending", start - timedelta(hours=1)), ("active", start)]
    expected.append(("completed", start + timedelta(hours=1)))
    history = get_order(api, m.client, body["order_id"])["history"]
    assert [(h["status"], parse_time(h["at"])) for h in history] == expected
    assert sweep(app) == 1
    history = get_order(api, m.client, body["order_id"])["history"]
    assert [(h["status"], parse_time(h["at"])) for h in history] == expected


def test_the_sweep_records_the_start_of_a_reservation(
    api: Api, app: FastAPI, m: Trio, database_url: str
) -> None:
    start = api.clock.now() + timedelta(hours=1)
    body = booked(api, m.client, m.gpu, 2, start_time=start.isoformat())
    advance(api, 3600 + 30, m.miner)
    seen = get_order(api, m.client, body["order_id"])
    assert seen["status"] == "active"
    events_before = snapshot(database_url)["counts"]["order_events"]
    assert sweep(app) == 0  # nothing ended
    assert snapshot(database_url)["counts"]["order_events"] == events_before + 1
    assert get_order(api, m.client, body["order_id"]) == seen
    assert sweep(app) == 0
    assert snapshot(database_url)["counts"]["order_events"] == events_before + 1


def test_one_sweep_settles_every_due_booking_across_gpus(
    api: Api, app: FastAPI, m: Trio, database_url: str
) -> None:
    gpus = [m.gpu, *(api.register_gpu(m.miner, price_per_hour="1.5") for _ in range(3))]
    for i, gpu_id in enumerate(gpus):
        booked(api, m.client if i % 2 else m.other, gpu_id, 0.5 + i * 0.25)
    long = api.register_gpu(m.miner, price_per_hour="2")
    booked(api, m.client, long, 5)
    advance(api, 2 * 3600, m.miner)
    assert sweep(app) == 4
    stored = assert_ledger_invariants(database_url)
    assert stored.transactions["booking_completed"] == 4
    assert stored.open_bookings == 1
    assert sweep(app) == 0
    heartbeat(api, m.miner)
    assert [g["status"] for g in map(lambda g: details(api, g), gpus)] == ["available"] * 4
    assert details(api, long)["status"] == "booked"
