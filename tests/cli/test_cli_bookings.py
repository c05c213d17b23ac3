"""The CLI's booking, order and billing commands against the real app over HTTP:
``marketplace gpu book|release``, ``marketplace orders``, ``bookings list|show|extend|release``,
``account balance|ledger`` and ``admin deposit``."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result

from aitbc.cli.main import cli
from aitbc.kit.clock import ManualClock
from tests.support.api import ADMIN_KEY

CLEAN_ENV = {"AITBC_URL": None, "AITBC_API_KEY": None}


class Setup:
    """Keys, a GPU and money, made over plain HTTP so the CLI tests test only the CLI."""

    def __init__(self, url: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)

    def key(self, role: str, owner_id: str) -> str:
        response = self.http.post(
            "/v1/admin/api-keys",
            headers={"X-Api-Key": ADMIN_KEY},
            json={"role": role, "owner_id": owner_id},
        )
        assert response.status_code == 201, response.text
        secret: str = response.json()["key"]
        return secret

    def pass_time(self, clock: ManualClock, seconds: float, miner_key: str) -> None:
        """Move the clock on while the miner heartbeats every minute (stays online)."""
        left = seconds
        while left > 0:
            step = min(60.0, left)
            clock.advance(seconds=step)
            left -= step
            beat = self.http.post("/v1/miners/heartbeat", headers={"X-Api-Key": miner_key})
            assert beat.status_code == 200, beat.text

    def gpu(self, miner_key: str, price: str) -> str:
        response = self.http.post(
            "/v1/marketplace/gpu/register",
            headers={"X-Api-Key": miner_key},
            json={"gpu": {"name": "RTX 4090", "memory_gb": 24, "price_per_hour": price}},
        )
        assert response.status_code == 201, response.text
        gpu_id: str = response.json()["gpu_id"]
        return gpu_id

    def deposit(self, owner_id: str, amount: str) -> None:
        response = self.http.post(
            f"/v1/admin/accounts/{owner_id}/deposit",
            headers={"X-Api-Key": ADMIN_KEY},
            json={"amount": amount},
            params={"create": "true"},
        )
        assert response.status_code == 201, response.text


class Cli:
    def __init__(self, url: str) -> None:
        self.url = url
        self.runner = CliRunner()

    def run(self, key: str, *args: str, output: str = "json") -> Result:
        return self.runner.invoke(
            cli,
            ["--url", self.url, "--api-key", key, "--output", output, *args],
            env=CLEAN_ENV,
            catch_exceptions=False,
        )

    def ok(self, key: str, *args: str) -> Any:
        result = self.run(key, *args)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    def fails(self, key: str, *args: str) -> str:
        result = self.run(key, *args)
        assert result.exit_code != 0, result.output
        return result.output


@pytest.fixture
def setup(live_server: str) -> Iterator[Setup]:
    made = Setup(live_server)
    yield made
    made.http.close()


@pytest.fixture
def run(live_server: str) -> Cli:
    return Cli(live_server)


@pytest.fixture
def market(setup: Setup) -> dict[str, str]:
    miner = setup.key("miner", "m1")
    client = setup.key("client", "c1")
    gpu = setup.gpu(miner, "3.6")
    setup.deposit("c1", "100")
    return {"miner": miner, "client": client, "gpu": gpu}


def test_book_prints_the_booking_as_json(run: Cli, market: dict[str, str]) -> None:
    body = run.ok(market["client"], "marketplace", "gpu", "book", market["gpu"], "--hours", "1")
    assert body["booking_id"].startswith("bkg_")
    assert body["gpu_id"] == market["gpu"]
    assert (body["status"], body["total_cost"]) == ("active", "3.600000")
    balance = run.ok(market["client"], "account", "balance")
    assert (balance["balance"], balance["escrow"]) == ("96.400000", "3.600000")
    details = run.ok(market["client"], "marketplace", "gpu", "details", market["gpu"])
    assert details["status"] == "booked" and details["total_bookings"] == 1


def test_book_with_job_id_and_fractional_hours(
    run: Cli, setup: Setup, market: dict[str, str]
) -> None:
    job = setup.http.post(
        "/v1/jobs",
        headers={"X-Api-Key": market["client"]},
        json={"payload": {}, "ttl_seconds": 900, "constraints": {"gpu": "no such model"}},
    )
    assert job.status_code == 201, job.text
    job_id = job.json()["job_id"]
    body = run.ok(
        market["client"],
        "marketplace",
        "gpu",
        "book",
        market["gpu"],
        "--hours",
        "0.25",
        "--job-id",
        job_id,
    )
    assert (body["job_id"], body["total_cost"], body["duration_hours"]) == (
        job_id,
        "0.900000",
        "0.250000",
    )


def test_book_table_and_yaml_output(run: Cli, market: dict[str, str]) -> None:
    table = run.run(
        market["client"],
        "marketplace",
        "gpu",
        "book",
        market["gpu"],
        "--hours",
        "1",
        output="table",
    )
    assert table.exit_code == 0, table.output
    rows = [[*line.split(None, 1), ""][:2] for line in table.output.splitlines()]
    lines = {name: value.strip() for name, value in rows}
    assert lines["total_cost"] == "3.600000" and lines["status"] == "active"
    assert lines["job_id"] == ""
    listed = run.run(market["client"], "bookings", "list", output="yaml")
    assert listed.exit_code == 0, listed.output
    assert yaml.safe_load(listed.output)[0]["total_cost"] == "3.600000"


def test_reservation_and_price_guard(run: Cli, market: dict[str, str], clock: ManualClock) -> None:
    start = (clock.now() + timedelta(hours=2)).isoformat()
    body = run.ok(
        market["client"],
        "marketplace",
        "gpu",
        "book",
        market["gpu"],
        "--hours",
        "1",
        "--start",
        start,
    )
    assert body["status"] == "pending"
    output = run.fails(
        market["client"],
        "marketplace",
        "gpu",
        "book",
        market["gpu"],
        "--hours",
        "1",
        "--max-price",
        "3",
    )
    assert "price_above_limit" in output and "HTTP 409" in output


def test_release_prints_the_charge_and_refund(
    run: Cli, market: dict[str, str], clock: ManualClock, setup: Setup
) -> None:
    run.ok(market["client"], "marketplace", "gpu", "book", market["gpu"], "--hours", "2")
    setup.pass_time(clock, 1800, market["miner"])
    body = run.ok(market["client"], "marketplace", "gpu", "release", market["gpu"])
    assert (body["status"], body["used_seconds"]) == ("released", 1800)
    assert (body["amount_charged"], body["refund"]) == ("1.800000", "5.400000")
    assert run.ok(market["miner"], "account", "balance")["balance"] == "1.800000"
    output = run.fails(market["client"], "marketplace", "gpu", "release", market["gpu"])
    assert "nothing_to_release" in output and "HTTP 409" in output


def test_orders_with_status_filter(run: Cli, market: dict[str, str], setup: Setup) -> None:
    second = setup.gpu(market["miner"], "1")
    first = run.ok(market["client"], "marketplace", "gpu", "book", market["gpu"], "--hours", "1")
    run.ok(market["client"], "marketplace", "gpu", "book", second, "--hours", "1")
    assert run.ok(market["client"], "marketplace", "gpu", "release", second)["status"] in (
        "cancelled",
        "released",
    )
    active = run.ok(market["client"], "marketplace", "orders", "--status", "active")
    assert [o["order_id"] for o in active] == [first["order_id"]]
    assert active[0]["status"] == "active"
    everything = run.ok(market["client"], "marketplace", "orders")
    assert isinstance(everything, list) and len(everything) == 2
    assert len(run.ok(market["client"], "marketplace", "orders", "--limit", "1")) == 1
    assert (
        run.ok(market["miner"], "marketplace", "orders", "--status", "active")[0]["order_id"]
        == (first["order_id"])
    )
    bad = run.run(market["client"], "marketplace", "orders", "--status", "open")
    assert bad.exit_code != 0


def test_bookings_list_show_extend_release(
    run: Cli, market: dict[str, str], clock: ManualClock
) -> None:
    booked = run.ok(market["client"], "marketplace", "gpu", "book", market["gpu"], "--hours", "1")
    listed = run.ok(market["client"], "bookings", "list")
    assert [b["booking_id"] for b in listed] == [booked["booking_id"]]
    shown = run.ok(market["client"], "bookings", "show", booked["booking_id"])
    assert shown == booked
    extended = run.ok(
        market["client"], "bookings", "extend", booked["booking_id"], "--hours", "0.5"
    )
    assert (extended["total_cost"], extended["duration_hours"]) == ("5.400000", "1.500000")
    assert run.ok(market["client"], "account", "balance")["escrow"] == "5.400000"
    clock.advance(seconds=60)
    released = run.ok(market["client"], "bookings", "release", booked["booking_id"])
    assert (released["amount_charged"], released["refund"]) == ("0.060000", "5.340000")
    output = run.fails(market["client"], "bookings", "show", "bkg_missing")
    assert "booking_not_found" in output and "HTTP 404" in output
    output = run.fails(market["client"], "bookings", "extend", booked["booking_id"], "--hours", "1")
    assert "booking_ended" in output


def test_account_balance_and_ledger(run: Cli, market: dict[str, str]) -> None:
    balance = run.ok(market["client"], "account", "balance")
    assert balance == {
        "owner_id": "c1",
        "currency": "AITBC",
        "balance": "100.000000",
        "escrow": "0.000000",
        "unsettled": "0.000000",
    }
    run.ok(market["client"], "marketplace", "gpu", "book", market["gpu"], "--hours", "1")
    ledger = run.ok(market["client"], "account", "ledger")
    assert [line["kind"] for line in ledger] == ["booking_escrow", "booking_escrow", "deposit"]
    assert len(run.ok(market["client"], "account", "ledger", "--limit", "1")) == 1
    table = run.run(market["client"], "account", "ledger", output="table")
    assert table.exit_code == 0 and "booking_escrow" in table.output
    assert table.output.splitlines()[0].split()[:3] == ["entry_id", "transaction_id", "kind"]


def test_admin_deposit(run: Cli, setup: Setup) -> None:
    client = setup.key("client", "c7")
    body = run.ok(ADMIN_KEY, "admin", "deposit", "c7", "12.5")
    assert body["amount"] == "12.500000" and body["account"]["balance"] == "12.500000"
    for _ in range(2):
        run.ok(ADMIN_KEY, "admin", "deposit", "c7", "1", "--idempotency-key", "once")
    assert run.ok(client, "account", "balance")["balance"] == "13.500000"
    output = run.fails(client, "admin", "deposit", "c7", "5")
    assert "wrong_role" in output and "HTTP 403" in output
    output = run.fails(ADMIN_KEY, "admin", "deposit", "c7", "0")
    assert "validation_error" in output and "HTTP 422" in output
    assert run.ok(client, "account", "balance")["balance"] == "13.500000"


def test_failing_booking_exits_non_zero_with_the_servers_message(
    run: Cli, market: dict[str, str], setup: Setup
) -> None:
    poor = setup.key("client", "poor")
    result = run.run(poor, "marketplace", "gpu", "book", market["gpu"], "--hours", "1")
    assert result.exit_code != 0
    # The server's own sentence, with the cost and the balance.
    assert "This costs 3.600000 AITBC; the main balance of 'poor' is 0.000000." in result.output
    assert "insufficient_funds" in result.output and "HTTP 402" in result.output
    assert run.ok(poor, "account", "balance")["escrow"] == "0.000000"
    output = run.fails(
        market["client"], "marketplace", "gpu", "book", "gpu_missing", "--hours", "1"
    )
    assert "gpu_not_found" in output and "HTTP 404" in output
    output = run.fails(market["miner"], "marketplace", "gpu", "book", market["gpu"], "--hours", "1")
    assert "wrong_role" in output
    output = run.fails("", "marketplace", "gpu", "book", market["gpu"], "--hours", "1")
    assert "authentication_required" in output and "HTTP 401" in output
    details = run.ok(market["client"], "marketplace", "gpu", "details", market["gpu"])
    assert details["total_bookings"] == 0
