"""The marketplace commands that reach the rest of the API, through the CLI against a live
server: gpu list sorting, filters and paging, gpu update and delist, cancel-bid, order,
edit-review, flag-review (and the hint after a second review), rating-history, and
``admin deposit --create``."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from aitbc.cli import http as cli_http
from aitbc.cli.http import Api as HttpApi
from aitbc.cli.http import in_cli_words
from aitbc.cli.main import cli
from tests.cli.cli_support import Cli, api_error, isolate, ok_json, ok_text, usage_error
from tests.jobs.slice_support import bid, bid_of, orders
from tests.reviews.review_support import public_reviews
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import details, list_gpus, register_miner
from tests.support.market import Market


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    isolate(monkeypatch, tmp_path)


@pytest.fixture
def run(live_server: str) -> Cli:
    return Cli(live_server)


@pytest.fixture
def three(api: Api, market: Market) -> dict[str, str]:
    """Three GPUs of one miner in eu-west: cheap and small, dear and big, middling."""
    register_miner(
        api,
        market.miner_key,
        [
            {"model": "RTX 3090", "memory_gb": 24, "price_per_hour": "0.3"},
            {"model": "A100", "memory_gb": 80, "price_per_hour": "2"},
            {"model": "RTX 4090", "memory_gb": 24, "price_per_hour": "0.5"},
        ],
        region="eu-west",
    )
    return {g["model"]: g["gpu_id"] for g in list_gpus(api)}


# --- gpu list -----------------------------------------------------------------------------


def test_gpu_list_sorts(run: Cli, three: dict[str, str]) -> None:
    by_price = [g["model"] for g in run.json(None, "marketplace", "gpu", "list")]
    by_memory = [
        g["model"] for g in run.json(None, "marketplace", "gpu", "list", "--sort", "memory")
    ]
    newest = [g["model"] for g in run.json(None, "marketplace", "gpu", "list", "--sort", "newest")]
    assert by_price == ["RTX 3090", "RTX 4090", "A100"]
    assert by_memory[0] == "A100"
    assert set(newest) == set(three) and len(newest) == 3
    for sort in ("rating", "uptime"):
        assert len(run.json(None, "marketplace", "gpu", "list", "--sort", sort)) == 3
    usage_error(run(None, "marketplace", "gpu", "list", "--sort", "cheapest"), "--sort")


def test_gpu_list_filters_by_region_status_and_ai_model(
    run: Cli, api: Api, market: Market, three: dict[str, str]
) -> None:
    elsewhere = api.key("miner", "m-2")
    other = api.register_gpu(elsewhere, name="H100", memory_gb=80, price_per_hour="3")
    assert run.json(None, "marketplace", "gpu", "list", "--region", "us-east") == []
    in_eu = run.json(None, "marketplace", "gpu", "list", "--region", "EU-WEST")
    assert {g["gpu_id"] for g in in_eu} == set(three.values())

    run.json(elsewhere, "marketplace", "gpu", "delist", other)
    delisted = run.json(None, "marketplace", "gpu", "list", "--status", "delisted")
    assert [g["gpu_id"] for g in delisted] == [other]
    available = run.json(None, "marketplace", "gpu", "list", "--status", "available")
    assert {g["gpu_id"] for g in available} == set(three.values())
    mine = run.json(None, "marketplace", "gpu", "list", "--miner-id", "m-1", "--limit", "10")
    assert len(mine) == 3


def test_gpu_list_pages_by_cursor_offset_or_all(run: Cli, three: dict[str, str]) -> None:
    first = run(None, "marketplace", "gpu", "list", "--limit", "2", "-o", "json")
    assert first.exit_code == 0, first.output
    assert [g["model"] for g in ok_json(first)] == ["RTX 3090", "RTX 4090"]
    assert first.stderr.startswith("more: --cursor ")
    cursor = first.stderr.split("--cursor ", 1)[1].split()[0]
    by_memory = run(None, "marketplace", "gpu", "list", "--limit", "1", "--sort", "memory")
    assert by_memory.stderr.startswith("more: --sort memory --cursor ")  # what the cursor needs

    rest = run(None, "marketplace", "gpu", "list", "--limit", "2", "--cursor", cursor, "-o", "json")
    assert [g["model"] for g in ok_json(rest)] == ["A100"] and rest.stderr == ""

    skipped = run.json(None, "marketplace", "gpu", "list", "--offset", "2")
    assert [g["model"] for g in skipped] == ["A100"]
    every = run.json(None, "marketplace", "gpu", "list", "--limit", "1", "--all")
    assert [g["model"] for g in every] == ["RTX 3090", "RTX 4090", "A100"]

    ids = ok_text(run(None, "marketplace", "gpu", "list", "--limit", "1", "--all", "-q")).split()
    assert ids == [three["RTX 3090"], three["RTX 4090"], three["A100"]]
    both = run(None, "marketplace", "gpu", "list", "--offset", "1", "--cursor", cursor)
    usage_error(both, "--cursor or --offset")


# --- gpu update, delist, relist -----------------------------------------------------------


def test_gpu_update_changes_price_mode_and_description(
    run: Cli, api: Api, market: Market, three: dict[str, str]
) -> None:
    gpu = three["A100"]
    body = run.json(
        market.miner_key, "marketplace", "gpu", "update", gpu, "--price-per-hour", "1.25"
    )
    assert body["gpu_id"] == gpu and body["base_price_per_hour"] == "1.250000"
    assert details(api, gpu)["price_per_hour"] == "1.250000"

    body = run.json(
        market.miner_key,
        "marketplace",
        "gpu",
        "update",
        gpu,
        "--pricing-mode",
        "dynamic",
        "--description",
        "fast",
    )
    assert (body["pricing_mode"], body["description"]) == ("dynamic", "fast")
    assert details(api, gpu)["pricing_mode"] == "dynamic"
    # Under dynamic pricing the provider is told why the GPU is listed at its price.
    said = run(market.miner_key, "marketplace", "gpu", "update", gpu, "--price-per-hour", "1.25")
    shown = details(api, gpu)
    assert said.exit_code == 0, said.output
    assert (
        f"listed at {shown['price_per_hour']} per hour: your base 1.250000 x the A100 demand "
        "multiplier"
    ) in said.stderr
    assert "online GPUs booked, against a 70 % target" in said.stderr
    assert "between 0.5 and 3" in said.stderr
    looked = run(None, "marketplace", "gpu", "details", gpu)
    assert "your base 1.250000" in looked.stderr
    fixed = run(market.miner_key, "marketplace", "gpu", "update", gpu, "--pricing-mode", "fixed")
    assert fixed.exit_code == 0 and "listed at" not in fixed.stderr

    usage_error(run(market.miner_key, "marketplace", "gpu", "update", gpu), "nothing to change")
    stranger = api.key("miner", "m-2")
    api_error(
        run(stranger, "marketplace", "gpu", "update", gpu, "--price-per-hour", "9"), "HTTP", 403
    )
    assert details(api, gpu)["base_price_per_hour"] == "1.250000"


def test_gpu_delist(run: Cli, api: Api, market: Market, three: dict[str, str]) -> None:
    booked, free = three["RTX 3090"], three["A100"]
    market.book("c-1", booked)
    api_error(run(market.miner_key, "marketplace", "gpu", "delist", booked), "HTTP", 409)
    assert details(api, booked)["status"] == "booked"

    text = ok_text(run(market.miner_key, "marketplace", "gpu", "delist", free))
    assert "delisted" in text
    assert details(api, free)["status"] == "delisted"
    assert free not in {g["gpu_id"] for g in run.json(None, "marketplace", "gpu", "list")}

    relisted = run.json(market.miner_key, "marketplace", "gpu", "relist", free)
    assert relisted["status"] == "available"
    assert free in {g["gpu_id"] for g in run.json(None, "marketplace", "gpu", "list")}


# --- bids, orders -------------------------------------------------------------------------


def test_cancel_bid(run: Cli, api: Api, market: Market, three: dict[str, str]) -> None:
    key = market.client("c-1")
    placed = bid(api, key, capacity=1, price="0.1", duration_hours=1)  # below every price
    assert bid_of(api, key, placed["id"])["status"] == "open"

    body = run.json(key, "marketplace", "cancel-bid", placed["id"])
    assert body["id"] == placed["id"] and body["status"] == "cancelled"
    assert bid_of(api, key, placed["id"])["status"] == "cancelled"
    api_error(run(key, "marketplace", "cancel-bid", placed["id"]), "HTTP", 409)
    api_error(run(key, "marketplace", "cancel-bid", "bid_nope"), "not_found", 404)


def test_order_shows_one_order_with_its_history(
    run: Cli, api: Api, market: Market, three: dict[str, str]
) -> None:
    key = market.used("c-1", three["RTX 4090"])
    [order] = orders(api, key)

    body = run.json(key, "marketplace", "order", order["order_id"])
    assert body["order_id"] == order["order_id"] and body["status"] == "released"
    assert [e["status"] for e in body["history"]][-1] == "released"

    text = ok_text(run(key, "marketplace", "order", order["order_id"]))
    lines = text.splitlines()
    assert lines[0].split() == ["order_id", order["order_id"]]
    history = lines.index("history:")
    assert lines[history + 1].split() == ["at", "status", "note"]
    assert lines[-1].split()[-1] == "released"
    other = market.client("c-2")
    api_error(run(other, "marketplace", "order", order["order_id"]), "not_found", 404)


# --- reviews ------------------------------------------------------------------------------


def test_edit_review(run: Cli, api: Api, market: Market, three: dict[str, str]) -> None:
    gpu = three["RTX 3090"]
    saved = market.reviewed("c-1", gpu, 2, "slow")
    key = market.clients["c-1"]

    body = run.json(
        key,
        "marketplace",
        "edit-review",
        saved["review_id"],
        "--rating",
        "5",
        "--comment",
        "fine now",
    )
    assert (body["rating"], body["comment"]) == (5, "fine now")
    [stored] = public_reviews(api, gpu)["reviews"]
    assert (stored["rating"], stored["comment"]) == (5, "fine now")
    assert public_reviews(api, gpu)["average_rating"] == "5.00"

    other = market.client("c-2")
    api_error(
        run(other, "marketplace", "edit-review", saved["review_id"], "--rating", "1"), "HTTP", 403
    )
    usage_error(
        run(key, "marketplace", "edit-review", saved["review_id"], "--rating", "6"), "--rating"
    )


def test_a_second_review_says_how_to_edit_the_first(
    run: Cli, market: Market, three: dict[str, str]
) -> None:
    gpu = three["RTX 3090"]
    saved = market.reviewed("c-1", gpu, 3)
    key = market.clients["c-1"]

    output = api_error(
        run(key, "marketplace", "review", gpu, "--rating", "4"), "review_exists", 409
    )
    assert f"aitbc marketplace edit-review {saved['review_id']} --rating N" in output


def test_flag_review(run: Cli, api: Api, market: Market, three: dict[str, str]) -> None:
    gpu = three["RTX 3090"]
    saved = market.reviewed("c-1", gpu, 1, "buy tokens at example.com")
    flagger = market.client("c-2")

    flag = ("marketplace", "flag-review", saved["review_id"], "--reason", "spam", "-o", "json")
    flagging = run(flagger, *flag)
    assert f"flagged review {saved['review_id']} for moderation" in flagging.stderr
    assert ok_json(flagging)["review_id"] == saved["review_id"]
    own = run(
        market.clients["c-1"], "marketplace", "flag-review", saved["review_id"], "--reason", "x"
    )
    assert "edit-review" in api_error(own, "own_review", 409)
    flagged = api.call("GET", "/v1/admin/reviews/flagged", ADMIN_KEY).json()
    assert [(f["review_id"], f["flag_reasons"]) for f in flagged] == [
        (saved["review_id"], ["spam"])
    ]
    api_error(
        run(flagger, "marketplace", "flag-review", saved["review_id"], "--reason", "spam"),
        "HTTP",
        409,
    )
    usage_error(run(flagger, "marketplace", "flag-review", saved["review_id"]), "--reason")


def test_rating_history_as_json_and_as_a_chart(
    run: Cli, api: Api, market: Market, three: dict[str, str]
) -> None:
    gpu = three["RTX 3090"]
    assert run.json(None, "marketplace", "rating-history", gpu) == []
    empty = ok_text(run(None, "marketplace", "rating-history", gpu))
    assert empty.strip() == "(no ratings yet)"

    market.reviewed("c-1", gpu, 2)
    api.clock.advance(days=1)
    market.reviewed("c-2", gpu, 4)
    api.clock.advance(days=1)
    market.reviewed("c-3", gpu, 5)

    points = run.json(None, "marketplace", "rating-history", gpu, "--bucket", "day")
    assert [p["average_rating"] for p in points] == ["2.00", "3.00", "3.67"]
    weekly = run.json(None, "marketplace", "rating-history", gpu, "--bucket", "week")
    assert sum(p["new_reviews"] for p in weekly) == 3

    text = ok_text(run(None, "marketplace", "rating-history", gpu))
    assert "average rating, " in text and "from 2.00 to 3.67 over 3 reviews" in text
    assert "┌" in text and "└" in text
    lines = text.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("period_start"))
    assert [line.split()[2] for line in lines[header + 2 :]] == ["2.00", "3.00", "3.67"]
    api_error(run(None, "marketplace", "rating-history", "gpu_nope"), "not_found", 404)


# --- admin deposit --create ---------------------------------------------------------------


def test_deposit_with_create_opens_an_account(run: Cli, api: Api) -> None:
    body = run.json(ADMIN_KEY, "admin", "deposit", "newcomer", "5", "--create")
    assert body["account"]["owner_id"] == "newcomer" and body["account"]["balance"] == "5.000000"
    key = api.key("client", "newcomer")
    assert api.call("GET", "/v1/accounts/me", key).json()["balance"] == "5.000000"


def test_deposit_sends_create_true_only_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        account = {"owner_id": "o", "currency": "AITBC", "balance": "1", "escrow": "0"}
        return httpx.Response(201, json={"transaction_id": "t", "amount": "1", "account": account})

    transport = httpx.MockTransport(answer)
    monkeypatch.setattr(cli_http, "Api", lambda config: HttpApi(config, transport=transport))
    for extra in ([], ["--create"]):
        result = CliRunner().invoke(cli, ["--api-key", "k", "admin", "deposit", "o", "1", *extra])
        assert result.exit_code == 0, result.output
    assert [dict(r.url.params) for r in sent] == [{}, {"create": "true"}]
    assert all(r.url.path == "/v1/admin/accounts/o/deposit" for r in sent)


def test_errors_speak_the_clis_words(run: Cli) -> None:
    unknown = run(ADMIN_KEY, "admin", "deposit", "nobody-yet", "5")
    said = api_error(unknown, "owner_not_found", 404)
    assert "add --create" in said and "create=true" not in said
    too_big = run(None, "marketplace", "gpu", "list", "--memory-min", "99999")
    said = api_error(too_big, "validation_error", 422)
    assert "--memory-min" in said and "query." not in said
    assert in_cli_words("booked until 2030-01-01T00:00:00.123456Z") == (
        "booked until 2030-01-01T00:00:00Z"
    )
