"""The miner and job protocol already in the field (`miner-job-protocol.md`): every request it
lists, with the bodies listed there, against the server over real HTTP, with the statuses the
deployed clients take as success."""

from __future__ import annotations

import threading
import time
from typing import Any

import httpx

from tests.support.api import Api
from tests.support.market import deposit

FIELD_CAPABILITIES: list[dict[str, Any]] = [
    {
        "gpu": {
            "model": "NVIDIA GeForce RTX 4060 Ti",
            "memory_gb": 16,
            "cuda_version": "12.4",
            "platform": "CUDA",
            "supported_tasks": ["inference"],
            "max_concurrent_jobs": 1,
        }
    },
    {"gpu": {"model": "RTX 4090", "memory_gb": 24, "cuda_cores": 16384}},
    {"gpu": {"model": "RTX 3090"}},
    {"cpu": {"cores": 4}, "memory": {"gb": 16}},
]


def _http(base: str, key: str) -> httpx.Client:
    return httpx.Client(base_url=base, headers={"X-Api-Key": key}, timeout=30)


def test_every_capabilities_shape_registers_with_200(live_server: str, api: Api) -> None:
    for n, capabilities in enumerate(FIELD_CAPABILITIES):
        key = api.key("miner", f"field-{n}")
        with _http(live_server, key) as http:
            assert http.get("/v1/health").status_code == 200
            body = {"capabilities": capabilities, "concurrency": 1, "region": "eu-west"}
            response = http.post("/v1/miners/register", params={"miner_id": "cli-miner"}, json=body)
            assert response.status_code == 200, response.text
            assert isinstance(response.json(), dict)
            listed = http.get("/v1/marketplace/gpu/list").json()
            mine = [g for g in listed if g.get("miner_id") == f"field-{n}"]
            assert len(mine) == (0 if "cpu" in capabilities else 1), listed
    older = api.key("miner", "older")
    with _http(live_server, older) as http:
        body = {"gpus": [{"name": "Tesla T4", "memory_mb": 16384}]}
        response = http.post("/v1/miners/register", params={"miner_id": "x"}, json=body)
        assert response.status_code == 200, response.text


