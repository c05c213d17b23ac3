"""What a request body must be, the same on both databases and for every route: JSON that
parses, nests at most 32 levels and holds finite numbers, answered after the key is checked
(422 `invalid_json`, in plain words); a body that arrives too slowly is 408; a wrong method
names every method the path serves."""

from __future__ import annotations

import json
import socket
import time
from typing import Any

import pytest

from aitbc.config import Settings
from tests.support.api import ADMIN_KEY, Api, settings_for
from tests.support.responses import assert_error


def nested(depth: int) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = [value]
    return value


@pytest.fixture
def world(api: Api) -> dict[str, str]:
    miner = api.key("miner", "m-1")
    client = api.key("client", "c-1")
    deposited = api.call(
        "POST",
        "/v1/admin/accounts/c-1/deposit",
        ADMIN_KEY,
        json={"amount": "9"},
        params={"create": "true"},
    )
    assert deposited.status_code == 201, deposited.text
    caps = {"gpus": [{"slot": "0", "model": "RTX 4090", "memory_gb": 24, "price_per_hour": "1"}]}
    assert api.call("POST", "/v1/miners/register", miner, json=caps).status_code in (200, 201)
    return {"miner": miner, "client": client}


def jobs_of(api: Api, key: str) -> list[Any]:
    response = api.call("GET", "/v1/jobs", key)
    assert response.status_code == 200, response.text
    body: list[Any] = response.json()
    return body


def test_a_payload_nested_256_deep_is_refused_and_nothing_is_stored(
    api: Api, world: dict[str, str]
) -> None:
    body = {"payload": {"deep": nested(256)}, "ttl_seconds": 900}
    response = api.call("POST", "/v1/jobs", world["client"], json=body)
    error = assert_error(response, 422, "invalid_json")
    assert "32 levels" in error["detail"]
    assert jobs_of(api, world["client"]) == []


def test_nesting_up_to_the_limit_is_accepted(api: Api, world: dict[str, str]) -> None:
    # The payload sits two levels down (the body, then "payload").
    body = {"payload": {"deep": nested(29)}, "ttl_seconds": 900}
    response = api.call("POST", "/v1/jobs", world["client"], json=body)
    assert response.status_code == 201, response.text
    too_deep = {"payload": {"deep": nested(31)}, "ttl_seconds": 900}
    assert_error(api.call("POST", "/v1/jobs", world["client"], json=too_deep), 422, "invalid_json")


def test_a_miners_too_deep_result_is_refused_and_the_job_keeps_running(
    api: Api, world: dict[str, str]
) -> None:
    submitted = api.call(
        "POST", "/v1/jobs", world["client"], json={"payload": {"n": 1}, "ttl_seconds": 900}
    )
    assert submitted.status_code == 201, submitted.text
    job_id = submitted.json()["job_id"]
    taken = api.call("POST", "/v1/miners/poll", world["miner"])
    assert taken.status_code == 200, taken.text
    refused = api.call(
        "POST", f"/v1/miners/{job_id}/result", world["miner"], json={"result": nested(256)}
    )
    assert_error(refused, 422, "invalid_json")
    assert api.call("GET", f"/v1/jobs/{job_id}", world["client"]).json()["state"] == "running"
    # The job can still be finished properly.
    done = api.call("POST", f"/v1/miners/{job_id}/result", world["miner"], json={"result": "ok"})
    assert done.status_code == 200, done.text


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity", "1e309", "-1e400"])
@pytest.mark.parametrize("where", ["payload", "result", "capabilities"])
def test_non_finite_numbers_are_refused_on_every_database(
    api: Api, world: dict[str, str], number: str, where: str
) -> None:
    if where == "payload":
        raw = '{"payload": {"x": N}, "ttl_seconds": 900}'.replace("N", number)
        response = api.call("POST", "/v1/jobs", world["client"], content=raw)
    elif where == "result":
        job = api.call(
            "POST", "/v1/jobs", world["client"], json={"payload": {}, "ttl_seconds": 900}
        )
        assert job.status_code == 201, job.text
        assert api.call("POST", "/v1/miners/poll", world["miner"]).status_code == 200
        raw = '{"result": {"score": N}}'.replace("N", number)
        path = f"/v1/miners/{job.json()['job_id']}/result"
        response = api.call("POST", path, world["miner"], content=raw)
    else:
        gpu = '{"model": "RTX 4090", "memory_gb": 24, "x": N}'.replace("N", number)
        raw = '{"capabilities": {"gpu": ' + gpu + "}}"
        response = api.call("POST", "/v1/miners/register", world["miner"], content=raw)
    error = assert_error(response, 422, "invalid_json")
    assert "finite" in error["detail"]


def test_ai_model_names_over_128_characters_are_refused(api: Api, world: dict[str, str]) -> None:
    gpu = {"name": "RTX 4090", "memory_gb": 24, "price_per_hour": "1", "ai_models": ["m" * 129]}
    response = api.call("POST", "/v1/marketplace/gpu/register", world["miner"], json={"gpu": gpu})
    assert_error(response, 422, "validation_error")
    ok = {**gpu, "ai_models": ["m" * 128]}
    response = api.call("POST", "/v1/marketplace/gpu/register", world["miner"], json={"gpu": ok})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    "raw", [b"{", b'{"gpu": }', b"not json", b"\xff\xfe", b'{"a": 1} trailing']
)
def test_a_body_that_is_not_json_gets_one_plain_answer(api: Api, raw: bytes) -> None:
    admin = api.call(
        "POST", "/v1/admin/api-keys", ADMIN_KEY, content=raw,
        headers={"Content-Type": "application/json"},
    )  # fmt: skip
    error = assert_error(admin, 422, "invalid_json")
    assert error["detail"].startswith("The body is not valid JSON")
    assert "0:" not in error["detail"]


