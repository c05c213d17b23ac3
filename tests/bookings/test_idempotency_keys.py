"""Idempotency-Key on every money-moving POST: a retry with the same key and body gets the
first response (marked ``Idempotent-Replayed``) and moves no more money; the same key with a
different request is assert_error with 422 ``idempotency_key_reused``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from tests.accounts.ledger_invariants import assert_ledger_invariants, snapshot
from tests.bookings.booking_support import (
    Trio,
    book,
    extend,
    figures,
    market,
    orders,
    queued_job,
    release_booking,
    release_gpu,
)
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import details
from tests.support.market import advance
from tests.support.responses import assert_error

REPLAYED = "Idempotent-Replayed"


@pytest.fixture(autouse=True)
def _ledger_stays_consistent(database_url: str) -> Iterator[None]:
    yield
    assert_ledger_invariants(database_url)


@pytest.fixture
def m(api: Api) -> Trio:
    return market(api)


def key(value: str) -> dict[str, dict[str, str]]:
    return {"headers": {"Idempotency-Key": value}}


def test_retried_book_returns_the_same_booking_and_charges_once(
    api: Api, m: Trio, database_url: str
) -> None:
    job_id = queued_job(api, m.client)
    first = book(api, m.client, m.gpu, 2, job_id=job_id, **key("book-1"))
    assert first.status_code == 201, first.text
    assert REPLAYED not in first.headers
    after_first = snapshot(database_url)
    for _ in range(3):
        again = book(api, m.client, m.gpu, 2, job_id=job_id, **key("book-1"))
        assert again.status_code == 201, again.text
        assert again.headers[REPLAYED] == "true"
        assert again.json() == first.json()
    assert snapshot(database_url) == after_first
    assert figures(api, m.client) == ("92.800000", "7.200000")
    assert len(orders(api, m.client)) == 1
    assert details(api, m.gpu)["total_bookings"] == 1
    assert assert_ledger_invariants(database_url).transactions["booking_escrow"] == 1


def test_the_replay_is_the_first_response_even_after_things_changed(
    api: Api, m: Trio, database_url: str
) -> None:
    first = book(api, m.client, m.gpu, 1, **key("k"))
    advance(api, 60, m.miner)
    assert release_gpu(api, m.client, m.gpu).status_code == 200
    again = book(api, m.client, m.gpu, 1, **key("k"))
    assert again.status_code == 201 and again.headers[REPLAYED] == "true"
    assert again.json() == first.json()  # status "active", as first answered
    assert assert_ledger_invariants(database_url).transactions["booking_escrow"] == 1


@pytest.mark.parametrize(("path", "count"), [("gpu", 1), ("best", 1), ("best", 2)])
def test_a_reservation_retried_after_its_start_is_the_replay(
    api: Api, m: Trio, path: str, count: int
) -> None:
    """The retry's answer is the first one's, whatever the clock now says of its start."""
    api.register_gpu(m.miner, price_per_hour="3.6")  # a second GPU, for the gang
    start = (api.clock.now() + timedelta(minutes=10)).isoformat()
    body: dict[str, Any] = {"duration_hours": "1", "start_time": start}
    url = f"/v1/marketplace/gpu/{m.gpu}/book" if path == "gpu" else "/v1/marketplace/book"
    if count > 1:
        body["count"] = count
    first = api.call("POST", url, m.client, json=body, **key("resv-1"))
    assert first.status_code == 201, first.text
    advance(api, 3600, m.miner)  # the client retries an hour later
    again = api.call("POST", url, m.client, json=body, **key("resv-1"))
    assert (again.status_code, again.headers.get(REPLAYED)) == (201, "true"), again.text
    assert again.json() == first.json()


def test_same_key_with_a_different_request_is_422(api: Api, m: Trio, database_url: str) -> None:
    assert book(api, m.client, m.gpu, 1, **key("k")).status_code == 201
    second_gpu = api.register_gpu(m.miner)
    job_id = queued_job(api, m.client)
    before = snapshot(database_url)
    for response in (
        book(api, m.client, m.gpu, 2, **key("k")),  # other duration
        book(api, m.client, m.gpu, 1, job_id=job_id, **key("k")),  # other field
        book(api, m.client, second_gpu, 1, **key("k")),  # other GPU
        release_gpu(api, m.client, m.gpu, **key("k")),  # other endpoint
    ):
        assert_error(response, 422, "idempotency_key_reused")
    assert snapshot(database_url) == before
    assert figures(api, m.client) == ("96.400000", "3.600000")


@pytest.mark.parametrize(("first", "again"), [("1", "1.0"), (1, "1.000000"), ("0.5", 0.5)])
def test_the_same_request_with_numbers_written_otherwise_is_a_replay(
    api: Api, m: Trio, database_url: str, first: Any, again: Any
) -> None:
    """Bodies are compared by value: "1.0" hours is the same request as "1"."""
    made = book(api, m.client, m.gpu, first, **key("same"))
    assert made.status_code == 201, made.text

    replayed = book(api, m.client, m.gpu, again, **key("same"))

    assert replayed.status_code == 201, replayed.text
    assert replayed.headers[REPLAYED] == "true"
    assert replayed.json() == made.json()
    assert assert_ledger_invariants(database_url).transactions["booking_escrow"] == 1


def test_keys_belong_to_their_owner(api: Api, m: Trio) -> None:
    second_gpu = api.register_gpu(m.miner)
    mine = book(api, m.client, m.gpu, 1, **key("shared"))
    theirs = book(api, m.other, second_gpu, 1, **key("shared"))
    assert mine.status_code == theirs.status_code == 201
    assert REPLAYED not in theirs.headers
    assert mine.json()["booking_id"] != theirs.json()["booking_id"]
    assert figures(api, m.other) == ("99.500000", "0.500000")


def test_a_key_longer_than_128_characters_is_422(api: Api, m: Trio) -> None:
    assert_error(book(api, m.client, m.gpu, 1, **key("k" * 129)), 422, "validation_error")
    assert book(api, m.client, m.gpu, 1, **key("k" * 128)).status_code == 201


def test_retried_deposit_credits_once(api: Api, database_url: str) -> None:
    client = api.key("client", "c9")
    path = "/v1/admin/accounts/c9/deposit"
    first = api.call(
        "POST", path, ADMIN_KEY, json={"amount": "12.5"}, params={"create": "true"}, **key("dep-1")
    )
    assert first.status_code == 201, first.text
    assert first.json()["amount"] == "12.500000"
    assert first.json()["account"]["balance"] == "12.500000"
    again = api.call(
        "POST", path, ADMIN_KEY, json={"amount": "12.5"}, params={"create": "true"}, **key("dep-1")
    )
    assert again.status_code == 201 and again.headers[REPLAYED] == "true"
    assert again.json() == first.json()
    assert figures(api, client) == ("12.500000", "0.000000")
    assert_error(
        api.call(
            "POST",
            path,
            ADMIN_KEY,
            json={"amount": "13"},
            params={"create": "true"},
            **key("dep-1"),
        ),
        422,
        "idempotency_key_reused",
    )
    assert_error(
        api.call(
            "POST",
            "/v1/admin/accounts/c8/deposit",
            ADMIN_KEY,
            json={"amount": "12.5"},
            params={"create": "true"},
            **key("dep-1"),
        ),
        422,
        "idempotency_key_reused",
    )
    assert figures(api, client) == ("12.500000", "0.000000")
    assert assert_ledger_invariants(database_url).transactions["deposit"] == 1
    # Without a key, the same deposit twice is two deposits.
    for _ in range(2):
        assert (
            api.call(
                "POST", path, ADMIN_KEY, json={"amount": "1"}, params={"create": "true"}
            ).status_code
            == 201
        )
    assert figures(api, client) == ("14.500000", "0.000000")


@pytest.mark.parametrize("path", ["gpu", "booking"])
def test_retried_release_replays_instead_of_409(
    api: Api, m: Trio, database_url: str, path: str
) -> None:
    body = book(api, m.client, m.gpu, 2).json()
    advance(api, 1800, m.miner)

    def release(idempotency_key: str) -> object:
        if path == "gpu":
            return release_gpu(api, m.client, m.gpu, **key(idempotency_key))
        return release_booking(api, m.client, body["booking_id"], **key(idempotency_key))

    first = release("rel-1")
    assert first.status_code == 200, first.text  # type: ignore[attr-defined]
    advance(api, 60, m.miner)
    again = release("rel-1")
    assert again.status_code == 200 and again.headers[REPLAYED] == "true"  # type: ignore[attr-defined]
    assert again.json() == first.json()  # type: ignore[attr-defined]
    assert figures(api, m.client) == ("98.200000", "0.000000")
    assert figures(api, m.miner) == ("1.800000", "0.000000")
    # A new key is a new request: there is nothing left to release.
    assert_error(release("rel-2"), 409, "nothing_to_release")
    assert assert_ledger_invariants(database_url).transactions["booking_released"] == 1


def test_release_key_reused_on_another_booking_is_422(api: Api, m: Trio) -> None:
    second_gpu = api.register_gpu(m.miner)
    first = book(api, m.client, m.gpu, 1).json()
    second = book(api, m.client, second_gpu, 1).json()
    advance(api, 60, m.miner)
    assert release_booking(api, m.client, first["booking_id"], **key("r")).status_code == 200
    assert_error(
        release_booking(api, m.client, second["booking_id"], **key("r")),
        422,
        "idempotency_key_reused",
    )
    assert figures(api, m.client) == ("99.440000", "0.500000")  # 3.54 back, 0.5 held


def test_retried_extend_charges_once(api: Api, m: Trio, database_url: str) -> None:
    body = book(api, m.client, m.gpu, 1).json()
    first = extend(api, m.client, body["booking_id"], 1, **key("ext"))
    assert first.status_code == 200, first.text
    again = extend(api, m.client, body["booking_id"], 1, **key("ext"))
    assert again.status_code == 200 and again.headers[REPLAYED] == "true"
    assert again.json() == first.json()
    assert_error(
        extend(api, m.client, body["booking_id"], 2, **key("ext")), 422, "idempotency_key_reused"
    )
    assert figures(api, m.client) == ("92.800000", "7.200000")
    assert assert_ledger_invariants(database_url).transactions["booking_extension"] == 1


def test_a_replay_compares_numbers_by_value(api: Api, m: Trio) -> None:
    first = book(api, m.client, m.gpu, "1", **key("by-value"))
    assert first.status_code == 201, first.text
    for same in ("1.0", 1, 1.0, "1.000000"):
        again = book(api, m.client, m.gpu, same, **key("by-value"))
        assert (again.status_code, again.headers.get(REPLAYED)) == (201, "true"), again.text
    submit = {"payload": {"n": 1, "scale": 2.50}, "duration_hours": 1, "ttl_seconds": 900}
    job = api.call("POST", "/v1/jobs", m.client, json=submit, **key("job"))
    assert job.status_code == 201, job.text
    by_value = {"payload": {"n": 1.0, "scale": 2.5}, "duration_hours": "1.0", "ttl_seconds": 900}
    again = api.call("POST", "/v1/jobs", m.client, json=by_value, **key("job"))
    assert again.status_code == 201 and again.json() == job.json(), again.text
    # A number and the string of it are different payloads.
    as_text = {**submit, "payload": {"n": "1", "scale": 2.5}}
    assert_error(
        api.call("POST", "/v1/jobs", m.client, json=as_text, **key("job")),
        422,
        "idempotency_key_reused",
    )
