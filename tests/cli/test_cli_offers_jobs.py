"""The ``aitbc`` CLI against a live server: ``marketplace offers|stats|bid|bids``,
``admin sync-offers``, ``client submit|status|jobs|cancel`` and ``miner poll|result|fail``,
their output and their failures (non-zero exit with the server's code and status)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from aitbc.cli import config as cli_config
from aitbc.cli.main import cli
from tests.jobs.slice_support import (
    BID_FIELDS,
    JOB_FIELDS,
    MINER_JOB_FIELDS,
    OFFER_FIELDS,
    balance,
    booking,
    job,
    offers,
    sweep,
)
from tests.support.api import ADMIN_KEY, Api
from tests.support.market import deposit


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cli_config, "DEFAULT_CONFIG_FILE", tmp_path / "absent" / "config.yaml")
    monkeypatch.delenv("AITBC_URL", raising=False)
    monkeypatch.delenv("AITBC_API_KEY", raising=False)


Run = Callable[..., Result]


@pytest.fixture
def run(live_server: str) -> Run:
    def _run(key: str | None, *args: str, output: str = "json") -> Result:
        flags = ["--url", live_server, "--output", output]
        if key is not None:
            flags += ["--api-key", key]
        return CliRunner().invoke(cli, [*flags, *args])

    return _run


def _ok(result: Result) -> Any:
    assert result.exit_code == 0, (result.output, result.exception)
    return json.loads(result.stdout)


def _failed(result: Result, status: int, code: str) -> None:
    assert result.exit_code != 0, result.output
    assert code in result.output, result.output
    assert f"HTTP {status}" in result.output, result.output


@pytest.fixture
def miner(api: Api) -> str:
    return api.key("miner", "m1")


@pytest.fixture
def client(api: Api) -> str:
    key = api.key("client", "c1")
    deposit(api, "c1", "100")
    return key


# --- offers, stats, sync -------------------------------------------------------------------


def test_offers_stats_and_sync(run: Run, api: Api, miner: str) -> None:
    rtx = api.register_gpu(miner, name="RTX 4090", price_per_hour="0.5")
    a100 = api.register_gpu(miner, name="A100", memory_gb=80, price_per_hour="2")
    assert len(_ok(run(None, "marketplace", "offers"))) == 2  # in step without a sync

    assert _ok(run(ADMIN_KEY, "admin", "sync-offers")) == {
        "created": 0,
        "updated": 0,
        "closed": 0,
        "unchanged": 2,
    }

    listed = _ok(run(None, "marketplace", "offers"))
    assert isinstance(listed, list)
    assert {o["gpu_id"] for o in listed} == {rtx, a100}
    assert all(set(o) == OFFER_FIELDS for o in listed)
    assert listed == offers(api)
    assert _ok(run(None, "marketplace", "offers", "--status", "closed")) == []
    assert len(_ok(run(None, "marketplace", "offers", "--status", "open"))) == 2
    assert len(_ok(run(None, "marketplace", "offers", "--limit", "1"))) == 1
    assert _ok(run(None, "marketplace", "stats")) == {
        "totalOffers": 2,
        "openCapacity": 2,
        "averagePrice": "1.250000",
        "activeBids": 0,
    }


def test_offers_as_a_table_and_yaml(run: Run, api: Api, miner: str) -> None:
    gpu_id = api.register_gpu(miner, name="RTX 4090", price_per_hour="0.5")
    _ok(run(ADMIN_KEY, "admin", "sync-offers"))

    table = run(None, "marketplace", "offers", output="table")
    as_yaml = run(None, "marketplace", "offers", output="yaml")
    stats_table = run(None, "marketplace", "stats", output="table")

    assert table.exit_code == 0, table.output
    header = table.stdout.splitlines()[0].split()
    assert header[:4] == ["id", "provider", "capacity", "price"]
    assert "gpu_model" in header
    assert gpu_id in table.stdout and "RTX 4090" in table.stdout
    assert as_yaml.exit_code == 0, as_yaml.output
    assert yaml.safe_load(as_yaml.stdout) == offers(api)
    assert stats_table.exit_code == 0, stats_table.output
    # People's words in the table (the JSON keeps the seed CLI's keys, above).
    assert "total_offers" in stats_table.stdout and "0.500000" in stats_table.stdout
    assert "totalOffers" not in stats_table.stdout


def test_sync_offers_needs_an_admin_key(run: Run, api: Api, miner: str, client: str) -> None:
    api.register_gpu(miner)
    before = offers(api)

    _failed(run(client, "admin", "sync-offers"), 403, "wrong_role")
    _failed(run(miner, "admin", "sync-offers"), 403, "wrong_role")
    _failed(run(None, "admin", "sync-offers"), 401, "authentication_required")
    assert offers(api) == before


# --- bids ----------------------------------------------------------------------------------


def test_bid_and_bids(run: Run, api: Api, miner: str, client: str) -> None:
    rtx = api.register_gpu(miner, name="RTX 4090", price_per_hour="0.5")

    asked = run(client, "marketplace", "bid", "--price", "0.6", "--notes", "urgent")
    assert asked.exit_code == 2 and "--yes" in asked.output  # nobody to ask: nothing placed
    assert "up to 1 GPU(s) at up to 0.6 per hour for 1 h each" in asked.output
    assert "up to 0.6 AITBC from your balance" in asked.output
    assert _ok(run(client, "marketplace", "bids")) == []
    placing = run(client, "marketplace", "bid", "--price", "0.6", "--notes", "urgent", "--yes")
    filled = _ok(placing)
    assert f"booked 1 of 1 GPU(s) now ({filled['booking_ids'][0]}" in placing.stderr
    assert set(filled) == BID_FIELDS
    assert (filled["status"], filled["notes"], filled["price"]) == ("filled", "urgent", "0.600000")
    assert booking(api, client, filled["booking_ids"][0])["gpu_id"] == rtx
    assert balance(api, client) == ("99.500000", "0.500000")
    api.clock.advance(seconds=1)

    waiting = _ok(
        run(
            client,
            "marketplace",
            "bid",
            "--capacity",
            "2",
            "--price",
            "0.25",
            "--provider",
            "m1",
            "--gpu-model",
            "A100",
            "--hours",
            "2",
            "--yes",
        )
    )
    assert (waiting["status"], waiting["capacity"], waiting["provider"]) == ("open", 2, "m1")
    assert waiting["duration_hours"] == "2.000000"
    assert waiting["gpu_model"].lower() == "a100"

    listed = _ok(run(client, "marketplace", "bids"))
    assert [b["id"] for b in listed] == [waiting["id"], filled["id"]]
    assert len(_ok(run(client, "marketplace", "bids", "--limit", "1"))) == 1
    table = run(client, "marketplace", "bids", output="table")
    assert table.stdout.split()[0] == "bid_id" and waiting["id"] in table.stdout
    assert _ok(run(None, "marketplace", "stats"))["activeBids"] == 1

    api.register_gpu(miner, name="A100", memory_gb=80, price_per_hour="0.25")
    api.register_gpu(miner, name="A100", memory_gb=80, price_per_hour="0.2")
    sweep(api)
    done = _ok(run(client, "marketplace", "bids"))[0]
    assert (done["status"], done["filled"]) == ("filled", 2)
    assert balance(api, client) == ("98.600000", "1.400000")


def test_bid_failures(run: Run, api: Api, miner: str, client: str) -> None:
    _failed(run(miner, "marketplace", "bid", "--price", "1", "-y"), 403, "wrong_role")
    _failed(run(None, "marketplace", "bid", "--price", "1", "-y"), 401, "authentication_required")
    _failed(run(client, "marketplace", "bid", "--price", "0", "-y"), 422, "validation_error")
    _failed(run(None, "marketplace", "bids"), 401, "authentication_required")
    missing_price = run(client, "marketplace", "bid")
    assert missing_price.exit_code != 0
    assert "--price" in missing_price.output
    assert _ok(run(client, "marketplace", "bids")) == []


# --- jobs: client --------------------------------------------------------------------------


def test_submit_with_every_constraint(run: Run, api: Api, miner: str, client: str) -> None:
    api.register_gpu(miner, name="RTX 4090", memory_gb=24, price_per_hour="0.5")
    wanted = api.register_gpu(
        miner,
        name="RTX 4090",
        memory_gb=24,
        price_per_hour="0.9",
        region="eu-west",
        ai_models=["llama2-7b"],
    )

    created = _ok(
        run(
            client,
            "client",
            "submit",
            "--payload",
            '{"prompt": "hi"}',
            "--hours",
            "0.5",
            "--gpu-model",
            "RTX 4090",
            "--memory-min",
            "16",
            "--ai-model",
            "llama2-7b",
            "--region",
            "eu-west",
            "--max-price",
            "1",
            "--ttl",
            "600",
        )
    )

    assert set(created) == JOB_FIELDS
    assert (created["state"], created["gpu_id"]) == ("assigned", wanted)
    assert created["duration_hours"] == "0.500000"
    assert created["expires_at"] == "2030-01-01T00:10:00Z"
    kept = created["constraints"]
    assert (kept["memory_min_gb"], kept["region"]) == (16, "eu-west")
    assert float(kept["max_price_per_hour"]) == 1
    assert balance(api, client) == ("99.550000", "0.450000")
    handed = _ok(run(miner, "miner", "poll"))
    assert handed["payload"] == {"prompt": "hi"}


def test_submit_reads_the_payload_from_a_file(
    run: Run, api: Api, miner: str, client: str, tmp_path: Path
) -> None:
    api.register_gpu(miner)
    payload = tmp_path / "payload.json"
    payload.write_text(json.dumps({"model": "llama2-7b", "prompt": "from a file"}))

    created = _ok(run(client, "client", "submit", "--payload", str(payload), "--hours", "1"))

    assert created["state"] == "assigned"
    assert _ok(run(miner, "miner", "poll"))["payload"] == {
        "model": "llama2-7b",
        "prompt": "from a file",
    }


def test_submit_without_hours_books_the_servers_default(
    run: Run, api: Api, miner: str, client: str
) -> None:
    api.register_gpu(miner, price_per_hour="3.6")
    created = _ok(run(client, "client", "submit"))
    assert (created["state"], created["duration_hours"]) == ("assigned", "1.000000")


def test_status_jobs_and_cancel(run: Run, api: Api, miner: str, client: str) -> None:
    queued = _ok(run(client, "client", "submit", "--hours", "1", "--gpu-model", "H100"))
    assert queued["state"] == "queued"

    assert _ok(run(client, "client", "status", queued["job_id"])) == job(
        api, client, queued["job_id"]
    )
    assert [j["job_id"] for j in _ok(run(client, "client", "jobs"))] == [queued["job_id"]]
    table = run(client, "client", "jobs", output="table")
    assert table.exit_code == 0, table.output
    assert table.stdout.splitlines()[0].split()[:2] == ["job_id", "state"]

    cancelled = _ok(run(client, "client", "cancel", queued["job_id"]))
    assert cancelled["state"] == "cancelled"
    _failed(run(client, "client", "cancel", queued["job_id"]), 409, "job_finished")
    _failed(run(client, "client", "status", "job_missing"), 404, "job_not_found")
    other = api.key("client", "c2")
    _failed(run(other, "client", "status", queued["job_id"]), 404, "job_not_found")
    assert _ok(run(other, "client", "jobs")) == []


def test_submit_failures(run: Run, api: Api, miner: str) -> None:
    poor = api.key("client", "c9")
    deposit(api, "c9", "0.1")
    api.register_gpu(miner, price_per_hour="3.6")

    _failed(run(poor, "client", "submit", "--hours", "1"), 402, "insufficient_funds")
    _failed(run(miner, "client", "submit", "--hours", "1"), 403, "wrong_role")
    _failed(run(poor, "client", "submit", "--hours", "1", "--ttl", "5"), 422, "validation_error")
    not_json = run(poor, "client", "submit", "--hours", "1", "--payload", "{nope")
    assert not_json.exit_code != 0
    assert "JSON" in not_json.output
    assert _ok(run(poor, "client", "jobs")) == []


# --- jobs: miner ---------------------------------------------------------------------------


def test_poll_and_result_settle_the_money(run: Run, api: Api, miner: str, client: str) -> None:
    api.register_gpu(miner, price_per_hour="3.6")
    created = _ok(run(client, "client", "submit", "--hours", "1", "--payload", '{"n": 1}'))

    handed = _ok(run(miner, "miner", "poll"))
    assert set(handed) == MINER_JOB_FIELDS
    assert (handed["job_id"], handed["payload"]) == (created["job_id"], {"n": 1})
    nothing = run(miner, "miner", "poll")
    assert (nothing.exit_code, nothing.stdout) == (0, "")
    assert _ok(run(client, "client", "status", created["job_id"]))["state"] == "running"

    api.pass_time(1800, miner)
    done = _ok(run(miner, "miner", "result", created["job_id"], "--result", '{"tokens": 42}'))

    assert (done["state"], done["result"]) == ("completed", {"tokens": 42})
    assert _ok(run(client, "client", "status", created["job_id"]))["state"] == "completed"
    assert balance(api, client) == ("98.200000", "0.000000")
    assert balance(api, miner) == ("1.800000", "0.000000")
    _failed(run(miner, "miner", "result", created["job_id"]), 409, "job_not_running")


def test_fail_refunds_the_client(run: Run, api: Api, miner: str, client: str) -> None:
    api.register_gpu(miner, price_per_hour="3.6")
    created = _ok(run(client, "client", "submit", "--hours", "1"))
    _ok(run(miner, "miner", "poll"))
    api.clock.advance(seconds=600)

    failed = _ok(run(miner, "miner", "fail", created["job_id"], "--error", "driver crashed"))

    assert (failed["state"], failed["error"]) == ("failed", "driver crashed")
    assert balance(api, client) == ("100.000000", "0.000000")
    assert balance(api, miner) == ("0.000000", "0.000000")


def test_miner_commands_refuse_someone_elses_job(
    run: Run, api: Api, miner: str, client: str
) -> None:
    rival = api.key("miner", "m2")
    api.register_gpu(miner, price_per_hour="3.6")
    created = _ok(run(client, "client", "submit", "--hours", "1"))

    _failed(run(rival, "miner", "result", created["job_id"]), 404, "job_not_found")
    _failed(run(rival, "miner", "fail", created["job_id"], "--error", "x"), 404, "job_not_found")
    _failed(run(client, "miner", "poll"), 403, "wrong_role")
    _failed(run(miner, "miner", "result", "job_missing"), 404, "job_not_found")
    missing_error = run(miner, "miner", "fail", created["job_id"])
    assert missing_error.exit_code != 0
    assert "--error" in missing_error.output
    assert _ok(run(client, "client", "status", created["job_id"]))["state"] == "assigned"
