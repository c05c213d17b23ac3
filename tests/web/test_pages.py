"""The web front end over HTTP without a browser: every page address answers the shell with
its security headers, the assets stay small and local, the API's own addresses are untouched,
and the release preview tells exactly what the release then does."""

from __future__ import annotations

import importlib.util
import re
import threading
from decimal import Decimal
from typing import Any

import pytest
from click.testing import CliRunner

from aitbc.cli.main import cli
from aitbc.web.demo import keep_online, seed
from aitbc.web.router import STATIC_DIR
from tests.support.api import ADMIN_KEY, Api
from tests.support.waiting import until
from tests.web.web_support import client_with_money, half_used_gang, make_market

PAGE_ADDRESSES = ["/", "/?model=4090&sort=rating", "/gpus/gpu_x", "/account", "/provider"]
PAGE_ADDRESSES += ["/admin", "/signin"]


@pytest.mark.parametrize("address", PAGE_ADDRESSES)
def test_every_page_address_answers_the_shell(api: Api, address: str) -> None:
    response = api.call("GET", address)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert '<main id="main"' in response.text


def test_a_page_and_its_assets_weigh_under_200_kb_and_load_nothing_from_elsewhere(
    api: Api,
) -> None:
    shell = api.call("GET", "/")
    assets = re.findall(r'(?:href|src)="(/web/static/[^"]+)"', shell.text)
    assert sorted(assets) == ["/web/static/app.css", "/web/static/app.js"]
    total = len(shell.content)
    for asset in assets:
        response = api.call("GET", asset)
        assert response.status_code == 200
        total += len(response.content)
    assert total < 200_000
    for path in STATIC_DIR.iterdir():
        text = path.read_text()
        # The one absolute URL is SVG's namespace name, which is never fetched.
        assert re.findall(r"https?://[^\s\"'`]+", text) in ([], ["http://www.w3.org/2000/svg"])


def test_the_api_keeps_its_own_addresses(api: Api) -> None:
    missing = api.call("GET", "/v1/no-such-thing")
    assert missing.status_code == 404 and missing.json()["error"]
    assert api.call("GET", "/health").status_code == 200
    paths = api.call("GET", "/openapi.json").json()["paths"]
    assert not [path for path in paths if path == "/" or path.startswith("/web")]


def _preview(api: Api, key: str, booking_id: str) -> Any:
    return api.call("GET", f"/web/bookings/{booking_id}/release-preview", key)


def test_the_release_preview_is_what_the_release_then_does(api: Api) -> None:
    market = make_market(api)
    key = client_with_money(api, "alice")
    booked = api.call(
        "POST", f"/v1/marketplace/gpu/{market.gpu_a100}/book", key, json={"duration_hours": "3"}
    ).json()
    api.pass_time(1234.5, market.other_miner)
    preview = _preview(api, key, booked["booking_id"])
    assert preview.status_code == 200, preview.text
    released = api.call("POST", f"/v1/bookings/{booked['booking_id']}/release", key).json()
    assert (preview.json()["charged"], preview.json()["refund"]) == (
        released["amount_charged"],
        released["refund"],
    )
    assert preview.json()["status"] == released["status"] == "released"
    ended = _preview(api, key, booked["booking_id"])
    assert ended.status_code == 409
    assert ended.json() == {
        "error": "nothing_to_release",
        "detail": "This booking has already ended.",
    }


def test_the_release_preview_of_a_job_its_miner_has_not_taken_charges_nothing(api: Api) -> None:
    """Releasing the booking cancels the job, which never ran: the preview says so too."""
    market = make_market(api)
    key = client_with_money(api, "alice")
    job = {"payload": {}, "constraints": {"gpu_model": "A100"}, "duration_hours": "2"}
    submitted = api.call("POST", "/v1/jobs", key, json=job).json()
    api.pass_time(600, market.other_miner)
    preview = _preview(api, key, submitted["booking_id"])
    assert preview.status_code == 200, preview.text
    released = api.call("POST", f"/v1/bookings/{submitted['booking_id']}/release", key).json()
    assert (preview.json()["charged"], preview.json()["refund"]) == ("0.000000", "3.800000")
    assert (released["amount_charged"], released["refund"]) == ("0.000000", "3.800000")
    assert preview.json()["status"] == released["status"] == "cancelled"


