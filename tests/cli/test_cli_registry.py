"""The ``aitbc`` CLI against a live server: ``marketplace gpu register|list|details``,
``admin keys create|list|revoke``, ``miner register|heartbeat``, the output formats and
failures; plus the exact requests it sends (the wire contract), captured with a mock
transport."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result

from aitbc.cli import config as cli_config
from aitbc.cli import http as cli_http
from aitbc.cli.http import Api as HttpApi
from aitbc.cli.main import cli
from tests.support.api import ADMIN_KEY, Api
from tests.support.gpus import details, list_gpus


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


@pytest.fixture
def miner(api: Api) -> str:
    return api.key("miner", "m-1")


# --- marketplace gpu --------------------------------------------------------------------


def test_register_then_list_then_details(run: Run, api: Api, miner: str) -> None:
    registered = _ok(
        run(
            miner,
            "marketplace",
            "gpu",
            "register",
            "--name",
            "RTX 4090",
            "--memory",
            "24",
            "--price-per-hour",
            "0.5",
        )
    )
    gpu_id = registered["gpu_id"]

    listed = _ok(run(None, "marketplace", "gpu", "list"))
    one = _ok(run(None, "marketplace", "gpu", "details", gpu_id))

    assert isinstance(listed, list)
    assert [g["gpu_id"] for g in listed] == [gpu_id]
    assert one["gpu_id"] == gpu_id
    assert one["model"] == "RTX 4090"
    assert one["memory_gb"] == 24
    assert one["price_per_hour"] == "0.500000"
    assert one["miner_id"] == "m-1"
    assert one["status"] == "available"


def test_register_with_every_option(run: Run, api: Api, miner: str) -> None:
    registered = _ok(
        run(
            miner,
            "marketplace",
            "gpu",
            "register",
            "--name",
            "A100",
            "--memory",
            "80",
            "--cuda-cores",
            "6912",
            "--compute-capability",
            "8.0",
            "--price-per-hour",
            "2.25",
            "--description",
            "SXM4 80GB",
            "--miner-id",
            "m-1",
        )
    )

    gpu = details(api, registered["gpu_id"])
    assert (gpu["model"], gpu["memory_gb"], gpu["cuda_cores"]) == ("A100", 80, 6912)
    assert (gpu["compute_capability"], gpu["price_per_hour"]) == ("8.0", "2.250000")
    assert gpu["description"] == "SXM4 80GB"


def test_list_with_every_filter(run: Run, api: Api, miner: str) -> None:
    wanted = api.register_gpu(miner, name="RTX 4090", memory_gb=24, price_per_hour="0.5")
    api.register_gpu(miner, name="RTX 4090", memory_gb=24, price_per_hour="1.5")
    api.register_gpu(miner, name="RTX 4090", memory_gb=8, price_per_hour="0.2")
    api.register_gpu(miner, name="A100", memory_gb=80, price_per_hour="0.9")
    silent = api.key("miner", "m-2")
    api.register_gpu(silent, name="RTX 4090", memory_gb=24, price_per_hour="0.4")
    api.clock.advance(seconds=91)
    api.call("POST", "/v1/miners/heartbeat", miner, json={})

    listed = _ok(
        run(
            None,
            "marketplace",
            "gpu",
            "list",
            "--model",
            "4090",
            "--memory-min",
            "16",
            "--price-max",
            "1",
            "--available",
        )
    )

    assert [g["gpu_id"] for g in listed] == [wanted]


@pytest.mark.parametrize("typed", ["0.00001", "1e-5", "0.000010"])
def test_list_below_a_small_price(run: Run, api: Api, miner: str, typed: str) -> None:
    cheap = api.register_gpu(miner, price_per_hour="0.000005")
    api.register_gpu(miner, price_per_hour="0.5")
    listed = _ok(run(None, "marketplace", "gpu", "list", "--price-max", typed))
    assert [g["gpu_id"] for g in listed] == [cheap]


def test_list_model_wildcard_and_limit(run: Run, api: Api, miner: str) -> None:
    for _ in range(3):
        api.register_gpu(miner, name="RTX 4090")
    api.register_gpu(miner, name="A100")

    wildcard = _ok(run(None, "marketplace", "gpu", "list", "--model", "rtx*90"))
    limited = _ok(run(None, "marketplace", "gpu", "list", "--limit", "2"))

    assert len(wildcard) == 3
    assert {g["model"] for g in wildcard} == {"RTX 4090"}
    assert len(limited) == 2


def test_details_of_an_unknown_gpu_fails_with_the_servers_message(run: Run) -> None:
    result = run(None, "marketplace", "gpu", "details", "gpu_nope")

    assert result.exit_code != 0
    assert result.stdout == ""
    assert "No GPU 'gpu_nope'" in result.output
    assert "gpu_not_found" in result.output
    assert "404" in result.output


def test_register_for_another_miner_fails(run: Run, api: Api, miner: str) -> None:
    result = run(miner, "marketplace", "gpu", "register", "--name", "X", "--miner-id", "m-2")

    assert result.exit_code != 0
    assert "miner_id_mismatch" in result.output
    assert list_gpus(api) == []


def test_invalid_input_fails_with_the_servers_message(run: Run, api: Api, miner: str) -> None:
    result = run(miner, "marketplace", "gpu", "register", "--name", "X", "--memory", "-1")

    assert result.exit_code != 0
    assert "memory_gb" in result.output
    assert list_gpus(api) == []


def test_admin_registers_for_a_named_miner(run: Run, api: Api) -> None:
    registered = _ok(
        run(ADMIN_KEY, "marketplace", "gpu", "register", "--name", "H100", "--miner-id", "m-9")
    )

    assert details(api, registered["gpu_id"])["miner_id"] == "m-9"


# --- output formats ---------------------------------------------------------------------


def test_table_output_shows_the_chosen_gpu_columns(run: Run, api: Api, miner: str) -> None:
    first = api.register_gpu(miner, name="RTX 3090", price_per_hour="0.3")
    second = api.register_gpu(miner, name="RTX 4090", price_per_hour="0.5")

    result = run(None, "marketplace", "gpu", "list", output="table")

    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "gpu_id",
        "model",
        "price_per_hour",
        "status",
        "memory_gb",
        "region",
        "average_rating",
    ]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert len(lines) == 4
    assert lines[2].split()[:6] == [first, "RTX", "3090", "0.300000", "available", "24"]
    assert lines[3].split()[0] == second
    assert "{" not in result.stdout  # no JSON in cells


def test_table_output_of_an_empty_list(run: Run) -> None:
    result = run(None, "marketplace", "gpu", "list", output="table")

    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "(no results)"


def test_table_output_of_one_object_is_key_value_lines(run: Run, api: Api, miner: str) -> None:
    gpu_id = api.register_gpu(miner)

    result = run(None, "marketplace", "gpu", "details", gpu_id, output="table")

    assert result.exit_code == 0, result.output
    rows = dict(line.split(None, 1) for line in result.stdout.splitlines() if " " in line.strip())
    assert rows["gpu_id"].strip() == gpu_id
    assert rows["price_per_hour"].strip() == "0.500000"


def test_yaml_output_carries_the_same_data_as_json(run: Run, api: Api, miner: str) -> None:
    api.register_gpu(miner)
    api.register_gpu(miner, name="A100")

    as_json = _ok(run(None, "marketplace", "gpu", "list"))
    as_yaml = run(None, "marketplace", "gpu", "list", output="yaml")

    assert as_yaml.exit_code == 0, as_yaml.output
    loaded = yaml.safe_load(as_yaml.stdout)
    assert [g["gpu_id"] for g in loaded] == [g["gpu_id"] for g in as_json]
    assert [g["price_per_hour"] for g in loaded] == [g["price_per_hour"] for g in as_json]


def test_json_output_is_pure_json_for_every_command(run: Run, api: Api, miner: str) -> None:
    gpu_id = api.register_gpu(miner)
    commands = [
        (miner, "marketplace", "gpu", "register", "--name", "RTX 4090"),
        (None, "marketplace", "gpu", "list"),
        (None, "marketplace", "gpu", "details", gpu_id),
        (ADMIN_KEY, "admin", "keys", "create", "--role", "client", "--owner-id", "c-1"),
        (ADMIN_KEY, "admin", "keys", "list"),
        (miner, "miner", "heartbeat"),
    ]

    for key, *args in commands:
        result = run(key, *args)
        assert result.exit_code == 0, (args, result.output)
        json.loads(result.stdout)


# --- admin keys -------------------------------------------------------------------------


def test_admin_keys_create_list_revoke(run: Run, api: Api) -> None:
    creating = run(ADMIN_KEY, "admin", "keys", "create", "--role", "miner", "--owner-id", "m-5")
    assert "shown only now" in creating.stderr
    created = _ok(creating)
    assert set(created) == {"key", "key_id", "role", "owner_id"}
    assert (created["role"], created["owner_id"]) == ("miner", "m-5")
    assert api.call("GET", "/v1/me", created["key"]).json()["owner_id"] == "m-5"

    listed_result = run(ADMIN_KEY, "admin", "keys", "list")
    listed = _ok(listed_result)
    assert [k["key_id"] for k in listed] == [created["key_id"]]
    assert created["key"] not in listed_result.stdout

    filtered = _ok(run(ADMIN_KEY, "admin", "keys", "list", "--role", "client"))
    assert filtered == []

    revoked = _ok(run(ADMIN_KEY, "admin", "keys", "revoke", created["key_id"]))
    assert revoked["key_id"] == created["key_id"]
    assert revoked["revoked_at"] is not None
    failing = run(created["key"], "marketplace", "gpu", "register", "--name", "RTX 4090")
    assert failing.exit_code != 0
    assert "invalid_api_key" in failing.output


def test_admin_keys_create_quiet_prints_the_secret_shown_this_once(run: Run, api: Api) -> None:
    creating = run(
        ADMIN_KEY, "-q", "admin", "keys", "create", "--role", "client", "--owner-id", "z"
    )
    assert creating.exit_code == 0, creating.output
    secret = creating.stdout.strip()
    assert api.call("GET", "/v1/me", secret).json()["owner_id"] == "z"


def test_account_alert_refuses_below_and_off_together(run: Run, api: Api) -> None:
    client = api.key("client", "c-1")
    result = run(client, "account", "alert", "--below", "5", "--off")
    assert result.exit_code == 2 and "not both" in result.output
    assert api.call("GET", "/v1/accounts/me/low-balance-alert", client).json()["below"] is None


def test_admin_keys_need_an_admin_key(run: Run, miner: str) -> None:
    result = run(miner, "admin", "keys", "create", "--role", "admin", "--owner-id", "me")

    assert result.exit_code != 0
    assert "wrong_role" in result.output
    assert "403" in result.output


def test_revoking_an_unknown_key_fails(run: Run) -> None:
    result = run(ADMIN_KEY, "admin", "keys", "revoke", "key_nope")

    assert result.exit_code != 0
    assert "api_key_not_found" in result.output


# --- miner ------------------------------------------------------------------------------

GPUS = [
    {"model": "RTX 4090", "memory_gb": 24, "price_per_hour": "0.5"},
    {"model": "RTX 4090", "memory_gb": 24, "price_per_hour": "0.6"},
]


def test_miner_register_and_heartbeat(run: Run, api: Api, miner: str) -> None:
    registered = _ok(
        run(miner, "miner", "register", "--gpus", json.dumps(GPUS), "--region", "eu-west")
    )
    ids = [g["gpu_id"] for g in registered["gpus"]]
    assert sorted(g["gpu_id"] for g in list_gpus(api)) == sorted(ids)
    assert {g["region"] for g in list_gpus(api)} == {"eu-west"}

    again = _ok(run(miner, "miner", "register", "--gpus", json.dumps(GPUS), "--concurrency", "4"))
    assert [g["gpu_id"] for g in again["gpus"]] == ids
    assert again["concurrency"] == 4
    assert len(list_gpus(api)) == 2

    api.clock.advance(seconds=120)
    assert {g["status"] for g in list_gpus(api)} == {"offline"}
    health = [{"slot": "0", "temperature_c": 66, "utilization_pct": 40}]
    beat = _ok(run(miner, "miner", "heartbeat", "--inflight", "1", "--gpus", json.dumps(health)))
    assert beat["inflight"] == 1
    assert {g["status"] for g in list_gpus(api)} == {"available"}
    assert details(api, ids[0])["health"] == {"temperature_c": 66, "utilization_pct": 40}

    _ok(run(miner, "miner", "heartbeat", "--status", "offline"))
    assert {g["status"] for g in list_gpus(api)} == {"offline"}


def test_miner_register_reads_the_gpus_from_a_file(
    run: Run, api: Api, miner: str, tmp_path: Path
) -> None:
    path = tmp_path / "gpus.json"
    path.write_text(json.dumps(GPUS))

    registered = _ok(run(miner, "miner", "register", "--gpus", str(path)))

    assert len(registered["gpus"]) == 2
    assert len(list_gpus(api)) == 2


def test_miner_register_rejects_bad_json_before_sending(run: Run, api: Api, miner: str) -> None:
    result = run(miner, "miner", "register", "--gpus", "[{not json")

    assert result.exit_code != 0
    assert "JSON" in result.output
    assert list_gpus(api) == []


def test_heartbeat_before_registering_fails(run: Run, miner: str) -> None:
    result = run(miner, "miner", "heartbeat")

    assert result.exit_code != 0
    assert "miner_not_registered" in result.output


# --- the wire contract, byte for byte where it matters -----------------------------------


class Recorder:
    def __init__(self, responses: dict[tuple[str, str], httpx.Response]) -> None:
        self.responses = responses
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.responses.get(
            (request.method, request.url.path),
            httpx.Response(500, json={"error": "internal_error", "detail": "boom"}),
        )


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Callable[..., tuple[Result, Recorder]]:
    def _invoke(
        responses: dict[tuple[str, str], httpx.Response], *args: str
    ) -> tuple[Result, Recorder]:
        recorder = Recorder(responses)
        transport = httpx.MockTransport(recorder)
        monkeypatch.setattr(cli_http, "Api", lambda config: HttpApi(config, transport=transport))
        result = CliRunner().invoke(cli, ["--url", "http://coordinator.test", *args])
        return result, recorder

    return _invoke


REGISTERED = httpx.Response(201, json={"gpu_id": "gpu_1", "miner_id": "m", "status": "available"})


def test_wire_register_with_only_a_name(wire: Any) -> None:
    result, rec = wire(
        {("POST", "/v1/marketplace/gpu/register"): REGISTERED},
        "marketplace",
        "gpu",
        "register",
        "--name",
        "RTX 4090",
    )

    assert result.exit_code == 0, result.output
    [request] = rec.requests
    assert request.headers["X-Api-Key"] == ""
    assert request.headers["X-Miner-ID"] == "default"
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == {"gpu": {"name": "RTX 4090"}}
    assert request.extensions["timeout"]["read"] == 5.0


def test_wire_register_with_every_option(wire: Any) -> None:
    result, rec = wire(
        {("POST", "/v1/marketplace/gpu/register"): REGISTERED},
        "--api-key",
        "k",
        "marketplace",
        "gpu",
        "register",
        "--name",
        "RTX 4090",
        "--memory",
        "24",
        "--cuda-cores",
        "16384",
        "--compute-capability",
        "8.9",
        "--price-per-hour",
        "0.5",
        "--description",
        "d",
        "--miner-id",
        "m-1",
    )

    assert result.exit_code == 0, result.output
    [request] = rec.requests
    assert request.headers["X-Api-Key"] == "k"
    assert request.headers["X-Miner-ID"] == "m-1"
    assert json.loads(request.content) == {
        "gpu": {
            "name": "RTX 4090",
            "memory_gb": 24,
            "cuda_cores": 16384,
            "compute_capability": "8.9",
            "price_per_hour": 0.5,
            "description": "d",
        }
    }


def test_wire_register_treats_a_200_as_failure(wire: Any) -> None:
    ok_but_wrong = httpx.Response(200, json={"gpu_id": "gpu_1"})

    result, _ = wire(
        {("POST", "/v1/marketplace/gpu/register"): ok_but_wrong},
        "marketplace",
        "gpu",
        "register",
        "--name",
        "X",
    )

    assert result.exit_code != 0


def test_wire_list_sends_limit_20_and_nothing_else_by_default(wire: Any) -> None:
    result, rec = wire(
        {("GET", "/v1/marketplace/gpu/list"): httpx.Response(200, json=[])},
        "marketplace",
        "gpu",
        "list",
    )

    assert result.exit_code == 0, result.output
    [request] = rec.requests
    assert dict(request.url.params) == {"limit": "20"}
    assert request.headers["X-Api-Key"] == ""


def test_wire_list_sends_the_filters_given(wire: Any) -> None:
    result, rec = wire(
        {("GET", "/v1/marketplace/gpu/list"): httpx.Response(200, json=[])},
        "marketplace",
        "gpu",
        "list",
        "--available",
        "--model",
        "RTX*",
        "--memory-min",
        "16",
        "--price-max",
        "1.5",
        "--limit",
        "5",
    )

    assert result.exit_code == 0, result.output
    [request] = rec.requests
    assert dict(request.url.params) == {
        "limit": "5",
        "available": "true",
        "model": "RTX*",
        "memory_min": "16",
        "price_max": "1.5",
    }


@pytest.mark.parametrize(
    ("typed", "sent"), [("1e-5", "0.00001"), ("2.50", "2.50"), ("1e3", "1000")]
)
def test_wire_list_sends_the_price_in_plain_digits(wire: Any, typed: str, sent: str) -> None:
    result, rec = wire(
        {("GET", "/v1/marketplace/gpu/list"): httpx.Response(200, json=[])},
        *("marketplace", "gpu", "list", "--price-max", typed, "--bid-max", typed),
    )
    assert result.exit_code == 0, result.output
    [request] = rec.requests
    assert (request.url.params["price_max"], request.url.params["bid_max"]) == (sent, sent)


@pytest.mark.parametrize("given", ["x/../../accounts/me", "a b/c", "%2e%2e"])
def test_an_id_is_one_segment_of_the_path(wire: Any, given: str) -> None:
    """An id is sent escaped: one holding ``/`` or ``..`` reaches no other route."""
    result, rec = wire(
        {("GET", "/v1/marketplace/gpu/" + given): httpx.Response(200, json={})},  # decoded
        "marketplace",
        "gpu",
        "details",
        given,
    )
    assert result.exit_code == 0, result.output
    [request] = rec.requests
    assert request.url.raw_path.decode() == "/v1/marketplace/gpu/" + quote(given, safe="")


def test_wire_details_path(wire: Any) -> None:
    gpu = {"gpu_id": "gpu_1", "model": "RTX 4090"}

    result, rec = wire(
        {("GET", "/v1/marketplace/gpu/gpu_1"): httpx.Response(200, json=gpu)},
        "--output",
        "json",
        "marketplace",
        "gpu",
        "details",
        "gpu_1",
    )

    assert result.exit_code == 0, result.output
    assert [r.url.path for r in rec.requests] == ["/v1/marketplace/gpu/gpu_1"]
    assert json.loads(result.stdout) == gpu


def test_wire_a_server_error_is_one_request_and_a_non_zero_exit(wire: Any) -> None:
    result, rec = wire({}, "--output", "json", "marketplace", "gpu", "list")

    assert result.exit_code != 0
    assert len(rec.requests) == 1
    assert result.stdout == ""
    assert "boom" in result.output


def test_wire_a_non_json_error_body_still_fails_cleanly(wire: Any) -> None:
    html = httpx.Response(502, text="<html>Bad Gateway</html>")

    result, _ = wire({("GET", "/v1/marketplace/gpu/list"): html}, "marketplace", "gpu", "list")

    assert result.exit_code != 0
    assert isinstance(result.exception, SystemExit)
    assert "502" in result.output
