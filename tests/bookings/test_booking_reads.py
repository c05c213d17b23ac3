"""Reading bookings: ``GET /v1/bookings`` (a client's own, a miner's on its GPUs, an admin's
all), newest first and paginated; ``GET /v1/bookings/{id}`` for those who may see it only."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.accounts.ledger_invariants import assert_ledger_invariants
from tests.bookings.booking_support import get_booking
from tests.support.api import ADMIN_KEY, Api
from tests.support.market import advance, booked, deposit
from tests.support.responses import assert_error


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(database_url: str) -> Iterator[None]:
    yield
    assert_ledger_invariants(database_url)


def listed(api: Api, key: str, **params: Any) -> list[str]:
    response = api.call("GET", "/v1/bookings", key, params=params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert isinstance(body, list)
    return [b["booking_id"] for b in body]


def test_who_sees_which_bookings(api: Api) -> None:
    c1, c2 = api.key("client", "c1"), api.key("client", "c2")
    m1, m2 = api.key("miner", "m1"), api.key("miner", "m2")
    g1, g2 = api.register_gpu(m1, price_per_hour="1"), api.register_gpu(m2, price_per_hour="1")
    deposit(api, "c1", "50")
    deposit(api, "c2", "50")
    a = booked(api, c1, g1, 1)["booking_id"]
    advance(api, 1, m1, m2)
    b = booked(api, c2, g2, 1)["booking_id"]
    advance(api, 1, m1, m2)
    start = (api.clock.now() + timedelta(hours=3)).isoformat()
    c = booked(api, c2, g1, 1, start_time=start)["booking_id"]

    assert listed(api, c1) == [a]
    assert listed(api, c2) == [c, b]
    assert listed(api, m1) == [c, a]
    assert listed(api, m2) == [b]
    assert listed(api, ADMIN_KEY) == [c, b, a]
    assert listed(api, ADMIN_KEY, limit=1, offset=1) == [b]
    assert listed(api, ADMIN_KEY, offset=3) == []
    assert_error(api.call("GET", "/v1/bookings"), 401, "authentication_required")
    assert_error(api.call("GET", "/v1/bookings", c1, params={"limit": 0}), 422, "validation_error")

    assert get_booking(api, m1, a)["client_id"] == "c1"
    assert get_booking(api, ADMIN_KEY, a)["booking_id"] == a
    assert_error(api.call("GET", f"/v1/bookings/{a}", c2), 404, "booking_not_found")
    assert_error(api.call("GET", f"/v1/bookings/{a}", m2), 404, "booking_not_found")
    assert_error(api.call("GET", f"/v1/bookings/{a}"), 401, "authentication_required")
