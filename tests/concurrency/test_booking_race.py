"""Races against the real server: ``aitbc serve`` with four worker processes on a PostgreSQL
database of its own. Fifty clients book one GPU at the same instant → exactly one 201, the
rest 409, one escrow charge; fifty retries with one Idempotency-Key → one booking; concurrent
releases → one refund; four sweepers → each expired booking settled once.

PostgreSQL only (skipped when ``AITBC_TEST_DATABASE_URL`` is unset)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from tests.accounts.ledger_invariants import assert_ledger_invariants
from tests.support.api import ADMIN_KEY, PG_URL
from tests.support.money import money, units
from tests.support.served import postgres_database
from tests.support.together import all_at_once
from tests.support.waiting import free_port

pytestmark = pytest.mark.skipif(not PG_URL, reason="the race test needs PostgreSQL")

WORKERS = 4
CONCURRENCY = 50
FUNDS = "100"


@dataclass
class Server:
    url: str
    database_url: str
    http: httpx.Client

    def post(self, path: str, key: str, **kwargs: Any) -> httpx.Response:
        headers = {"X-Api-Key": key, **kwargs.pop("headers", {})}
        return self.http.post(path, headers=headers, **kwargs)

    def get(self, path: str, key: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, headers={"X-Api-Key": key}, **kwargs)

    def key(self, role: str, owner_id: str) -> str:
        response = self.post(
            "/v1/admin/api-keys", ADMIN_KEY, json={"role": role, "owner_id": owner_id}
        )
        assert response.status_code == 201, response.text
        secret: str = response.json()["key"]
        return secret

    def deposit(self, owner_id: str, amount: str) -> None:
        response = self.post(
            f"/v1/admin/accounts/{owner_id}/deposit",
            ADMIN_KEY,
            json={"amount": amount},
            params={"create": "true"},
        )
        assert response.status_code == 201, response.text

    def register_gpu(self, miner_key: str, price: str) -> str:
        body = {"gpu": {"name": "RTX 4090", "memory_gb": 24, "price_per_hour": price}}
        response = self.post("/v1/marketplace/gpu/register", miner_key, json=body)
        assert response.status_code == 201, response.text
        gpu_id: str = response.json()["gpu_id"]
        return gpu_id

    def scalar(self, sql: str, **params: Any) -> Any:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return conn.execute(text(sql), params).scalar()
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with postgres_database(PG_URL, "race", migrated=False) as database_url:
        port = free_port()
        log_path = tmp_path_factory.mktemp("race") / "server.log"
        env = os.environ | {
            "AITBC_ADMIN_KEY": ADMIN_KEY,
            "AITBC_SWEEP_INTERVAL_SECONDS": "0.2",
            "AITBC_ENVIRONMENT": "test",
        }
        env.pop("AITBC_DATABASE_URL", None)
        command = [
            str(Path(sys.executable).with_name("aitbc")),
            "serve",
            "--port",
            str(port),
            "--workers",
            str(WORKERS),
            "--database-url",
            database_url,
        ]
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        url = f"http://127.0.0.1:{port}"
        http = httpx.Client(
            base_url=url, timeout=60, limits=httpx.Limits(max_connections=2 * CONCURRENCY)
        )
        try:
            deadline = time.monotonic() + 60
            while True:
                if process.poll() is not None:
                    pytest.fail(f"aitbc serve exited: {log_path.read_text()}")
                try:
                    if http.get("/health").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(f"aitbc serve did not come up: {log_path.read_text()}")
                time.sleep(0.1)
            yield Server(url=url, database_url=database_url, http=http)
        finally:
            http.close()
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)


@pytest.fixture(scope="module")
def market(server: Server) -> dict[str, Any]:
    miner = server.key("miner", "race-miner")
    clients = {}
    for i in range(CONCURRENCY):
        owner = f"racer-{i:02d}"
        clients[owner] = server.key("client", owner)
        server.deposit(owner, FUNDS)
    return {"miner": miner, "clients": clients}


def test_fifty_clients_race_for_one_gpu_and_one_wins(
    server: Server, market: dict[str, Any]
) -> None:
    gpu = server.register_gpu(market["miner"], "3.6")
    clients: dict[str, str] = market["clients"]
    path = f"/v1/marketplace/gpu/{gpu}/book"
    held_sql = (
        "SELECT sum(balance_units) FROM accounts WHERE owner_id LIKE 'racer-%' AND kind = :kind"
    )
    held_before = server.scalar(held_sql, kind="main")
    escrow_before = server.scalar(held_sql, kind="escrow") or 0
    escrow_charges_before = server.scalar(
        "SELECT count(*) FROM ledger_transactions WHERE kind = 'booking_escrow'"
    )
    responses = all_at_once(
        [
            partial(server.post, path, key, json={"gpu_id": gpu, "duration_hours": 2})
            for key in clients.values()
        ]
    )
    statuses = Counter(r.status_code for r in responses)
    assert statuses == {201: 1, 409: CONCURRENCY - 1}, [r.text for r in responses]
    codes = Counter(r.json()["error"] for r in responses if r.status_code == 409)
    assert set(codes) <= {"gpu_booked", "conflict"}, codes
    winner = next(r.json() for r in responses if r.status_code == 201)
    assert winner["total_cost"] == "7.200000"

    escrow_charges = server.scalar(
        "SELECT count(*) FROM ledger_transactions WHERE kind = 'booking_escrow'"
    )
    assert escrow_charges == escrow_charges_before + 1
    assert server.scalar("SELECT count(*) FROM bookings WHERE gpu_id = :g", g=gpu) == 1
    assert server.scalar("SELECT count(*) FROM orders WHERE gpu_id = :g", g=gpu) == 1
    assert server.scalar("SELECT total_bookings FROM gpus WHERE id = :g", g=gpu) == 1
    assert server.scalar(held_sql, kind="main") == held_before - units("7.2")
    assert server.scalar(held_sql, kind="escrow") == escrow_before + units("7.2")
    me = server.get("/v1/accounts/me", clients[winner["client_id"]]).json()
    assert (me["balance"], me["escrow"]) == (money(units(FUNDS) - units("7.2")), "7.200000")
    assert_ledger_invariants(server.database_url)

    # Fifty concurrent releases of that booking by its client: one refund.
    owner_key = clients[winner["client_id"]]
    releases = all_at_once(
        [lambda: server.post(f"/v1/marketplace/gpu/{gpu}/release", owner_key)] * 20
    )
    statuses = Counter(r.status_code for r in releases)
    assert statuses == {200: 1, 409: 19}, [r.text for r in releases]
    assert (
        server.scalar(
            "SELECT count(*) FROM ledger_transactions WHERE kind IN "
            "('booking_released', 'booking_cancelled') AND booking_id = :b",
            b=winner["booking_id"],
        )
        == 1
    )
    assert_ledger_invariants(server.database_url)


def test_fifty_retries_with_one_idempotency_key_make_one_booking(
    server: Server, market: dict[str, Any]
) -> None:
    gpu = server.register_gpu(market["miner"], "1.2")
    key = market["clients"]["racer-07"]
    before = server.get("/v1/accounts/me", key).json()
    path = f"/v1/marketplace/gpu/{gpu}/book"
    responses = all_at_once(
        [
            lambda: server.post(
                path,
                key,
                json={"gpu_id": gpu, "duration_hours": 1},
                headers={"Idempotency-Key": "the-one-retry-key"},
            )
        ]
        * CONCURRENCY
    )
    assert Counter(r.status_code for r in responses) == {201: CONCURRENCY}, [
        r.text for r in responses
    ]
    assert len({r.json()["booking_id"] for r in responses}) == 1
    assert sum(1 for r in responses if "Idempotent-Replayed" not in r.headers) == 1
    assert server.scalar("SELECT count(*) FROM bookings WHERE gpu_id = :g", g=gpu) == 1
    booking_id = responses[0].json()["booking_id"]
    assert (
        server.scalar(
            "SELECT count(*) FROM ledger_transactions WHERE kind = 'booking_escrow' "
            "AND booking_id = :b",
            b=booking_id,
        )
        == 1
    )
    after = server.get("/v1/accounts/me", key).json()
    assert units(before["balance"]) - units(after["balance"]) == units("1.2")
    assert_ledger_invariants(server.database_url)


def test_four_sweepers_settle_an_expired_booking_once(
    server: Server, market: dict[str, Any]
) -> None:
    gpus = [server.register_gpu(market["miner"], "36") for _ in range(5)]
    booking_ids = []
    for i, gpu in enumerate(gpus):
        key = market["clients"][f"racer-{10 + i:02d}"]
        response = server.post(
            f"/v1/marketplace/gpu/{gpu}/book",
            key,
            json={"gpu_id": gpu, "duration_hours": "0.000278"},
        )
        assert response.status_code == 201, response.text
        booking_ids.append(response.json()["booking_id"])
    ids = ", ".join(f"'{b}'" for b in booking_ids)
    deadline = time.monotonic() + 30
    while server.scalar(f"SELECT count(*) FROM bookings WHERE id IN ({ids}) AND status = 'open'"):
        assert time.monotonic() < deadline, "the sweepers did not settle the bookings"
        time.sleep(0.2)
    time.sleep(1)  # several more sweeps of every worker
    settled = server.scalar(
        f"SELECT count(*) FROM ledger_transactions WHERE kind = 'booking_completed' "
        f"AND booking_id IN ({ids})"
    )
    assert settled == len(booking_ids)
    assert server.scalar(
        f"SELECT count(*) FROM order_events e JOIN orders o ON o.id = e.order_id "
        f"WHERE o.booking_id IN ({ids}) AND e.status = 'completed'"
    ) == len(booking_ids)
    assert_ledger_invariants(server.database_url)
