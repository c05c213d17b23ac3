"""The ``aitbc`` CLI's review, moderation, pricing and quote commands against a live server
(``marketplace reviews|review|pricing``, ``marketplace gpu quote|book --quote-id``,
``admin reviews flagged|hide|restore``), plus the exact requests they send."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from fastapi import FastAPI

from aitbc.cli import config as cli_config
from aitbc.cli import http as cli_http
from aitbc.cli.http import Api as HttpApi
from aitbc.cli.main import cli
from tests.reviews.review_support import public_reviews
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import details
from tests.support.market import Market
from tests.support.responses import ok

Run = Callable[..., Result]


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cli_config, "DEFAULT_CONFIG_FILE", tmp_path / "absent" / "config.yaml")
    monkeypatch.delenv("AITBC_URL", raising=False)
    monkeypatch.delenv("AITBC_API_KEY", raising=False)


@pytest.fixture
def run(live_server: str) -> Run:
    def _run(key: str | None, *args: str, output: str = "json") -> Result:
        flags = ["--url", live_server, "--output", output]
        if key is not None:
            flags += ["--api-key", key]
        return CliRunner().invoke(cli, [*flags, *args])

    return _run


def _json(result: Result) -> Any:
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def _failed(result: Result, code: str) -> None:
    assert result.exit_code != 0, result.output
    assert code in result.output, result.output


@pytest.fixture
def gpu(market: Market) -> str:
    return market.gpu(name="RTX 4090", price_per_hour="0.5", ai_models=["llama2-7b"])


# --- reviews ------------------------------------------------------------------------------


def test_review_with_a_comment(run: Run, api: Api, market: Market, gpu: str) -> None:
    key = market.used("c-1", gpu)
    body = _json(run(key, "marketplace", "review", gpu, "--rating", "5", "--comment", "Solid"))
    assert body["rating"] == 5 and body["comment"] == "Solid"
    assert body["average_rating"] == "5.00" and body["review_count"] == 1
    assert public_reviews(api, gpu)["reviews"][0]["comment"] == "Solid"


def test_review_without_a_comment_stores_null(run: Run, api: Api, market: Market, gpu: str) -> None:
    key = market.used("c-1", gpu)
    body = _json(run(key, "marketplace", "review", gpu, "--rating", "3"))
    assert body["comment"] is None
    assert public_reviews(api, gpu)["reviews"][0]["comment"] is None


def test_review_refusals_exit_non_zero(run: Run, api: Api, market: Market, gpu: str) -> None:
    stranger = market.client("c-0")
    _failed(run(stranger, "marketplace", "review", gpu, "--rating", "4"), "review_not_verified")
    key = market.used("c-1", gpu)
    # Out of range: refused by the CLI itself.
    out_of_range = run(key, "marketplace", "review", gpu, "--rating", "6")
    assert out_of_range.exit_code == 2
    _json(run(key, "marketplace", "review", gpu, "--rating", "4"))
    _failed(run(key, "marketplace", "review", gpu, "--rating", "2"), "review_exists")
    _failed(run(None, "marketplace", "review", gpu, "--rating", "2"), "authentication_required")
    assert details(api, gpu)["review_count"] == 1


def test_reviews_lists_the_gpus_reviews(run: Run, market: Market, gpu: str) -> None:
    market.reviewed("c-1", gpu, 5, "great")
    market.reviewed("c-2", gpu, 2, "slow")
    body = _json(run(None, "marketplace", "reviews", gpu))
    assert body["gpu_id"] == gpu
    assert body["average_rating"] == "3.50" and body["review_count"] == 2
    assert body["distribution"] == {"1": 0, "2": 1, "3": 0, "4": 0, "5": 1}
    assert [r["comment"] for r in body["reviews"]] == ["slow", "great"]
    limited = _json(run(None, "marketplace", "reviews", gpu, "--limit", "1"))
    assert [r["comment"] for r in limited["reviews"]] == ["slow"]
    assert limited["review_count"] == 2

    table = run(None, "marketplace", "reviews", gpu, output="table")
    assert table.exit_code == 0, table.output
    assert "average_rating" in table.output and "3.50" in table.output
    assert "slow" in table.output and "great" in table.output


def test_reviews_of_an_unknown_gpu_fails(run: Run) -> None:
    _failed(run(None, "marketplace", "reviews", "gpu_nope"), "gpu_not_found")


def test_admin_reviews_flagged_hide_restore(run: Run, api: Api, market: Market, gpu: str) -> None:
    rid = market.reviewed("c-1", gpu, 1, "buy tokens at example.com")["review_id"]
    market.reviewed("c-2", gpu, 5)
    flag = api.call(
        "POST",
        f"/v1/marketplace/reviews/{rid}/flag",
        market.client("c-3"),
        json={"reason": "spam"},
    )
    assert flag.status_code == 201, flag.text

    [item] = _json(run(ADMIN_KEY, "admin", "reviews", "flagged"))
    assert item["review_id"] == rid and item["flag_reasons"] == ["spam"]
    assert item["hidden"] is False

    hidden = _json(run(ADMIN_KEY, "admin", "reviews", "hide", rid))
    assert hidden["hidden"] is True
    assert public_reviews(api, gpu)["average_rating"] == "5.00"
    assert _json(run(ADMIN_KEY, "admin", "reviews", "flagged")) == []
    [again] = _json(run(ADMIN_KEY, "admin", "reviews", "flagged", "--include-hidden"))
    assert again["review_id"] == rid and again["hidden"] is True

    restored = _json(run(ADMIN_KEY, "admin", "reviews", "restore", rid))
    assert restored["hidden"] is False
    assert public_reviews(api, gpu)["average_rating"] == "3.00"

    table = run(ADMIN_KEY, "admin", "reviews", "flagged", output="table")
    assert table.exit_code == 0 and rid in table.output and "flag_reasons" in table.output

    client = market.clients["c-2"]
    _failed(run(client, "admin", "reviews", "hide", rid), "wrong_role")
    _failed(run(client, "admin", "reviews", "flagged"), "wrong_role")
    _failed(run(ADMIN_KEY, "admin", "reviews", "restore", "rev_nope"), "review_not_found")


# --- pricing ------------------------------------------------------------------------------


def test_pricing_of_a_gpu_model_and_an_ai_model(run: Run, market: Market, gpu: str) -> None:
    market.gpu(name="rtx4090", price_per_hour="0.9")
    body = _json(run(None, "marketplace", "pricing", "RTX 4090"))
    assert body["model"] == "RTX 4090" and body["matched"] == "gpu_model"
    assert body["gpus_total"] == 2 and body["price_average"] == "0.700000"
    # Both GPUs are free: a booking pays 0.5 or 0.9, whatever the market price says.
    assert body["booking_price_range"] == {"low": "0.500000", "high": "0.900000"}
    assert _json(run(None, "marketplace", "pricing", "rtx4090"))["matched"] == "gpu_model"
    llama = _json(run(None, "marketplace", "pricing", "llama2-7b"))
    assert llama["matched"] == "ai_model" and llama["gpus_total"] == 1


def test_pricing_of_an_ai_model_named_with_a_slash(run: Run, market: Market) -> None:
    market.gpu(name="H100", price_per_hour="2.0", ai_models=["meta-llama/Llama-2-7b"])
    body = _json(run(None, "marketplace", "pricing", "meta-llama/Llama-2-7b"))
    assert (body["matched"], body["gpus_total"]) == ("ai_model", 1)
    assert _json(run(None, "marketplace", "pricing", "meta-llama/Llama-2-7b", "--history")) == []


def test_pricing_json_output_is_pure_json(live_server: str, gpu: str) -> None:
    result = CliRunner().invoke(
        cli, ["--url", live_server, "--output", "json", "marketplace", "pricing", "RTX 4090"]
    )
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["matched"] == "gpu_model"
    assert result.stdout.lstrip().startswith("{")


def test_pricing_table_output(run: Run, gpu: str) -> None:
    result = run(None, "marketplace", "pricing", "RTX 4090", output="table")
    assert result.exit_code == 0, result.output
    assert "matched" in result.output and "gpu_model" in result.output
    assert "current_price" in result.output
    body = _json(run(None, "marketplace", "pricing", "RTX 4090"))
    assert f"Market price: {body['current_price']} per hour" in result.output
    low, high = body["booking_price_range"]["low"], body["booking_price_range"]["high"]
    assert f"A booking now: {low} to {high} per hour (each GPU's own price)" in result.output


def test_pricing_of_an_unknown_model_fails(run: Run, gpu: str) -> None:
    _failed(run(None, "marketplace", "pricing", "H100"), "model_not_found")


def test_pricing_history_draws_the_series(
    run: Run, api: Api, app: FastAPI, market: Market, gpu: str
) -> None:
    empty = run(None, "marketplace", "pricing", "RTX 4090", "--history", output="table")
    assert empty.exit_code == 0, empty.output
    assert "(no price history yet)" in empty.output

    for _ in range(5):  # an idle market: 0.9, 0.8, 0.7, 0.6, 0.5 each an hour apart
        app.state.sweeper.run_once()
        api.clock.advance(hours=1)
    drawn = run(None, "marketplace", "pricing", "RTX 4090", "--history", output="table")
    assert drawn.exit_code == 0, drawn.output
    assert "matched" in drawn.output  # the market figures first
    assert "current price," in drawn.output
    assert "low 0.250000, high 0.450000, last 0.250000" in drawn.output
    chart = drawn.output[drawn.output.index("current price per hour") :].splitlines()
    top = next(i for i, li in enumerate(chart) if li.lstrip().startswith("┌"))
    bottom = next(i for i, li in enumerate(chart) if li.lstrip().startswith("└"))
    plotted = "".join(chart[top + 1 : bottom])
    assert bottom - top > 5 and ":" in chart[bottom + 1]  # hours along the bottom
    assert "0.45" in plotted and "0.25" in plotted  # the y axis spans the series
    assert "\x1b[" not in drawn.output  # no colour codes when stdout is not a terminal

    series = _json(run(None, "marketplace", "pricing", "RTX 4090", "--history"))
    assert isinstance(series, list) and len(series) == 5
    assert [p["current_price"] for p in series] == [
        "0.450000",
        "0.400000",
        "0.350000",
        "0.300000",
        "0.250000",
    ]
    raw = _json(run(None, "marketplace", "pricing", "rtx4090", "--history", "--bucket", "raw"))
    assert raw == series


# --- quotes -------------------------------------------------------------------------------


def test_quote_then_book_with_the_quote(run: Run, api: Api, market: Market, gpu: str) -> None:
    key = market.client("c-1")
    promised = _json(run(key, "marketplace", "gpu", "quote", gpu, "--hours", "2"))
    assert promised["price_per_hour"] == "0.500000" and promised["total_cost"] == "1.000000"
    ok(
        api.call(
            "PATCH", f"/v1/marketplace/gpu/{gpu}", market.miner_key, json={"price_per_hour": "4"}
        )
    )
    market.beat()
    booked = _json(
        run(
            key,
            "marketplace",
            "gpu",
            "book",
            gpu,
            "--hours",
            "1",
            "--quote-id",
            promised["quote_id"],
        )
    )
    assert booked["price_per_hour"] == "0.500000" and booked["total_cost"] == "0.500000"
    api.clock.advance(seconds=10)
    _json(run(key, "marketplace", "gpu", "release", gpu))
    _failed(
        run(
            key,
            "marketplace",
            "gpu",
            "book",
            gpu,
            "--hours",
            "1",
            "--quote-id",
            promised["quote_id"],
        ),
        "quote_used",
    )


def test_expired_quote_fails_the_booking(run: Run, api: Api, market: Market, gpu: str) -> None:
    key = market.client("c-1")
    promised = _json(run(key, "marketplace", "gpu", "quote", gpu, "--hours", "1"))
    api.clock.advance(seconds=300)
    market.beat()
    args = ("marketplace", "gpu", "book", gpu, "--hours", "1", "--quote-id", promised["quote_id"])
    _failed(run(key, *args), "quote_expired")
    assert details(api, gpu)["status"] == "available"


def test_quote_table_output(run: Run, market: Market, gpu: str) -> None:
    result = run(
        market.client("c-1"), "marketplace", "gpu", "quote", gpu, "--hours", "2", output="table"
    )
    assert result.exit_code == 0, result.output
    assert "quote_id" in result.output and "1.000000" in result.output


# --- the requests sent --------------------------------------------------------------------


class Recorder:
    def __init__(self, status: int, body: Any) -> None:
        self.status, self.body = status, body
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return httpx.Response(self.status, json=self.body)


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[Result, httpx.Request]]:
    def _invoke(status: int, body: Any, *args: str) -> tuple[Result, httpx.Request]:
        recorder = Recorder(status, body)
        transport = httpx.MockTransport(recorder)
        monkeypatch.setattr(cli_http, "Api", lambda config: HttpApi(config, transport=transport))
        result = CliRunner().invoke(cli, ["--url", "http://coordinator.test", *args])
        assert result.exit_code == 0, result.output
        [request] = recorder.requests
        return result, request

    return _invoke


def test_wire_pricing_url_encodes_the_model(wire: Any) -> None:
    _, request = wire(200, {"model": "RTX 4090"}, "marketplace", "pricing", "RTX 4090")
    assert request.method == "GET"
    assert request.url.raw_path == b"/v1/marketplace/pricing/RTX%204090"
    _, request = wire(200, {}, "marketplace", "pricing", "a/b")
    assert request.url.raw_path == b"/v1/marketplace/pricing/a%2Fb"


def test_wire_reviews_and_review(wire: Any) -> None:
    _, request = wire(200, {"reviews": []}, "marketplace", "reviews", "gpu_1")
    assert request.method == "GET"
    assert request.url.path == "/v1/marketplace/gpu/gpu_1/reviews"
    assert dict(request.url.params) == {"limit": "10"}

    _, request = wire(
        201, {"review_id": "rev_1"}, "marketplace", "review", "gpu_1", "--rating", "4"
    )
    assert request.method == "POST" and request.url.path == "/v1/marketplace/gpu/gpu_1/reviews"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {"rating": 4, "comment": None}

    _, request = wire(
        201,
        {"review_id": "rev_1"},
        "marketplace",
        "review",
        "gpu_1",
        "--rating",
        "5",
        "--comment",
        "ok",
    )
    assert json.loads(request.content) == {"rating": 5, "comment": "ok"}


def test_wire_quote_and_book_with_quote(wire: Any) -> None:
    _, request = wire(
        201, {"quote_id": "quo_1"}, "marketplace", "gpu", "quote", "gpu_1", "--hours", "2"
    )
    assert request.method == "POST" and request.url.path == "/v1/marketplace/gpu/gpu_1/quote"
    assert json.loads(request.content) == {"duration_hours": 2.0}
    _, request = wire(
        201,
        {"booking_id": "bkg_1"},
        "marketplace",
        "gpu",
        "book",
        "gpu_1",
        "--hours",
        "1",
        "--quote-id",
        "quo_1",
    )
    assert json.loads(request.content) == {
        "gpu_id": "gpu_1",
        "duration_hours": 1.0,
        "quote_id": "quo_1",
    }