def test_the_whole_job_round_trip_of_the_deployed_clients(live_server: str, api: Api) -> None:
    miner_key = api.key("miner", "daemon")
    client_key = api.key("client", "alice")
    deposit(api, "alice", "100")
    with _http(live_server, miner_key) as miner, _http(live_server, client_key) as client:
        capabilities = {"gpu": {"model": "RTX 4090", "memory_gb": 24, "cuda_version": "12.4"}}
        registered = miner.post(
            "/v1/miners/register?miner_id=daemon", json={"capabilities": capabilities}
        )
        assert registered.status_code == 200, registered.text
        assert miner.post("/v1/miners/heartbeat?miner_id=daemon").status_code == 200
        beat = {
            "status": "ONLINE",
            "current_jobs": 0,
            "inflight": 0,
            "last_seen": "2026-01-01T00:00:00Z",
            "gpu_utilization": 37,
            "memory_used": 2048,
            "memory_total": 24576,
            "metadata": {"driver": "550"},
            "something_new": True,
        }
        assert miner.post("/v1/miners/heartbeat?miner_id=daemon", json=beat).status_code == 200

        # Nothing to do: 204 with no body, by POST and by GET (X-Miner-ID is informational).
        empty = miner.post("/v1/miners/poll", json={"max_wait_seconds": 0})
        assert (empty.status_code, empty.content) == (204, b"")
        assert miner.get("/v1/miners/poll", headers={"X-Miner-ID": "cli-miner"}).status_code == 204

        submitted = client.post(
            "/v1/jobs",
            json={
                "payload": {"type": "inference", "prompt": "hi", "model": "llama2-7b"},
                "ttl_seconds": 900,
                "constraints": {"gpu": "4090", "cuda": "12.0", "min_vram_gb": 16},
                "payment_amount": 5,
                "payment_currency": "AITBC",
            },
        )
        assert submitted.status_code == 201, submitted.text
        job_id = submitted.json()["job_id"]
        assert client.get(f"/v1/jobs/{job_id}/result").status_code == 425

        handed = miner.post("/v1/miners/poll", json={"max_wait_seconds": 5})
        assert handed.status_code == 200, handed.text
        assert {"job_id", "payload", "constraints"} <= set(handed.json())
        assert handed.json()["job_id"] == job_id

        status = client.get(f"/v1/jobs/{job_id}")
        assert status.status_code == 200
        assert {"job_id", "state", "assigned_miner_id", "requested_at", "expires_at", "error"} <= (
            set(status.json())
        )
        assert status.json()["assigned_miner_id"] == "daemon"
        assert client.get(f"/v1/jobs/{job_id}/result").status_code == 425

        done = miner.post(
            f"/v1/miners/{job_id}/result",
            json={"result": {"text": "hello"}, "metrics": {"tokens": 5}, "success": True},
        )
        assert done.status_code == 200, done.text
        result = client.get(f"/v1/jobs/{job_id}/result")
        assert result.status_code == 200, result.text

        receipt = client.get(f"/v1/jobs/{job_id}/receipt")
        assert receipt.status_code == 200, receipt.text
        explorer = client.get("/v1/explorer/receipts", params={"limit": 10, "job_id": job_id})
        assert explorer.status_code == 200, explorer.text
        history = client.get("/v1/jobs/history", params={"limit": 10, "status": "completed"})
        assert history.status_code == 200, history.text

        # A string result, and a failure in the daemon's words.
        for outcome in ("string", "fail"):
            job = client.post("/v1/jobs", json={"payload": {"prompt": "x"}, "ttl_seconds": 900})
            assert job.status_code == 201, job.text
            taken = miner.get("/v1/miners/poll")
            assert taken.status_code == 200, taken.text
            job_id = taken.json()["job_id"]
            if outcome == "string":
                posted = miner.post(f"/v1/miners/{job_id}/result", json={"result": "plain text"})
            else:
                posted = miner.post(
                    f"/v1/miners/{job_id}/fail",
                    json={"error_code": "oom", "error_message": "out of memory", "metrics": {}},
                )
            assert posted.status_code == 200, posted.text

        queued = client.post("/v1/jobs", json={"payload": {"prompt": "y"}, "ttl_seconds": 900})
        cancelled = client.post(f"/v1/jobs/{queued.json()['job_id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text

        earnings = miner.get(
            "/v1/miners/daemon/earnings",
            params={"from_time": "2000-01-01T00:00:00Z", "to_time": "2100-01-01T00:00:00Z"},
        )
        assert earnings.status_code == 200 and isinstance(earnings.json(), dict), earnings.text
        jobs = miner.get(
            "/v1/miners/daemon/jobs",
            params={"limit": 10, "status": "completed", "type": "inference", "min_reward": 0},
        )
        assert jobs.status_code == 200, jobs.text
        updated = miner.put(
            "/v1/miners/daemon/capabilities",
            json={"capabilities": {"gpu": {"model": "RTX 4090", "memory_gb": 24}}},
        )
        assert updated.status_code == 200, updated.text
        assert miner.delete("/v1/miners/daemon").status_code == 200


def test_a_miner_name_never_lets_a_key_act_as_another_miner(live_server: str, api: Api) -> None:
    mine, other = api.key("miner", "m-one"), api.key("miner", "m-two")
    caps = {"capabilities": {"gpu": {"model": "RTX 4090", "memory_gb": 24}}}
    with _http(live_server, mine) as one, _http(live_server, other) as two:
        assert one.post("/v1/miners/register?miner_id=m-one", json=caps).status_code == 200
        # The name is informational: m-two's key registers m-two, not m-one.
        assert two.post("/v1/miners/register?miner_id=m-one", json=caps).status_code == 200
        assert two.post("/v1/miners/heartbeat?miner_id=m-one").status_code == 200
        owners = {g["miner_id"] for g in one.get("/v1/marketplace/gpu/list").json()}
        assert owners == {"m-one", "m-two"}
        # Any miner id in a path means the key's own miner: m-two deregisters itself only.
        gone = two.delete("/v1/miners/m-one")
        assert (gone.status_code, gone.json()["miner_id"]) == (200, "m-two")
        assert (
            two.get("/v1/miners/m-one/earnings").json()
            == two.get("/v1/miners/m-two/earnings").json()
        )
        owners = {g["miner_id"] for g in one.get("/v1/marketplace/gpu/list").json()}
        assert owners == {"m-one"}


def test_a_long_poll_returns_as_soon_as_a_job_is_assigned(live_server: str, api: Api) -> None:
    miner_key = api.key("miner", "waiter")
    client_key = api.key("client", "bob")
    deposit(api, "bob", "100")
    with _http(live_server, miner_key) as miner, _http(live_server, client_key) as client:
        caps = {"capabilities": {"gpu": {"model": "RTX 4090", "memory_gb": 24}}}
        assert miner.post("/v1/miners/register", json=caps).status_code == 200
        answered: dict[str, Any] = {}

        def wait() -> None:
            started = time.monotonic()
            response = miner.post("/v1/miners/poll", json={"max_wait_seconds": 20})
            answered.update(status=response.status_code, body=response.json(), at=started)
            answered["took"] = time.monotonic() - started

        waiter = threading.Thread(target=wait)
        waiter.start()
        time.sleep(0.5)  # the poll is waiting before the job exists
        job = client.post("/v1/jobs", json={"payload": {"n": 1}, "ttl_seconds": 900})
        assert job.status_code == 201, job.text
        waiter.join(timeout=25)
        assert answered["status"] == 200
        assert answered["body"]["job_id"] == job.json()["job_id"]
        assert answered["took"] < 10  # woken, not timed out at 20 s

        started = time.monotonic()
        nothing = miner.get("/v1/miners/poll", params={"max_wait_seconds": 1})
        assert nothing.status_code == 204
        assert time.monotonic() - started >= 0.9  # it did wait, and returned when the wait ran out