def test_a_body_that_is_not_json_is_answered_after_the_key_is_checked(api: Api) -> None:
    client = api.key("client", "c-2")
    for key, status in ((None, 401), ("wrong", 401), (client, 403)):
        response = api.call("POST", "/v1/admin/api-keys", key, content=b"{oops")
        assert_error(response, status)


def test_an_empty_body_where_one_is_optional_is_still_fine(api: Api, world: dict[str, str]) -> None:
    assert api.call("POST", "/v1/miners/heartbeat", world["miner"]).status_code == 200
    broken = api.call("POST", "/v1/miners/heartbeat", world["miner"], content=b"{")
    assert_error(broken, 422, "invalid_json")


def test_a_wrong_method_names_every_method_the_path_serves(api: Api) -> None:
    response = api.call("DELETE", "/v1/marketplace/bids", ADMIN_KEY)
    assert_error(response, 405, "method_not_allowed")
    allowed = {m.strip() for m in response.headers["Allow"].split(",")}
    assert {"GET", "POST"} <= allowed and "DELETE" not in allowed


# -- a body that arrives slowly -------------------------------------------------------------


@pytest.fixture
def settings(database_url: str) -> Settings:
    return settings_for(database_url, body_timeout_seconds=1)


def test_a_body_sent_too_slowly_is_cut_off_with_408(live_server: str) -> None:
    host, port = live_server.removeprefix("http://").split(":")
    began = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(
            b"POST /v1/admin/api-keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"X-Api-Key: " + ADMIN_KEY.encode() + b"\r\nContent-Length: 100\r\n\r\n{"
        )
        answer = b""
        while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
            chunk = conn.recv(4096)
            if not chunk:
                break
            answer += chunk
    took = time.monotonic() - began
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert json.loads(answer.split(b"\r\n\r\n", 1)[1])["error"] == "request_timeout"
    assert took < 5, took


def _raw(api: Api, path: str, key: str, text: str) -> Any:
    """A body sent as written: ``json=`` would escape the surrogate's backslash."""
    headers = {"Content-Type": "application/json", "X-Api-Key": key}
    return api.client.post(path, content=text.encode(), headers=headers)


def test_an_unpaired_surrogate_in_a_job_payload_is_refused_and_nothing_is_stored(
    api: Api, world: dict[str, str]
) -> None:
    body = '{"payload": {"prompt": "\\ud800"}, "duration_hours": 1}'
    assert_error(_raw(api, "/v1/jobs", world["client"], body), 422, "invalid_json")
    assert jobs_of(api, world["client"]) == []
    # A pair written as two escapes is a character like any other.
    paired = '{"payload": {"prompt": "\\ud83d\\ude00"}, "duration_hours": 1}'
    created = _raw(api, "/v1/jobs", world["client"], paired)
    assert created.status_code == 201, created.text
    assert created.json()["job_id"]


def test_an_unpaired_surrogate_in_a_result_is_refused_and_the_job_keeps_running(
    api: Api, world: dict[str, str]
) -> None:
    created = api.call(
        "POST", "/v1/jobs", world["client"], json={"payload": {}, "duration_hours": 1}
    )
    job_id = created.json()["job_id"]
    handed = api.call("POST", "/v1/miners/poll", world["miner"])
    assert handed.status_code == 200, handed.text
    result = '{"result": {"text": "\\udfff"}}'
    refused = _raw(api, f"/v1/miners/jobs/{job_id}/result", world["miner"], result)
    assert_error(refused, 422, "invalid_json")
    assert api.call("GET", f"/v1/jobs/{job_id}", world["client"]).json()["state"] == "running"


@pytest.mark.parametrize("name", ["", " ", "x" * 200])
def test_a_daemons_ai_model_names_are_checked_at_the_door(
    api: Api, world: dict[str, str], name: str
) -> None:
    caps = {"capabilities": {"gpu": {"model": "RTX 4090", "memory_gb": 24, "models": [name]}}}
    refused = api.call("POST", "/v1/miners/register", world["miner"], json=caps)
    assert_error(refused, 422, "validation_error")


@pytest.mark.parametrize("path", ["/v1/miners/heartbeat", "/v1/miners/register"])
def test_the_miners_own_routes_are_not_read_as_a_miner_id(api: Api, path: str) -> None:
    miner = api.key("miner", "m-9")
    options = api.call("OPTIONS", path, miner)
    assert_error(options, 405, "method_not_allowed")
    assert options.headers["Allow"] == "POST"
    deleted = api.call("DELETE", path, miner)
    assert_error(deleted, 405, "method_not_allowed")


def test_integers_are_what_the_document_says_they_are(api: Api, world: dict[str, str]) -> None:
    """JSON Schema's integer: 3.0 is one; true, "3" and 3.5 are not."""
    beat = "/v1/miners/heartbeat"
    for refused in (False, True, "0", 1.5):
        response = api.call("POST", beat, world["miner"], json={"current_jobs": refused})
        assert_error(response, 422, "validation_error")
    accepted = api.call("POST", beat, world["miner"], json={"current_jobs": 2.0, "inflight": 1})
    assert accepted.status_code == 200, accepted.text
    assert accepted.json()["inflight"] == 1
