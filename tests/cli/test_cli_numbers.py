"""Defect 12: every numeric option refuses NaN, infinity, numbers too large for a float and
text that is no number with a usage error (exit 2, no traceback), before anything is sent;
numbers inside JSON options likewise."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.cli_support import Cli, isolate, ok_json, usage_error
from tests.jobs.slice_support import balance, bookings, jobs, my_bids
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import list_gpus
from tests.support.market import deposit

NOT_FINITE = ("nan", "NaN", "inf", "-inf", "Infinity", "1e309")


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.fixture
def run(live_server: str) -> Cli:
    return Cli(live_server)


@pytest.fixture
def keys(api: Api) -> dict[str, str]:
    made = {"miner": api.key("miner", "m-1"), "client": api.key("client", "c-1")}
    deposit(api, "c-1", "50")
    return made


@pytest.fixture
def gpu(api: Api, keys: dict[str, str]) -> str:
    return api.register_gpu(keys["miner"], price_per_hour="1")


@pytest.mark.parametrize("bad", NOT_FINITE)
def test_hours_and_prices_refuse_non_finite_numbers(
    run: Cli, api: Api, keys: dict[str, str], gpu: str, bad: str
) -> None:
    client, miner = keys["client"], keys["miner"]
    cases = [
        (client, ["marketplace", "gpu", "book", gpu, "--hours", bad], "--hours"),
        (client, ["marketplace", "gpu", "book", gpu, "--hours", "1", "--max-price", bad], "--max"),
        (client, ["marketplace", "gpu", "quote", gpu, "--hours", bad], "--hours"),
        (client, ["bookings", "extend", "bkg_x", "--hours", bad], "--hours"),
        (client, ["client", "submit", "--hours", bad], "--hours"),
        (client, ["client", "submit", "--hours", "1", "--max-price", bad], "--max-price"),
        (client, ["marketplace", "bid", "--price", bad], "--price"),
        (client, ["marketplace", "bid", "--price", "1", "--hours", bad], "--hours"),
        (None, ["marketplace", "gpu", "list", "--price-max", bad], "--price-max"),
        (miner, ["marketplace", "gpu", "register", "--name", "X", "--price-per-hour", bad], "--p"),
        (miner, ["marketplace", "gpu", "update", gpu, "--price-per-hour", bad], "--price"),
        (ADMIN_KEY, ["admin", "deposit", "c-1", "--", bad], "AMOUNT"),
        (None, ["marketplace", "gpu", "details", gpu, "--watch", "--interval", bad], "--interval"),
    ]
    for key, args, option in cases:
        if bad == "1e309" and option in (
            "--max-price",
            "--max",
            "--price",
            "--price-max",
            "AMOUNT",
        ):
            continue  # an exact decimal that big is finite: the server judges it
        output = usage_error(run(key, *args), option)
        assert "finite" in output or "not a" in output, output

    assert [g["gpu_id"] for g in list_gpus(api)] == [gpu]
    assert list_gpus(api)[0]["price_per_hour"] == "1.000000"
    assert bookings(api, client) == [] and jobs(api, client) == [] and my_bids(api, client) == []
    assert balance(api, client) == ("50.000000", "0.000000")


def test_text_that_is_no_number_is_refused(run: Cli, keys: dict[str, str], gpu: str) -> None:
    client = keys["client"]
    usage_error(run(client, "marketplace", "gpu", "book", gpu, "--hours", "two"), "two")
    usage_error(run(client, "marketplace", "bid", "--price", "cheap"), "not a decimal")
    usage_error(run(ADMIN_KEY, "admin", "deposit", "c-1", "1,5"), "not a decimal")
    usage_error(run(None, "marketplace", "gpu", "list", "--limit", "nan"), "--limit")


def test_a_decimal_amount_is_sent_as_typed(run: Cli, api: Api, keys: dict[str, str]) -> None:
    body = ok_json(run(ADMIN_KEY, "admin", "deposit", "c-1", " 0.1 ", "-o", "json"))
    assert body["amount"] == "0.100000"
    assert balance(api, keys["client"])[0] == "50.100000"


def test_json_options_refuse_non_finite_numbers(
    run: Cli, api: Api, keys: dict[str, str], tmp_path: Path
) -> None:
    client, miner = keys["client"], keys["miner"]
    for payload in ('{"x": NaN}', '{"x": Infinity}', '{"x": -Infinity}', '{"x": 1e999}'):
        usage_error(run(client, "client", "submit", "--hours", "1", "--payload", payload))
    stored = tmp_path / "gpus.json"
    stored.write_text('[{"model": "RTX 4090", "memory_gb": 24, "price_per_hour": NaN}]')
    usage_error(run(miner, "miner", "register", "--gpus", str(stored)), "NaN")
    assert jobs(api, client) == []


def test_a_long_inline_json_payload_is_not_taken_for_a_file_name(
    run: Cli, api: Api, keys: dict[str, str], gpu: str
) -> None:
    payload = '{"prompt": "' + "x" * 5000 + '"}'
    body = ok_json(
        run(keys["client"], "client", "submit", "--hours", "1", "--payload", payload, "-o", "json")
    )
    assert [j["job_id"] for j in jobs(api, keys["client"])] == [body["job_id"]]


def test_the_miner_agents_timings_refuse_non_finite_numbers(run: Cli, keys: dict[str, str]) -> None:
    for option in ("--heartbeat-seconds", "--poll-wait", "--stop-grace", "--job-timeout"):
        usage_error(
            run(keys["miner"], "miner", "run", "--exec", "true", "--once", option, "nan"), option
        )
    usage_error(
        run(keys["miner"], "miner", "run", "--exec", "true", "--price-per-hour", "inf"), "finite"
    )
