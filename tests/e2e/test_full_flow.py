"""End to end: the real server (``aitbc serve``) in its own process, driven only through the
``aitbc`` CLI run as separate processes, from creating keys to a job's settled payment.

The server runs on a free port against a fresh database: an SQLite file in the test's
temporary directory, or a new PostgreSQL database when ``AITBC_TEST_DATABASE_URL`` is set.
Its sweeper runs every second. This is the one test that waits on the wall clock: it polls
/health in a bounded loop until the server answers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.api import PG_URL
from tests.support.served import postgres_database
from tests.support.waiting import free_port

AITBC = str(Path(sys.executable).parent / "aitbc")
E2E_ADMIN_KEY = "e2e-admin-key-" + "0123456789abcdef" * 2
STARTUP_SECONDS = 25
CLI_TIMEOUT_SECONDS = 30


def _clean_env(home: Path) -> dict[str, str]:
    """The environment without any AITBC_ setting, and a HOME with no CLI config file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AITBC_")}
    env["HOME"] = str(home)
    return env


@pytest.fixture
def database_url_e2e(tmp_path: Path) -> Iterator[str]:
    if not PG_URL:
        yield f"sqlite:///{tmp_path / 'e2e.db'}"
        return
    with postgres_database(PG_URL, "e2e", migrated=False) as url:
        yield url


@pytest.fixture
def server(tmp_path: Path, database_url_e2e: str) -> Iterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = _clean_env(tmp_path)
    env |= {
        "AITBC_ADMIN_KEY": E2E_ADMIN_KEY,
        "AITBC_SWEEP_INTERVAL_SECONDS": "1",
        "AITBC_DATA_DIR": str(tmp_path / "data"),
    }
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [AITBC, "serve", "--port", str(port), "--database-url", database_url_e2e],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited with {process.returncode}: {log_path.read_text()}")
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer /health: {log_path.read_text()}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


