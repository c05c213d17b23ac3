"""Concurrent requests to one in-process server (threads), on both backends: one GPU, twenty
clients at once → one booking; one Idempotency-Key twenty times at once → one booking.
(The multi-process race on PostgreSQL is in ``test_booking_race.py``.)"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from functools import partial

import httpx
import pytest

from tests.accounts.ledger_invariants import assert_ledger_invariants
from tests.support.api import ADMIN_KEY
from tests.support.together import all_at_once

THREADS = 20


@pytest.fixture
def http(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=live_server, timeout=60, limits=httpx.Limits(max_connections=2 * THREADS)
    ) as client:
        yield client


def post(http: httpx.Client, path: str, key: str, **kwargs: object) -> httpx.Response:
    headers = {"X-Api-Key": key, **kwargs.pop("headers", {})}  # type: ignore[dict-item]
    return http.post(path, headers=headers, **kwargs)  # type: ignore[arg-type]


def key(http: httpx.Client, role: str, owner_id: str) -> str:
    response = post(
        http, "/v1/admin/api-keys", ADMIN_KEY, json={"role": role, "owner_id": owner_id}
    )
    assert response.status_code == 201, response.text
    secret: str = response.json()["key"]
    return secret


@pytest.fixture
def gpu_and_clients(http: httpx.Client) -> tuple[str, list[str]]:
    miner = key(http, "miner", "m1")
    body = {"gpu": {"name": "RTX 4090", "memory_gb": 24, "price_per_hour": "2"}}
    response = post(http, "/v1/marketplace/gpu/register", miner, json=body)
    assert response.status_code == 201, response.text
    clients = []
    for i in range(THREADS):
        clients.append(key(http, "client", f"t{i}"))
        deposit = post(
            http,
            f"/v1/admin/accounts/t{i}/deposit",
            ADMIN_KEY,
            json={"amount": "10"},
            params={"create": "true"},
        )
        assert deposit.status_code == 201, deposit.text
    return response.json()["gpu_id"], clients


def test_concurrent_bookings_of_one_gpu_make_one(
    http: httpx.Client, gpu_and_clients: tuple[str, list[str]], database_url: str
) -> None:
    gpu, clients = gpu_and_clients
    path = f"/v1/marketplace/gpu/{gpu}/book"
    responses = all_at_once(
        [partial(post, http, path, k, json={"duration_hours": 1}) for k in clients]
    )
    assert Counter(r.status_code for r in responses) == {201: 1, 409: THREADS - 1}, [
        r.text for r in responses
    ]
    figures = assert_ledger_invariants(database_url)
    assert figures.transactions["booking_escrow"] == 1
    assert figures.open_bookings == 1
    assert sum(figures.balance(f"t{i}") for i in range(THREADS)) == THREADS * 10_000_000 - 2_000_000


def test_concurrent_retries_with_one_key_make_one_booking(
    http: httpx.Client, gpu_and_clients: tuple[str, list[str]], database_url: str
) -> None:
    gpu, clients = gpu_and_clients
    path = f"/v1/marketplace/gpu/{gpu}/book"
    responses = all_at_once(
        [
            lambda: post(
                http, path, clients[0], json={"duration_hours": 1}, headers={"Idempotency-Key": "k"}
            )
        ]
        * THREADS
    )
    assert Counter(r.status_code for r in responses) == {201: THREADS}, [r.text for r in responses]
    assert len({r.json()["booking_id"] for r in responses}) == 1
    figures = assert_ledger_invariants(database_url)
    assert figures.transactions["booking_escrow"] == 1
    assert figures.balance("t0") == 8_000_000
