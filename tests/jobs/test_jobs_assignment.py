"""Submitting jobs: POST /v1/jobs books the cheapest available GPU that meets the constraints
(then the best rated, then the most reviewed) through the ordinary booking path, with the
job's id on the booking and order; otherwise the job waits in the queue until the sweeper
or the miner's poll finds it a GPU; a client who cannot pay is assert_error with 402."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from tests.jobs.slice_support import (
    JOB_FIELDS,
    JOBS,
    balance,
    booking,
    bookings,
    job,
    jobs,
    orders,
    poll,
    polled,
    set_price,
    submit,
    submitted,
    sweep,
)
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import details
from tests.support.market import advance, booked, deposit, release, review
from tests.support.responses import assert_error


@pytest.fixture
def miner(api: Api) -> str:
    return api.key("miner", "m1")


@pytest.fixture
def client(api: Api) -> str:
    key = api.key("client", "c1")
    deposit(api, "c1", "100")
    return key


def test_a_job_is_assigned_at_once_and_books_the_gpu(api: Api, miner: str, client: str) -> None:
    gpu_id = api.register_gpu(miner, price_per_hour="3.6")

    response = submit(api, client, payload={"prompt": "hello"}, duration_hours="0.5")

    assert response.status_code == 201, response.text
    created = response.json()
    assert set(created) == JOB_FIELDS
    assert created["job_id"].startswith("job")
    assert created["state"] == "assigned"
    assert (created["client_id"], created["gpu_id"], created["miner_id"]) == ("c1", gpu_id, "m1")
    assert created["duration_hours"] == "0.500000"
    assert created["assigned_at"] == created["created_at"] == "2030-01-01T00:00:00Z"
    assert created["expires_at"] == "2030-01-01T01:00:00Z"  # default ttl 3600 s
    assert (created["started_at"], created["finished_at"]) == (None, None)
    assert (created["result"], created["error"]) == (None, None)

    made = booking(api, client, created["booking_id"])
    assert made["job_id"] == created["job_id"]
    assert (made["gpu_id"], made["client_id"], made["status"]) == (gpu_id, "c1", "active")
    assert (made["price_per_hour"], made["total_cost"]) == ("3.600000", "1.800000")
    assert made["end_time"] == "2030-01-01T00:30:00Z"
    [order] = orders(api, client)
    assert (order["job_id"], order["booking_id"]) == (created["job_id"], created["booking_id"])
    assert order["order_id"] == made["order_id"]
    assert balance(api, client) == ("98.200000", "1.800000")
    assert details(api, gpu_id)["status"] == "booked"
    assert details(api, gpu_id)["total_bookings"] == 1
    assert job(api, client, created["job_id"]) == created


def test_the_cheapest_available_gpu_is_chosen(api: Api, miner: str, client: str) -> None:
    m2 = api.key("miner", "m2")
    api.register_gpu(miner, price_per_hour="0.9")
    cheapest = api.register_gpu(m2, price_per_hour="0.4")
    api.register_gpu(miner, price_per_hour="0.6")
    api.register_gpu(m2, price_per_hour="0.41")

    created = submitted(api, client)

    assert (created["gpu_id"], created["miner_id"]) == (cheapest, "m2")
    [order] = orders(api, client)
    assert (order["gpu_id"], order["price_per_hour"]) == (cheapest, "0.400000")


def test_a_busy_or_offline_gpu_is_passed_over(api: Api, miner: str, client: str) -> None:
    m2 = api.key("miner", "m2")
    other = api.key("client", "c2")
    deposit(api, "c2", "100")
    busy = api.register_gpu(miner, price_per_hour="0.1")
    silent = api.register_gpu(m2, price_per_hour="0.2")
    fallback = api.register_gpu(miner, price_per_hour="0.3")
    booked(api, other, busy, hours=2)
    advance(api, 91, miner)  # m2 is offline now

    created = submitted(api, client)

    assert created["gpu_id"] == fallback
    assert details(api, silent)["status"] == "offline"


def _rated(api: Api, reviewer: str, miner: str, ratings: dict[str, int]) -> None:
    """The reviewer books each GPU for a minute, releases it and rates it."""
    for gpu_id in ratings:
        booked(api, reviewer, gpu_id)
    advance(api, 60, miner)
    for gpu_id, rating in ratings.items():
        release(api, reviewer, gpu_id)
        review(api, reviewer, gpu_id, rating)


def test_between_equal_prices_the_best_rated_wins(api: Api, miner: str, client: str) -> None:
    reviewer = api.key("client", "c2")
    deposit(api, "c2", "100")
    unrated = api.register_gpu(miner, price_per_hour="0.5")
    fair = api.register_gpu(miner, price_per_hour="0.5")
    best = api.register_gpu(miner, price_per_hour="0.5")
    dearer_but_perfect = api.register_gpu(miner, price_per_hour="0.51")
    _rated(api, reviewer, miner, {fair: 3, best: 5, dearer_but_perfect: 5})

    first = submitted(api, client)
    second = submitted(api, client)
    third = submitted(api, client)
    fourth = submitted(api, client)

    assert [j["gpu_id"] for j in (first, second, third, fourth)] == [
        best,
        fair,
        unrated,
        dearer_but_perfect,
    ]
    assert details(api, best)["average_rating"] == "5.00"


def test_between_equal_ratings_the_most_reviewed_wins(api: Api, miner: str, client: str) -> None:
    r1 = api.key("client", "c2")
    r2 = api.key("client", "c3")
    deposit(api, "c2", "100")
    deposit(api, "c3", "100")
    once = api.register_gpu(miner, price_per_hour="0.5")
    twice = api.register_gpu(miner, price_per_hour="0.5")
    _rated(api, r1, miner, {once: 4, twice: 4})
    _rated(api, r2, miner, {twice: 4})

    assert submitted(api, client)["gpu_id"] == twice
    assert submitted(api, client)["gpu_id"] == once


@dataclass(frozen=True)
class Fleet:
    ids: dict[str, str]


@pytest.fixture
def fleet(api: Api, miner: str) -> Fleet:
    specs: dict[str, dict[str, Any]] = {
        "cheap": {
            "name": "RTX 3060",
            "memory_gb": 12,
            "price_per_hour": "0.2",
            "region": "us-east",
        },
        "4090": {
            "name": "RTX 4090",
            "memory_gb": 24,
            "price_per_hour": "0.5",
            "region": "us-east",
            "ai_models": ["llama2-7b"],
        },
        "a100": {
            "name": "A100",
            "memory_gb": 80,
            "price_per_hour": "2",
            "region": "eu-west",
            "ai_models": ["llama2-70b", "llama2-7b"],
        },
        "eu4090": {
            "name": "RTX 4090",
            "memory_gb": 24,
            "price_per_hour": "0.7",
            "region": "eu-west",
            "ai_models": ["llama2-7b"],
        },
    }
    return Fleet(ids={name: api.register_gpu(miner, **spec) for name, spec in specs.items()})


@pytest.mark.parametrize(
    ("constraints", "expected"),
    [
        ({}, "cheap"),
        ({"gpu_model": "RTX 4090"}, "4090"),
        ({"gpu_model": "rtx-4090"}, "4090"),
        ({"gpu_model": "A100"}, "a100"),
        ({"memory_min_gb": 24}, "4090"),
        ({"memory_min_gb": 40}, "a100"),
        ({"memory_min_gb": 12}, "cheap"),
        ({"ai_model": "llama2-7b"}, "4090"),
        ({"ai_model": "Llama2 70B"}, "a100"),
        ({"region": "eu-west"}, "eu4090"),
        ({"region": "EU-West"}, "eu4090"),
        ({"region": "eu-west", "memory_min_gb": 40}, "a100"),
        ({"gpu_model": "RTX 4090", "region": "eu-west"}, "eu4090"),
        ({"max_price_per_hour": "0.5", "memory_min_gb": 24}, "4090"),
        ({"max_price_per_hour": "0.7", "region": "eu-west"}, "eu4090"),
        ({"max_price_per_hour": "0.2"}, "cheap"),
    ],
)
def test_constraints_choose_the_gpu(
    api: Api, fleet: Fleet, client: str, constraints: dict[str, Any], expected: str
) -> None:
    created = submitted(api, client, constraints=constraints)

    assert created["state"] == "assigned"
    assert created["gpu_id"] == fleet.ids[expected]


@pytest.mark.parametrize(
    "constraints",
    [
        {"gpu_model": "H100"},
        {"memory_min_gb": 81},
        {"ai_model": "mixtral"},
        {"region": "ap-south"},
        {"max_price_per_hour": "0.19"},
        {"max_price_per_hour": "0.49", "memory_min_gb": 24},
        {"max_price_per_hour": "1.99", "memory_min_gb": 40},
        {"gpu_model": "RTX 3060", "ai_model": "llama2-7b"},
        {"region": "us-east", "memory_min_gb": 40},
    ],
)
def test_no_matching_gpu_leaves_the_job_queued(
    api: Api, fleet: Fleet, client: str, constraints: dict[str, Any]
) -> None:
    created = submitted(api, client, constraints=constraints)

    assert created["state"] == "queued"
    assert (created["gpu_id"], created["miner_id"], created["booking_id"]) == (None, None, None)
    assert created["assigned_at"] is None
    assert bookings(api, client) == []
    assert balance(api, client) == ("100.000000", "0.000000")
    assert all(details(api, g)["status"] == "available" for g in fleet.ids.values())


def test_the_constraints_are_kept_on_the_job(api: Api, client: str) -> None:
    constraints = {
        "gpu_model": "H100",
        "memory_min_gb": 80,
        "ai_model": "llama2-70b",
        "region": "eu-west",
        "max_price_per_hour": "4",
    }

    created = submitted(api, client, constraints=constraints)

    kept = created["constraints"]
    assert (kept["memory_min_gb"], kept["region"]) == (80, "eu-west")
    assert kept["gpu_model"].lower().replace(" ", "") == "h100"
    assert kept["ai_model"].lower().replace("-", "") == "llama270b"
    assert float(kept["max_price_per_hour"]) == 4
    assert job(api, client, created["job_id"])["constraints"] == kept


def test_a_queued_job_is_assigned_by_the_sweeper_once_a_gpu_appears(
    api: Api, miner: str, client: str
) -> None:
    created = submitted(api, client, constraints={"gpu_model": "H100"})
    api.register_gpu(miner, name="RTX 4090", price_per_hour="0.1")
    sweep(api)
    assert job(api, client, created["job_id"])["state"] == "queued"

    advance(api, 30, miner)
    h100 = api.register_gpu(miner, name="H100", memory_gb=80, price_per_hour="3")
    assert job(api, client, created["job_id"])["state"] == "queued"  # until the sweep
    sweep(api)

    assigned = job(api, client, created["job_id"])
    assert assigned["state"] == "assigned"
    assert (assigned["gpu_id"], assigned["assigned_at"]) == (h100, "2030-01-01T00:00:30Z")
    [order] = orders(api, client)
    assert (order["job_id"], order["gpu_id"]) == (created["job_id"], h100)
    assert order["start_time"] == "2030-01-01T00:00:30Z"
    assert balance(api, client) == ("97.000000", "3.000000")


def test_a_queued_job_is_assigned_once_a_gpu_frees_up(api: Api, miner: str, client: str) -> None:
    other = api.key("client", "c2")
    deposit(api, "c2", "100")
    gpu_id = api.register_gpu(miner, price_per_hour="0.5")
    booked(api, other, gpu_id, hours=2)
    created = submitted(api, client)
    assert created["state"] == "queued"
    advance(api, 600, miner)
    sweep(api)
    assert job(api, client, created["job_id"])["state"] == "queued"

    release(api, other, gpu_id)
    sweep(api)

    assigned = job(api, client, created["job_id"])
    assert (assigned["state"], assigned["gpu_id"]) == ("assigned", gpu_id)


def test_a_queued_job_is_assigned_by_the_miners_poll(api: Api, miner: str, client: str) -> None:
    created = submitted(api, client)
    assert created["state"] == "queued"
    gpu_id = api.register_gpu(miner, price_per_hour="0.5")

    handed = polled(api, miner)

    assert (handed["job_id"], handed["gpu_id"]) == (created["job_id"], gpu_id)
    running = job(api, client, created["job_id"])
    assert (running["state"], running["gpu_id"], running["miner_id"]) == ("running", gpu_id, "m1")
    [order] = orders(api, client)
    assert order["job_id"] == created["job_id"]


def test_a_miners_poll_only_takes_queued_jobs_its_own_gpus_can_serve(
    api: Api, miner: str, client: str
) -> None:
    m2 = api.key("miner", "m2")
    created = submitted(api, client, constraints={"gpu_model": "A100"})
    api.register_gpu(m2, name="RTX 4090", price_per_hour="0.5")
    a100 = api.register_gpu(miner, name="A100", memory_gb=80, price_per_hour="2")

    assert poll(api, m2).status_code == 204
    assert job(api, client, created["job_id"])["state"] == "queued"
    assert polled(api, miner)["gpu_id"] == a100


def test_queued_jobs_are_served_oldest_first(api: Api, miner: str, client: str) -> None:
    first = submitted(api, client)
    advance(api, 1)
    second = submitted(api, client)
    api.register_gpu(miner, price_per_hour="0.5")

    sweep(api)

    assert job(api, client, first["job_id"])["state"] == "assigned"
    assert job(api, client, second["job_id"])["state"] == "queued"


@pytest.mark.parametrize("by", ["sweeps", "the poll"])
def test_jobs_no_gpu_can_serve_never_keep_a_servable_one_waiting(
    api: Api, miner: str, client: str, by: str
) -> None:
    """Fifty older jobs for a model nobody lists (more than a sweep's page, and than a
    poll looks at) do not keep a job for a free GPU in the queue."""
    for _ in range(50):
        submitted(api, client, constraints={"gpu_model": "H100"})
        api.clock.advance(seconds=1)
    gpu = api.register_gpu(miner, name="RTX 4090", price_per_hour="0.5")
    other = api.key("client", "c2")
    deposit(api, "c2", "100")
    booked(api, other, gpu, 2)
    late = submitted(api, client, constraints={"gpu_model": "RTX 4090"})
    advance(api, 60, miner)
    release(api, other, gpu)
    if by == "sweeps":
        sweep(api)  # the oldest page: nothing it can serve
        sweep(api)  # the next page
        assert job(api, client, late["job_id"])["state"] == "assigned"
    else:
        assert polled(api, miner)["job_id"] == late["job_id"]


def _reserve(api: Api, client_key: str, gpu_id: str, start: str) -> None:
    response = api.call(
        "POST",
        f"/v1/marketplace/gpu/{gpu_id}/book",
        client_key,
        json={"gpu_id": gpu_id, "duration_hours": 1, "start_time": start},
    )
    assert response.status_code == 201, response.text


def test_a_gpu_reserved_during_the_job_is_passed_over(api: Api, miner: str, client: str) -> None:
    other = api.key("client", "c2")
    deposit(api, "c2", "100")
    reserved = api.register_gpu(miner, price_per_hour="0.1")
    free = api.register_gpu(miner, price_per_hour="0.5")
    _reserve(api, other, reserved, "2030-01-01T00:30:00Z")

    created = submitted(api, client, duration_hours=1)

    assert (created["state"], created["gpu_id"]) == ("assigned", free)
    assert details(api, reserved)["status"] == "available"  # the reservation has not begun


def test_a_free_gpu_is_found_behind_many_reserved_cheaper_ones(
    api: Api, miner: str, client: str
) -> None:
    """Six cheaper GPUs are all reserved from half an hour on, so none can take a one-hour
    job; the dearer free GPU can and must be chosen, however many come before it."""
    other = api.key("client", "c2")
    deposit(api, "c2", "100")
    for _ in range(6):
        _reserve(api, other, api.register_gpu(miner, price_per_hour="0.1"), "2030-01-01T00:30:00Z")
    free = api.register_gpu(miner, price_per_hour="0.5")

    created = submitted(api, client, duration_hours=1)

    assert (created["state"], created["gpu_id"]) == ("assigned", free)


def test_a_price_rise_above_the_limit_keeps_the_job_queued(
    api: Api, miner: str, client: str
) -> None:
    other = api.key("client", "c2")
    deposit(api, "c2", "100")
    gpu_id = api.register_gpu(miner, price_per_hour="0.5")
    booked(api, other, gpu_id, hours=1)
    created = submitted(api, client, constraints={"max_price_per_hour": "0.5"})
    set_price(api, miner, gpu_id, "0.6")
    advance(api, 60, miner)
    release(api, other, gpu_id)

    sweep(api)

    assert job(api, client, created["job_id"])["state"] == "queued"


# --- funds ---------------------------------------------------------------------------------


def test_insufficient_funds_at_submit_is_402_and_no_job(api: Api, miner: str) -> None:
    poor = api.key("client", "c9")
    deposit(api, "c9", "0.1")
    gpu_id = api.register_gpu(miner, price_per_hour="3.6")

    assert_error(submit(api, poor, duration_hours=1), 402, "insufficient_funds")

    assert jobs(api, poor) == []
    assert jobs(api, ADMIN_KEY) == []
    assert bookings(api, poor) == []
    assert orders(api, poor) == []
    assert balance(api, poor) == ("0.100000", "0.000000")
    assert details(api, gpu_id)["status"] == "available"
    assert details(api, gpu_id)["total_bookings"] == 0


def test_a_client_without_an_account_gets_402(api: Api, miner: str) -> None:
    broke = api.key("client", "c8")
    api.register_gpu(miner, price_per_hour="0.5")

    assert_error(submit(api, broke), 402, "insufficient_funds")
    assert jobs(api, broke) == []


def test_a_queued_job_waits_for_funds(api: Api, miner: str) -> None:
    poor = api.key("client", "c9")
    deposit(api, "c9", "0.1")
    created = submitted(api, poor)  # nothing to book yet, so nothing to pay yet
    assert created["state"] == "queued"
    gpu_id = api.register_gpu(miner, price_per_hour="0.5")

    sweep(api)
    assert job(api, poor, created["job_id"])["state"] == "queued"
    assert balance(api, poor) == ("0.100000", "0.000000")
    assert details(api, gpu_id)["status"] == "available"

    deposit(api, "c9", "1")
    sweep(api)
    assert job(api, poor, created["job_id"])["state"] == "assigned"
    assert balance(api, poor) == ("0.600000", "0.500000")


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"duration_hours": 0},
        {"duration_hours": -1},
        {"duration_hours": "abc"},
        {"duration_hours": "721"},
        {"duration_hours": 1, "ttl_seconds": 59},
        {"duration_hours": 1, "ttl_seconds": 7 * 86_400 + 1},
        {"duration_hours": 1, "payload": [1, 2]},
        {"duration_hours": 1, "constraints": {"gpu_model": "A100", "colour": "blue"}},
        {"duration_hours": 1, "payment_currency": "USD"},
        {"duration_hours": 1, "payment_amount": "0"},
        {"duration_hours": 1, "constraints": {"memory_min_gb": -1}},
        {"duration_hours": 1, "constraints": {"max_price_per_hour": "-1"}},
        {"duration_hours": 1, "constraints": {"max_price_per_hour": "0.1234567"}},
        {"duration_hours": 1, "colour": "blue"},
    ],
)
def test_bad_input_is_422(api: Api, miner: str, client: str, body: dict[str, Any]) -> None:
    api.register_gpu(miner, price_per_hour="0.5")

    assert_error(api.call("POST", JOBS, client, json=body), 422)

    assert jobs(api, client) == []
    assert balance(api, client) == ("100.000000", "0.000000")


def test_only_clients_submit_jobs(api: Api, miner: str) -> None:
    assert_error(api.call("POST", JOBS, miner, json={"duration_hours": 1}), 403, "wrong_role")
    assert_error(api.call("POST", JOBS, ADMIN_KEY, json={"duration_hours": 1}), 403, "wrong_role")
    assert_error(api.call("POST", JOBS, None, json={"duration_hours": 1}), 401)
    assert jobs(api, ADMIN_KEY) == []