class Cli:
    """Runs ``aitbc --url URL --api-key KEY --output json ...`` as a process."""

    def __init__(self, url: str, home: Path) -> None:
        self.url = url
        self.env = _clean_env(home)

    def __call__(self, key: str, *args: str) -> Any:
        [result] = self.many((key, *args))
        return result

    def many(self, *calls: tuple[str, ...]) -> list[Any]:
        """Independent commands run side by side (each still its own process)."""
        processes = [
            subprocess.Popen(
                [AITBC, "--url", self.url, "--api-key", key, "--output", "json", *args],
                env=self.env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for key, *args in calls
        ]
        results = []
        for call, process in zip(calls, processes, strict=True):
            try:
                stdout, stderr = process.communicate(timeout=CLI_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                raise
            assert process.returncode == 0, (call[1:], stdout, stderr)
            results.append(json.loads(stdout) if stdout.strip() else None)
        return results


def _amount(value: str) -> Decimal:
    return Decimal(value)


def test_the_whole_flow_through_the_cli(server: str, tmp_path: Path) -> None:
    cli = Cli(server, tmp_path)
    admin = E2E_ADMIN_KEY

    # The admin creates a miner's and a client's keys and funds the client.
    miner, client = cli.many(
        (admin, "admin", "keys", "create", "--role", "miner", "--owner-id", "e2e-miner"),
        (admin, "admin", "keys", "create", "--role", "client", "--owner-id", "e2e-client"),
    )
    # Once the client has a key it is known, so the deposit needs no --create.
    [funded] = cli.many((admin, "admin", "deposit", "e2e-client", "100"))
    miner_key, client_key = miner["key"], client["key"]
    assert funded["account"]["balance"] == "100.000000"

    # The miner registers two GPUs and heartbeats.
    gpus = [
        {
            "model": "RTX 4090",
            "memory_gb": 24,
            "price_per_hour": "3.6",
            "ai_models": ["llama2-7b"],
        },
        {"model": "A100", "memory_gb": 80, "price_per_hour": "7.2"},
    ]
    registered = cli(
        miner_key, "miner", "register", "--gpus", json.dumps(gpus), "--region", "eu-west"
    )
    assert [g["slot"] for g in registered["gpus"]] == ["0", "1"]
    rtx_id, a100_id = (g["gpu_id"] for g in registered["gpus"])
    assert cli(miner_key, "miner", "heartbeat")["status"] == "online"

    # The client lists, looks at one, books it, sees the order, releases it and reviews it.
    listed, details = cli.many(
        (client_key, "marketplace", "gpu", "list"),
        (client_key, "marketplace", "gpu", "details", a100_id),
    )
    assert {g["gpu_id"] for g in listed} == {rtx_id, a100_id}
    assert (details["model"], details["status"], details["price_per_hour"]) == (
        "A100",
        "available",
        "7.200000",
    )
    booked = cli(client_key, "marketplace", "gpu", "book", a100_id, "--hours", "1")
    assert (booked["gpu_id"], booked["total_cost"]) == (a100_id, "7.200000")
    [order] = cli(client_key, "marketplace", "orders")
    assert (order["booking_id"], order["gpu_id"]) == (booked["booking_id"], a100_id)
    released = cli(client_key, "marketplace", "gpu", "release", a100_id)
    assert released["status"] == "released"
    assert released["used_seconds"] >= 1
    manual_charge = _amount(released["amount_charged"])
    assert manual_charge == _amount("7.2") * released["used_seconds"] / 3600
    assert _amount(released["refund"]) == _amount("7.2") - manual_charge
    reviewed = cli(
        client_key, "marketplace", "review", a100_id, "--rating", "5", "--comment", "fast"
    )
    assert (reviewed["rating"], reviewed["comment"]) == (5, "fast")

    # Pricing, and the offers that follow the online miner's GPUs (the admin's sync, kept
    # for older tooling, finds them in step already).
    reviews, gpu_price, ai_price, synced = cli.many(
        (client_key, "marketplace", "reviews", a100_id),
        (client_key, "marketplace", "pricing", "RTX 4090"),
        (client_key, "marketplace", "pricing", "llama2-7b"),
        (admin, "admin", "sync-offers"),
    )
    assert reviews["average_rating"] == "5.00"
    assert gpu_price and ai_price
    assert synced == {"created": 0, "updated": 0, "closed": 0, "unchanged": 2}
    offers, stats = cli.many(
        (client_key, "marketplace", "offers"), (client_key, "marketplace", "stats")
    )
    assert {o["gpu_id"] for o in offers} == {rtx_id, a100_id}
    assert {o["provider"] for o in offers} == {"e2e-miner"}
    assert (stats["totalOffers"], stats["openCapacity"], stats["averagePrice"]) == (
        2,
        2,
        "5.400000",
    )

    # The client submits a job; it books the RTX 4090 (the cheapest match).
    submitted = cli(
        client_key,
        "client",
        "submit",
        "--hours",
        "1",
        "--gpu-model",
        "RTX 4090",
        "--payload",
        '{"prompt": "hello"}',
    )
    assert (submitted["state"], submitted["gpu_id"]) == ("assigned", rtx_id)
    job_id = submitted["job_id"]

    # The miner polls, runs it and reports the result.
    job_orders, handed = cli.many(
        (client_key, "marketplace", "orders"), (miner_key, "miner", "poll")
    )
    assert any(o["job_id"] == job_id for o in job_orders)
    assert (handed["job_id"], handed["payload"]) == (job_id, {"prompt": "hello"})
    assert cli(miner_key, "miner", "poll") is None
    done = cli(miner_key, "miner", "result", job_id, "--result", '{"text": "hi there"}')
    assert done["state"] == "completed"

    # The client sees the job completed and the money settled.
    status, my_jobs, job_booking, client_account, miner_account = cli.many(
        (client_key, "client", "status", job_id),
        (client_key, "client", "jobs"),
        (client_key, "bookings", "show", submitted["booking_id"]),
        (client_key, "account", "balance"),
        (miner_key, "account", "balance"),
    )
    assert (status["state"], status["result"]) == ("completed", {"text": "hi there"})
    assert [j["job_id"] for j in my_jobs] == [job_id]
    assert job_booking["job_id"] == job_id
    assert job_booking["status"] == "released"
    job_charge = _amount(job_booking["amount_charged"])
    assert Decimal(0) < job_charge < _amount("3.6")
    assert job_charge + _amount(job_booking["refund"]) == _amount("3.6")

    assert _amount(client_account["balance"]) == 100 - manual_charge - job_charge
    assert client_account["escrow"] == "0.000000"
    assert _amount(miner_account["balance"]) == manual_charge + job_charge
    assert miner_account["escrow"] == "0.000000"