def test_the_release_preview_of_a_gangs_booking_is_the_whole_gangs(api: Api) -> None:
    """Releasing one booking of a gang releases the gang: the preview says what all of it
    gives back, which is what the balance then shows."""
    market = make_market(api)
    key = client_with_money(api, "gus")
    made = half_used_gang(api, market, key)
    first = made["lines"][0]["booking_id"]
    balance = Decimal(api.call("GET", "/v1/accounts/me", key).json()["balance"])
    preview = _preview(api, key, first).json()
    assert (preview["gang_id"], preview["bookings"]) == (made["gang_id"], 2)
    assert preview["paid"] == made["total_cost"]
    assert api.call("POST", f"/v1/bookings/{first}/release", key).status_code == 200
    after = Decimal(api.call("GET", "/v1/accounts/me", key).json()["balance"])
    assert after - balance == Decimal(preview["refund"])
    gang = api.call("GET", f"/v1/gangs/{made['gang_id']}", key).json()
    assert (gang["amount_charged"], gang["refund"]) == (preview["charged"], preview["refund"])


def test_the_release_preview_is_only_for_the_booking_client(api: Api) -> None:
    market = make_market(api)
    key = client_with_money(api, "alice")
    booked = api.call(
        "POST", f"/v1/marketplace/gpu/{market.gpu_3090}/book", key, json={"duration_hours": "1"}
    ).json()
    stranger = client_with_money(api, "mallory")
    assert _preview(api, "", booked["booking_id"]).status_code == 401
    assert _preview(api, market.miner, booked["booking_id"]).status_code == 403
    assert _preview(api, stranger, booked["booking_id"]).status_code == 404
    assert _preview(api, ADMIN_KEY, booked["booking_id"]).status_code == 200


def test_aitbc_web_demo_fills_a_running_coordinator(live_server: str, api: Api) -> None:
    # The coordinator and the key as every command takes them (the global options here).
    result = CliRunner().invoke(cli, ["--url", live_server, "--api-key", ADMIN_KEY, "web", "demo"])
    assert result.exit_code == 0, result.output
    assert "client key (demo-alice): aitbc_" in result.output
    assert "--keep-online" in result.stderr  # says plainly that the miners will go quiet
    listed = api.call("GET", "/v1/marketplace/gpu/list").json()
    assert len(listed) == 4


def test_the_demo_keeps_its_miners_online_while_it_runs(live_server: str, api: Api) -> None:
    keys = seed(live_server, ADMIN_KEY)
    api.clock.advance(seconds=3600)  # long past the heartbeat timeout
    statuses = {g["status"] for g in api.call("GET", "/v1/marketplace/gpu/list").json()}
    assert statuses == {"offline"}
    stop = threading.Event()
    beating = threading.Thread(target=keep_online, args=(live_server, keys.miners, stop, 0.05))
    beating.start()
    try:
        until(
            lambda: (
                "offline"
                not in {g["status"] for g in api.call("GET", "/v1/marketplace/gpu/list").json()}
            ),
            10,
            "the demo miners online again",
        )
    finally:
        stop.set()
        beating.join()


def test_demo_and_screenshots_fail_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    away = CliRunner().invoke(
        cli, ["--url", "http://127.0.0.1:9", "web", "demo", "--admin-key", "k"]
    )
    assert away.exit_code == 1 and "Traceback" not in away.output
    assert "cannot reach the coordinator at http://127.0.0.1:9" in away.output
    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "playwright" else found(name)
    )
    shots = CliRunner().invoke(cli, ["web", "screenshots", "/tmp/nowhere"])
    assert shots.exit_code == 1 and "Traceback" not in shots.output
    assert "Screenshots need Playwright" in shots.output
