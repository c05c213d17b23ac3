"""``aitbc events`` (a page, --follow) and ``aitbc webhooks`` against the live server."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.cli.cli_support import Cli, isolate, ok_json, ok_text
from tests.events.test_feed import events
from tests.support.api import Api
from tests.support.market import Market, booked
from tests.support.receiver import Receiver
from tests.support.waiting import until


@pytest.fixture
def run(live_server: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Cli:
    isolate(monkeypatch, tmp_path)
    return Cli(live_server)


def test_events_prints_a_page_as_a_table_and_as_json(run: Cli, api: Api, market: Market) -> None:
    renter = market.client("c1")
    booked(api, renter, market.gpu(), hours=1)
    page = run.json(renter, "events")
    assert [e["type"] for e in page["events"]] == ["account.deposit", "booking.created"]
    table = ok_text(run(renter, "events", "--types", "booking.*"))
    assert "booking.created" in table and "account.deposit" not in table
    later = run.json(renter, "events", "--after", str(page["events"][0]["id"]))
    assert [e["type"] for e in later["events"]] == ["booking.created"]


def test_follow_prints_the_newest_then_each_new_event(
    run: Cli, api: Api, app: FastAPI, market: Market
) -> None:
    renter = market.client("c1")
    gpu = market.gpu()
    results = []

    def follow() -> None:
        results.append(run(renter, "events", "--follow", "--count", "2", "-o", "json"))

    following = threading.Thread(target=follow)
    following.start()
    until(lambda: any(k.endswith(":c1") for k in app.state.signals._waiting), 10)
    booked(api, renter, gpu, hours=1)
    following.join(20)
    lines = [json.loads(line) for line in ok_text(results[0]).splitlines()]
    assert [e["type"] for e in lines] == ["account.deposit", "booking.created"]
    assert lines == events(api, renter)["events"]


def test_webhooks_from_the_cli(
    run: Cli, api: Api, app: FastAPI, market: Market, receiver: Receiver
) -> None:
    renter = market.client("c1")
    made = run(renter, "webhooks", "create", receiver.url, "--types", "booking.*", "-o", "json")
    assert "shown only now" in made.stderr
    hook = ok_json(made)
    assert hook["secret"].startswith("whsec_") and hook["types"] == ["booking.*"]
    listed = run.json(renter, "webhooks", "list")
    assert [h["webhook_id"] for h in listed] == [hook["webhook_id"]]
    tested = run.json(renter, "webhooks", "test", hook["webhook_id"])
    assert tested["ok"] is True and receiver.got[0].body["type"] == "webhook.test"
    booked(api, renter, market.gpu(), hours=1)
    app.state.dispatcher.run_once()
    log = run.json(renter, "webhooks", "deliveries", hook["webhook_id"])
    assert [e["event_type"] for e in log] == ["booking.created", "webhook.test"]
    paused = run.json(renter, "webhooks", "disable", hook["webhook_id"])
    assert paused["enabled"] is False
    assert run.json(renter, "webhooks", "enable", hook["webhook_id"])["enabled"] is True
    assert "Deleted" in ok_text(run(renter, "webhooks", "delete", hook["webhook_id"]))
    assert run.json(renter, "webhooks", "list") == []
    refused = run(renter, "webhooks", "show", hook["webhook_id"])
    assert refused.exit_code == 1 and "webhook_not_found" in refused.output


def test_account_alert_shows_sets_and_removes_the_alert(run: Cli, market: Market) -> None:
    renter = market.client("c1")
    assert run.json(renter, "account", "alert") == {"below": None}
    assert run.json(renter, "account", "alert", "--below", "2.5") == {"below": "2.500000"}
    assert "2.500000" in ok_text(run(renter, "account", "alert"))
    assert run.json(renter, "account", "alert", "--off") == {"below": None}
    refused = run(renter, "account", "alert", "--below", "nan")
    assert refused.exit_code == 2
