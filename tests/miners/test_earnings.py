"""A miner's earnings: what its bookings paid it (less the platform fee) in a time range, in
all and by GPU, and what its open bookings still hold; through the API and the CLI (a
table, or CSV), and deregistering from the CLI."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.cli.cli_support import Cli, isolate, ok_json, ok_text, usage_error
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import details
from tests.support.market import Market, advance, booked, release
from tests.support.money import money, split, units


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


def earnings(api: Api, key: str, **params: Any) -> dict[str, Any]:
    response = api.call("GET", "/v1/miners/me/earnings", key, params=params)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


@pytest.fixture
def paid(api: Api, market: Market) -> dict[str, Any]:
    """Two GPUs: one booked for an hour and released after 30 minutes, one booked for an hour
    and released after 15; a third booked and still open."""
    fast = market.gpu(name="H100", price_per_hour="4")
    slow = market.gpu(name="RTX 4090", price_per_hour="2")
    held = market.gpu(name="A100", price_per_hour="3")
    market.beat()
    client = market.client("c1", "100")
    start = api.clock.now()
    booked(api, client, fast, 1)
    booked(api, client, slow, 1)
    advance(api, 900, market.miner_key)
    release(api, client, slow)
    advance(api, 900, market.miner_key)
    release(api, client, fast)
    open_booking = booked(api, client, held, 1)
    return {"fast": fast, "slow": slow, "held": held, "start": start, "open": open_booking}


def test_earnings_are_the_payments_in_all_and_by_gpu(
    api: Api, market: Market, paid: dict[str, Any]
) -> None:
    fee = int(api.client.app.state.settings.platform_fee_bps)  # type: ignore[attr-defined]
    fast = split(units("4"), 3600, 1800, fee).provider
    slow = split(units("2"), 3600, 900, fee).provider
    found = earnings(api, market.miner_key)
    assert found["by_gpu"] == [
        {"gpu_id": paid["fast"], "model": "H100", "earned": money(fast), "bookings_paid": 1},
        {"gpu_id": paid["slow"], "model": "RTX 4090", "earned": money(slow), "bookings_paid": 1},
    ]
    assert (found["earned"], found["bookings_paid"]) == (money(fast + slow), 2)
    assert found["pending"] == paid["open"]["total_cost"]
    # A range: only what was paid within it (the first release came 15 minutes in).
    first = (paid["start"] + timedelta(minutes=20)).isoformat()
    early = earnings(api, market.miner_key, to_time=first)
    assert [g["gpu_id"] for g in early["by_gpu"]] == [paid["slow"]]
    assert early["earned"] == money(slow)
    assert details(api, paid["fast"])["status"] == "available"


def test_the_cli_shows_earnings_as_a_table_or_csv(
    live_server: str, market: Market, paid: dict[str, Any]
) -> None:
    run = Cli(live_server)
    table = ok_text(run(market.miner_key, "miner", "earnings"))
    assert "by_gpu:" in table and paid["fast"] in table and "pending" in table
    rows = list(
        csv.DictReader(io.StringIO(ok_text(run(market.miner_key, "miner", "earnings", "--csv"))))
    )
    assert [(r["gpu_id"], r["model"], r["bookings_paid"]) for r in rows] == [
        (paid["fast"], "H100", "1"),
        (paid["slow"], "RTX 4090", "1"),
    ]
    as_admin = run.json(ADMIN_KEY, "miner", "earnings", "--miner-id", "m-1")
    assert as_admin["by_gpu"] == run.json(market.miner_key, "miner", "earnings")["by_gpu"]


def test_the_cli_deregisters_after_asking(live_server: str, api: Api, market: Market) -> None:
    gpu = market.gpu()
    market.beat()
    run = Cli(live_server)
    usage_error(run(market.miner_key, "miner", "deregister"), "--yes")
    assert details(api, gpu)["status"] == "available"  # nothing done
    gone = ok_json(run(market.miner_key, "miner", "deregister", "--yes", "-o", "json"))
    assert gone["deregistered_at"] is not None and gone["status"] == "offline"
    assert details(api, gpu)["status"] == "delisted"
