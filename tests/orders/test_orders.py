"""Orders: one per booking, following it through pending, active, completed, released and
cancelled; listed as a bare array filtered by status and paginated; visible to the client, the
GPU's miner and admins only; with amounts and a timed status history."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

import pytest

from tests.accounts.ledger_invariants import assert_ledger_invariants
from tests.bookings.booking_support import (
    get_order,
    orders,
    parse_time,
    queued_job,
    release_booking,
    release_gpu,
)
from tests.support.api import ADMIN_KEY, Api
from tests.support.market import advance, booked, deposit
from tests.support.responses import assert_error


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(database_url: str) -> Iterator[None]:
    yield
    assert_ledger_invariants(database_url)


@dataclass
class Scene:
    t0: datetime
    c1: str
    c2: str
    m1: str
    m2: str
    ids: dict[str, str]  # A..F → order id


@pytest.fixture
def scene(api: Api) -> Scene:
    """c1: A completed, B released, C cancelled, D active, E pending; c2: F completed.
    m1 owns gpu1 (A, E) and gpu2 (B, D); m2 owns gpu3 (C, F). Created in order A B C F E D."""
    c1, c2 = api.key("client", "c1"), api.key("client", "c2")
    m1, m2 = api.key("miner", "m1"), api.key("miner", "m2")
    gpu1 = api.register_gpu(m1, price_per_hour="1")
    gpu2 = api.register_gpu(m1, price_per_hour="2")
    gpu3 = api.register_gpu(m2, price_per_hour="3")
    deposit(api, "c1", "100")
    deposit(api, "c2", "100")
    t0 = api.clock.now()
    ids = {}
    job_a = queued_job(api, c1)
    ids["A"] = booked(api, c1, gpu1, 1, job_id=job_a)["order_id"]
    advance(api, 10, m1, m2)
    b = booked(api, c1, gpu2, 2)
    ids["B"] = b["order_id"]
    advance(api, 10, m1, m2)
    c = booked(api, c1, gpu3, 1, start_time=(t0 + timedelta(hours=5)).isoformat())
    ids["C"] = c["order_id"]
    advance(api, 10, m1, m2)
    ids["F"] = booked(api, c2, gpu3, 1)["order_id"]
    advance(api, 10, m1, m2)
    ids["E"] = booked(api, c1, gpu1, 1, start_time=(t0 + timedelta(hours=10)).isoformat())[
        "order_id"
    ]
    advance(api, 560, m1, m2)  # t0 + 600
    assert release_gpu(api, c1, gpu2).status_code == 200
    advance(api, 100, m1, m2)
    assert release_booking(api, c1, c["booking_id"]).status_code == 200
    advance(api, 100, m1, m2)  # t0 + 800
    ids["D"] = booked(api, c1, gpu2, 3)["order_id"]
    advance(api, 2900, m1, m2)  # t0 + 3700: A and F have run out
    return Scene(t0=t0, c1=c1, c2=c2, m1=m1, m2=m2, ids=ids)


def names(scene: Scene, listed: list[dict[str, object]]) -> list[str]:
    by_id = {v: k for k, v in scene.ids.items()}
    return [by_id[str(o["order_id"])] for o in listed]


def test_orders_are_a_bare_array_of_flat_objects(api: Api, scene: Scene) -> None:
    response = api.call("GET", "/v1/marketplace/orders", scene.c1)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list) and len(body) == 5
    assert set(body[0]) >= {
        "order_id",
        "booking_id",
        "gpu_id",
        "client_id",
        "miner_id",
        "job_id",
        "status",
        "price_per_hour",
        "total_cost",
        "amount_charged",
        "refund",
        "start_time",
        "end_time",
        "created_at",
        "closed_at",
    }
    assert all(not isinstance(v, dict | list) for o in body for v in o.values())


def test_each_status_filters(api: Api, scene: Scene) -> None:
    expected = {
        "pending": ["E"],
        "active": ["D"],
        "completed": ["A"],
        "released": ["B"],
        "cancelled": ["C"],
    }
    for status, wanted in expected.items():
        listed = orders(api, scene.c1, status=status)
        assert names(scene, listed) == wanted, status
        assert {o["status"] for o in listed} == {status}
    assert names(scene, orders(api, scene.c2, status="completed")) == ["F"]
    assert orders(api, scene.c2, status="active") == []


def test_newest_first_with_limit_and_offset(api: Api, scene: Scene) -> None:
    assert names(scene, orders(api, scene.c1)) == ["D", "E", "C", "B", "A"]
    assert names(scene, orders(api, scene.c1, limit=2)) == ["D", "E"]
    assert names(scene, orders(api, scene.c1, limit=2, offset=2)) == ["C", "B"]
    assert names(scene, orders(api, scene.c1, limit=2, offset=4)) == ["A"]
    assert orders(api, scene.c1, offset=5) == []
    assert names(scene, orders(api, ADMIN_KEY, status="completed", limit=1)) == ["F"]
    assert names(scene, orders(api, ADMIN_KEY, status="completed", offset=1)) == ["A"]


def test_default_limit_is_ten(api: Api, scene: Scene) -> None:
    gpu = api.register_gpu(scene.m1, price_per_hour="0.01")
    for i in range(8):
        start = scene.t0 + timedelta(days=1, hours=i)
        booked(api, scene.c1, gpu, 1, start_time=start.isoformat())
    response = api.call("GET", "/v1/marketplace/orders", scene.c1)
    assert len(response.json()) == 10
    assert len(orders(api, scene.c1)) == 13


@pytest.mark.parametrize(
    "params",
    [{"status": "open"}, {"status": "bogus"}, {"limit": 0}, {"limit": 501}, {"offset": -1}],
)
def test_bad_filters_are_422(api: Api, scene: Scene, params: dict[str, object]) -> None:
    response = api.call("GET", "/v1/marketplace/orders", scene.c1, params=params)
    assert_error(response, 422, "validation_error")


def test_who_sees_which_orders(api: Api, scene: Scene) -> None:
    assert names(scene, orders(api, scene.c1)) == ["D", "E", "C", "B", "A"]
    assert names(scene, orders(api, scene.c2)) == ["F"]
    assert names(scene, orders(api, scene.m1)) == ["D", "E", "B", "A"]
    assert names(scene, orders(api, scene.m2)) == ["F", "C"]
    assert names(scene, orders(api, ADMIN_KEY)) == ["D", "E", "F", "C", "B", "A"]
    stranger = api.key("client", "nobody")
    assert orders(api, stranger) == []
    assert_error(api.call("GET", "/v1/marketplace/orders"), 401, "authentication_required")


def test_order_detail_has_amounts_and_history(api: Api, scene: Scene) -> None:
    t0 = scene.t0
    a = get_order(api, scene.c1, scene.ids["A"])
    assert a["status"] == "completed" and isinstance(a["job_id"], str)
    assert (a["price_per_hour"], a["total_cost"]) == ("1.000000", "1.000000")
    assert (a["amount_charged"], a["refund"]) == ("1.000000", "0.000000")
    assert parse_time(a["closed_at"]) == t0 + timedelta(hours=1)
    assert [(h["status"], parse_time(h["at"])) for h in a["history"]] == [
        ("active", t0),
        ("completed", t0 + timedelta(hours=1)),
    ]

    b = get_order(api, scene.c1, scene.ids["B"])  # 2 h at 2, released after 590 s
    assert b["status"] == "released"
    assert (b["total_cost"], b["amount_charged"], b["refund"]) == (
        "4.000000",
        "0.327778",  # 4 * 590 / 7200 = 0.3277777…
        "3.672222",
    )
    assert [(h["status"], parse_time(h["at"])) for h in b["history"]] == [
        ("active", t0 + timedelta(seconds=10)),
        ("released", t0 + timedelta(seconds=600)),
    ]

    c = get_order(api, scene.c1, scene.ids["C"])
    assert (c["status"], c["amount_charged"], c["refund"]) == ("cancelled", "0.000000", "3.000000")
    assert [(h["status"], parse_time(h["at"])) for h in c["history"]] == [
        ("pending", t0 + timedelta(seconds=20)),
        ("cancelled", t0 + timedelta(seconds=700)),
    ]
    assert parse_time(c["closed_at"]) == t0 + timedelta(seconds=700)

    e = get_order(api, scene.c1, scene.ids["E"])
    assert e["status"] == "pending" and e["closed_at"] is None
    assert [h["status"] for h in e["history"]] == ["pending"]
    assert parse_time(e["start_time"]) == t0 + timedelta(hours=10)

    d = get_order(api, scene.c1, scene.ids["D"])
    assert d["status"] == "active" and d["closed_at"] is None
    assert (d["amount_charged"], d["refund"]) == ("0.000000", "0.000000")
    assert [h["status"] for h in d["history"]] == ["active"]


def test_reservation_history_pending_active_released(api: Api) -> None:
    c1, m1 = api.key("client", "c1"), api.key("miner", "m1")
    gpu = api.register_gpu(m1, price_per_hour="3.6")
    deposit(api, "c1", "10")
    t0 = api.clock.now()
    body = booked(api, c1, gpu, 2, start_time=(t0 + timedelta(hours=1)).isoformat())
    advance(api, 5400, m1)
    response = release_gpu(api, c1, gpu)
    assert response.status_code == 200, response.text
    order = get_order(api, c1, body["order_id"])
    assert order["status"] == "released"
    assert (order["amount_charged"], order["refund"]) == ("1.800000", "5.400000")
    assert [(h["status"], parse_time(h["at"])) for h in order["history"]] == [
        ("pending", t0),
        ("active", t0 + timedelta(hours=1)),
        ("released", t0 + timedelta(hours=1.5)),
    ]
    assert order["booking_id"] == body["booking_id"] and order["gpu_id"] == gpu


def test_somebody_elses_order_is_404(api: Api, scene: Scene) -> None:
    order_id = scene.ids["A"]  # c1's, on m1's GPU
    assert_error(
        api.call("GET", f"/v1/marketplace/orders/{order_id}", scene.c2), 404, "order_not_found"
    )
    assert_error(
        api.call("GET", f"/v1/marketplace/orders/{order_id}", scene.m2), 404, "order_not_found"
    )
    assert_error(
        api.call("GET", "/v1/marketplace/orders/ord_nope", scene.c1), 404, "order_not_found"
    )
    assert_error(
        api.call("GET", f"/v1/marketplace/orders/{order_id}"), 401, "authentication_required"
    )
    assert get_order(api, scene.m1, order_id)["order_id"] == order_id
    assert get_order(api, ADMIN_KEY, order_id)["order_id"] == order_id
