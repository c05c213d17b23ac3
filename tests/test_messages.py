"""The words the API answers with: sentences that start with a capital letter and read right,
the numbers a client needs (what it costs, what is there), times in one form (`...Z`), and
never a caller's long input echoed back in full."""

from __future__ import annotations

import re

from tests.bookings.booking_support import book, market
from tests.support.api import ADMIN_KEY, Api
from tests.support.market import advance, booked
from tests.support.responses import assert_error


def test_a_wrong_role_is_named_with_the_right_article(api: Api) -> None:
    client, miner = api.key("client", "c-1"), api.key("miner", "m-1")
    as_client = assert_error(api.call("GET", "/v1/admin/api-keys", client), 403, "wrong_role")
    assert as_client["detail"] == "This endpoint needs an admin key; yours is a client key."
    booking = api.call("POST", "/v1/jobs", miner, json={"payload": {}})
    as_miner = assert_error(booking, 403, "wrong_role")
    assert "yours is a miner key." in as_miner["detail"]
    assert " a admin" not in as_miner["detail"] and " a client or" not in as_miner["detail"]


def test_booking_limits_are_sentences(api: Api) -> None:
    m = market(api)
    too_long = assert_error(book(api, m.client, m.gpu, 721), 422, "duration_too_long")
    assert too_long["detail"] == "A booking lasts at most 720 hours."
    in_past = book(api, m.client, m.gpu, 1, start_time="2000-01-01T00:00:00Z")
    assert assert_error(in_past, 422)["detail"][0].isupper()


def test_insufficient_funds_says_the_cost_and_the_balance(api: Api) -> None:
    m = market(api, price="3.6", funds="5")
    refused = assert_error(book(api, m.client, m.gpu, 2), 402, "insufficient_funds")
    assert "7.200000" in refused["detail"] and "5.000000" in refused["detail"], refused


def test_a_long_input_is_not_echoed_back_in_full(api: Api) -> None:
    long_id = "g" * 10_000
    error = assert_error(api.call("GET", f"/v1/marketplace/gpu/{long_id}"), 404)
    assert len(error["detail"]) < 200 and "…" in error["detail"], error
    key = api.key("client", "c-1")
    refused = api.call("POST", f"/v1/bookings/{'b' * 5000}/release", key)
    assert len(refused.json()["detail"]) < 200, refused.text


def test_every_time_is_utc_with_a_z(api: Api) -> None:
    m = market(api)
    b = booked(api, m.client, m.gpu, 1)
    advance(api, 60, m.miner)
    reads = [
        ("/v1/marketplace/gpu/list", None),
        (f"/v1/marketplace/gpu/{m.gpu}", None),
        ("/v1/bookings", m.client),
        (f"/v1/bookings/{b['booking_id']}", m.client),
        ("/v1/marketplace/orders", m.client),
        (f"/v1/marketplace/orders/{b['order_id']}", m.client),
        ("/v1/accounts/me/ledger", m.client),
        ("/v1/admin/api-keys", ADMIN_KEY),
        ("/v1/marketplace/offers", None),
        ("/v1/marketplace/pricing/RTX 4090", None),
    ]
    seen = 0
    for path, key in reads:
        response = api.call("GET", path, key)
        assert response.status_code == 200, (path, response.text)
        for stamp in re.findall(r'"(\d{4}-\d\d-\d\dT[^"]*)"', response.text):
            assert stamp.endswith("Z") and "+00:00" not in stamp, (path, stamp)
            seen += 1
    assert seen > 20
