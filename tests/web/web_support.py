"""Shortcuts for the web tests: a market of GPUs made through the API, and the browser they
are clicked through in.

The browser is Debian's chromium (``AITBC_CHROMIUM`` to use another), driven by Playwright
without any browser download. Where it cannot be had the browser tests skip with the reason,
except under CI, where they fail: ``scripts/test`` installs it there."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import pytest

from aitbc.kit.clock import ManualClock
from tests.support.api import Api
from tests.support.gpus import register_miner
from tests.support.market import Market, deposit, heartbeat

CHROMIUM = os.environ.get("AITBC_CHROMIUM", "/usr/bin/chromium")


@pytest.fixture
def clock() -> ManualClock:
    """The server's clock starts at the real time, so the browser's countdowns (which follow
    the server's Date header) read as they would in use."""
    return ManualClock(datetime.now(UTC).replace(microsecond=0))


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason}; CI needs the browser tests to run")
    pytest.skip(reason)


def playwright_expect() -> Any:
    """Playwright's ``expect``; without Playwright the calling module skips (under CI its
    collection fails)."""
    try:
        from playwright.sync_api import expect
    except ImportError:
        if os.environ.get("CI") == "true":
            raise
        pytest.skip(
            "Playwright is not installed (pip install -e '.[test]')", allow_module_level=True
        )
    # A shared machine can be slow to paint: wait as long as page actions do.
    expect.set_options(timeout=15_000)
    return expect


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the whole module; each test opens its own context."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("Playwright is not installed (pip install -e '.[test]')")
    if not Path(CHROMIUM).exists():
        _unavailable(
            f"no Chromium at {CHROMIUM} (scripts/test installs it: apt-get install -y chromium)"
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    yield context.new_page()
    context.close()


@dataclass(frozen=True)
class WebMarket:
    miner: str
    other_miner: str
    gpu_4090: str
    gpu_a100: str
    gpu_3090: str


def make_market(api: Api) -> WebMarket:
    """Three GPUs of two miners, online, with heartbeat figures."""
    shop = Market(api, miner_id="miner-eu")
    miner, other = shop.miner_key, shop.miner("miner-us")
    eu = [
        {"model": "RTX 4090", "memory_gb": 24, "price_per_hour": "0.5", "ai_models": ["sdxl"]},
        {"model": "RTX 3090", "memory_gb": 24, "price_per_hour": "0.3"},
    ]
    us = [{"model": "A100", "memory_gb": 80, "price_per_hour": "1.9"}]
    ids = []
    for key, gpus, region in ((miner, eu, "eu-west"), (other, us, "us-east")):
        refs = register_miner(api, key, gpus, region=region)["gpus"]
        ids += [ref["gpu_id"] for ref in refs]
        figures = [
            {"slot": ref["slot"], "utilization_pct": 40, "temperature_c": 61} for ref in refs
        ]
        heartbeat(api, key, gpus=figures)
    return WebMarket(
        miner=miner, other_miner=other, gpu_4090=ids[0], gpu_3090=ids[1], gpu_a100=ids[2]
    )


def client_with_money(api: Api, owner: str, amount: str = "100") -> str:
    key = api.key("client", owner)
    deposit(api, owner, amount)
    return key


def half_used_gang(api: Api, market: WebMarket, key: str) -> dict[str, Any]:
    """A gang of two of the market's GPUs booked by ``key`` for an hour, half an hour ago."""
    body = {"duration_hours": 1, "count": 2, "placement": "same_miner"}
    made = api.call("POST", "/v1/marketplace/book", key, json=body)
    assert made.status_code == 201, made.text
    api.pass_time(1800, market.miner)
    gang: dict[str, Any] = made.json()
    return gang


def sign_in(page: Any, base: str, key: str) -> None:
    page.goto(base + "/signin")
    page.fill("#api-key", key)
    page.click("#main button[type=submit]")
    page.wait_for_url(lambda url: "/signin" not in url)
