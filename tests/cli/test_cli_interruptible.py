"""The market in the CLI: ``gpu book --interruptible --bid``, ``bookings change-bid``,
``marketplace book-best [--explain]``, ``gpu update --interruptible/--min-bid``; the seed's
``gpu book`` still books on demand."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.cli_support import Cli, api_error, isolate, ok_text, usage_error
from tests.support.api import Api
from tests.support.market import Market


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.fixture
def run(live_server: str) -> Cli:
    return Cli(live_server)


@pytest.fixture
def shop(market: Market) -> dict[str, str]:
    gpu = market.gpu(name="RTX 4090", price_per_hour="1")
    big = market.gpu(name="A100", memory_gb=80, price_per_hour="3")
    market.beat()
    return {
        "gpu": gpu,
        "big": big,
        "client": market.client("c1", "50"),
        "other": market.client("c2", "50"),
        "miner": market.miner_key,
    }


def test_the_seed_book_command_books_on_demand(run: Cli, shop: dict[str, str]) -> None:
    made = run.json(shop["client"], "marketplace", "gpu", "book", shop["gpu"], "--hours", "1")
    assert (made["rental_type"], made["bid_per_hour"], made["price_per_hour"]) == (
        "on_demand",
        None,
        "1.000000",
    )


def test_book_interruptibly_raise_the_bid_and_be_outbid(
    run: Cli, api: Api, shop: dict[str, str]
) -> None:
    args = ("marketplace", "gpu", "book", shop["gpu"], "--hours", "1")
    made = run.json(shop["client"], *args, "--interruptible", "--bid", "0.4")
    assert (made["rental_type"], made["bid_per_hour"]) == ("interruptible", "0.400000")
    raised = run.json(shop["client"], "bookings", "change-bid", made["booking_id"], "--bid", "0.5")
    assert raised["bid_per_hour"] == "0.500000"
    refused = run(shop["other"], *args, "--interruptible", "--bid", "0.505")
    assert "0.510000" in api_error(refused, "bid_too_low", 409)
    run.json(shop["other"], *args, "--interruptible", "--bid", "0.6")
    shown = run.json(shop["client"], "bookings", "show", made["booking_id"])
    assert shown["status"] == "preempted"
    table = ok_text(run(shop["client"], "marketplace", "order", made["order_id"]))
    assert "preempted" in table and "Outbid by a bid of 0.600000" in table


def test_interruptible_and_bid_go_together(run: Cli, shop: dict[str, str]) -> None:
    args = ("marketplace", "gpu", "book", shop["gpu"], "--hours", "1")
    usage_error(run(shop["client"], *args, "--interruptible"), "--bid")
    usage_error(run(shop["client"], *args, "--bid", "0.4"), "--interruptible")


def test_book_best_and_its_explanation(run: Cli, shop: dict[str, str]) -> None:
    explained = run.json(
        shop["client"], "marketplace", "book-best", "--hours", "1", "--memory-min", "48",
        "--explain",
    )  # fmt: skip
    assert explained["chosen"] == shop["big"]
    table = ok_text(
        run(shop["client"], "marketplace", "book-best", "--hours", "1", "--model", "4090",
            "--explain")
    )  # fmt: skip
    assert "chosen" in table and "excluded" in table and "model: not 4090" in table
    made = run.json(shop["client"], "marketplace", "book-best", "--hours", "1", "--model", "a100")
    assert made["gpu_id"] == shop["big"]
    refused = run(
        shop["client"], "marketplace", "book-best", "--hours", "1", "--model", "4090",
        "--max-price", "0.5",
    )  # fmt: skip
    assert "max_price_per_hour" in api_error(refused, "no_gpu_matches", 409)


def test_a_provider_sets_interruptible_rentals_and_the_least_bid(
    run: Cli, shop: dict[str, str]
) -> None:
    update = ("marketplace", "gpu", "update", shop["gpu"])
    changed = run.json(shop["miner"], *update, "--min-bid", "0.7")
    assert changed["min_bid_per_hour"] == "0.700000"
    details = run.json(shop["client"], "marketplace", "gpu", "details", shop["gpu"])
    assert details["market"]["lowest_winning_bid"] == "0.700000"
    assert run.json(shop["miner"], *update, "--min-bid", "default")["min_bid_per_hour"] is None
    assert run.json(shop["miner"], *update, "--no-interruptible")["interruptible"] is False
    refused = run(
        shop["client"], "marketplace", "gpu", "book", shop["gpu"], "--hours", "1",
        "--interruptible", "--bid", "0.5",
    )  # fmt: skip
    api_error(refused, "interruptible_not_allowed", 409)
    usage_error(run(shop["miner"], *update, "--min-bid", "cheap"), "cheap")


def test_gpu_list_by_bid_shows_what_wins_each(run: Cli, api: Api, shop: dict[str, str]) -> None:
    book = ("marketplace", "gpu", "book", shop["gpu"], "--hours", "1")
    run.json(shop["client"], *book, "--interruptible", "--bid", "0.4")
    listed = run.json(shop["client"], "marketplace", "gpu", "list", "--sort", "bid")
    assert [(g["gpu_id"], g["lowest_winning_bid"]) for g in listed] == [
        (shop["gpu"], "0.410000"),
        (shop["big"], "0.900000"),
    ]
    table = ok_text(run(shop["client"], "marketplace", "gpu", "list", "--bid-max", "0.5"))
    assert "lowest_winning_bid" in table and "0.410000" in table and shop["big"] not in table


def test_client_submit_runs_a_job_interruptibly_at_a_bid(run: Cli, shop: dict[str, str]) -> None:
    made = run.json(
        shop["client"], "client", "submit", "--hours", "1", "--interruptible", "--bid", "0.4"
    )
    assert (made["rental_type"], made["bid_per_hour"], made["gpu_id"]) == (
        "interruptible",
        "0.400000",
        shop["gpu"],
    )
    usage_error(
        run(shop["client"], "client", "submit", "--hours", "1", "--bid", "0.4"), "--interruptible"
    )


def test_gpu_list_by_clearing_price_shows_what_each_last_cleared_at(
    run: Cli, shop: dict[str, str]
) -> None:
    book = ("marketplace", "gpu", "book", shop["gpu"], "--hours", "1")
    run.json(shop["client"], *book, "--interruptible", "--bid", "0.4")
    listed = run.json(shop["client"], "marketplace", "gpu", "list", "--sort", "cleared")
    assert [(g["gpu_id"], g["last_clearing_price"]) for g in listed] == [
        (shop["gpu"], "0.400000"),
        (shop["big"], None),
    ]
    table = ok_text(run(shop["client"], "marketplace", "gpu", "list", "--cleared-max", "0.5"))
    assert "last_clearing_price" in table and "0.400000" in table and shop["big"] not in table


def test_book_a_gang_show_extend_and_release_it(run: Cli, market: Market) -> None:
    for price in ("1", "1.2", "5"):
        market.gpu(name="RTX 4090", price_per_hour=price, region="eu")
    market.beat()
    client = market.client("c1", "50")
    args = ("marketplace", "book-best", "--hours", "1", "--model", "4090", "--count", "2")
    shown = run.json(client, *args, "--same-miner", "--explain")
    assert len(shown["chosen_gang"]) == 2
    made = run.json(client, *args, "--same-region")
    assert (made["size"], made["placement"], made["total_cost"]) == (2, "same_region", "2.200000")
    assert [line["gang_id"] for line in made["lines"]] == [made["gang_id"]] * 2
    table = ok_text(run(client, "bookings", "gang", "show", made["gang_id"]))
    assert made["gang_id"] in table and made["lines"][1]["booking_id"] in table
    longer = run.json(client, "bookings", "gang", "extend", made["gang_id"], "--hours", "1")
    assert longer["total_cost"] == "4.400000"
    # one GPU is left: no gang of three
    refused = run(client, *args, "--count", "3", "--same-miner")
    assert "no 3 of them on one miner" in api_error(refused, "no_gang_matches", 409)
    ended = run.json(client, "bookings", "gang", "release", made["gang_id"])
    assert ended["status"] == "cancelled"  # released before the clock moved: nothing used
    assert {line["status"] for line in ended["lines"]} == {ended["status"]}
