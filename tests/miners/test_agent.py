"""`aitbc miner run`, the miner agent we ship, against a real server over HTTP: with a fake
executor (a small shell command or a local HTTP endpoint), GPUs from flags or from a fake
`nvidia-smi`, one cycle with `--once`, and a long-running agent stopped with SIGTERM."""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner, Result
from sqlalchemy import text

from aitbc.agent.executors import HttpExecutor, Outcome
from aitbc.agent.gpus import parse_smi
from aitbc.agent.runner import Agent, AgentConfig
from aitbc.cli import config as cli_config
from aitbc.cli.main import cli
from tests.support import db
from tests.support.api import ADMIN_KEY, Api

GPUS = json.dumps([{"model": "RTX 4090", "memory_gb": 24, "price_per_hour": "0.5"}])
# Doubles the payload's "n": a fake model that reads its job on stdin.
DOUBLER = (
    f"{sys.executable} -c \"import json,sys; n=json.load(sys.stdin)['n']; "
    "print(json.dumps({'doubled': n * 2}))\""
)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(cli_config, "DEFAULT_CONFIG_FILE", tmp_path / "absent" / "config.yaml")
    monkeypatch.delenv("AITBC_URL", raising=False)
    monkeypatch.delenv("AITBC_API_KEY", raising=False)


@pytest.fixture
def client_key(api: Api) -> str:
    key = api.key("client", "renter")
    deposited = api.call(
        "POST",
        "/v1/admin/accounts/renter/deposit",
        ADMIN_KEY,
        json={"amount": "100"},
        params={"create": "true"},
    )
    assert deposited.status_code == 201, deposited.text
    return key


def once(live_server: str, key: str, *args: str) -> Result:
    flags = ["--url", live_server, "--api-key", key, "miner", "run", "--once"]
    return CliRunner().invoke(cli, [*flags, *args])


def submit(api: Api, key: str, payload: dict[str, Any]) -> str:
    response = api.call("POST", "/v1/jobs", key, json={"payload": payload, "ttl_seconds": 900})
    assert response.status_code == 201, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def job(api: Api, key: str, job_id: str) -> dict[str, Any]:
    response = api.call("GET", f"/v1/jobs/{job_id}", key)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def my_gpus(api: Api, miner_id: str) -> list[dict[str, Any]]:
    response = api.call("GET", "/v1/marketplace/gpu/list", params={"miner_id": miner_id})
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()
    return listed


def wait_for(check: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting")
        time.sleep(0.05)


def test_once_registers_takes_one_job_runs_it_and_reports_the_result(
    live_server: str, api: Api, client_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    miner_key = api.key("miner", "host-1")
    idle = once(live_server, miner_key, "--gpus", GPUS, "--exec", DOUBLER)
    assert idle.exit_code == 0, idle.output
    assert "stopped after 0 job(s)" in idle.output
    [gpu] = my_gpus(api, "host-1")
    assert (gpu["model"], gpu["memory_gb"], gpu["status"]) == ("RTX 4090", 24, "available")

    job_id = submit(api, client_key, {"n": 21})
    caplog.clear()
    with caplog.at_level(logging.INFO):
        ran = once(live_server, miner_key, "--gpus", GPUS, "--exec", DOUBLER)
    assert ran.exit_code == 0, ran.output
    said = [r.getMessage() for r in caplog.records]
    assert f"job {job_id} started" in said
    assert any(
        re.fullmatch(rf"job {job_id} finished in \d+\.\d s: a result of 15 bytes", m) for m in said
    ), said
    assert not [r for r in caplog.records if r.name == "httpx"]  # no line per request
    assert "stopped after 1 job(s)" in ran.output
    done = job(api, client_key, job_id)
    assert (done["state"], done["assigned_miner_id"]) == ("completed", "host-1"), done
    result = api.call("GET", f"/v1/jobs/{job_id}/result", client_key)
    assert result.status_code == 200, result.text
    assert result.json()["result"] == {"doubled": 42}
    # The job's booking ended with it: the GPU is free again.
    assert my_gpus(api, "host-1")[0]["status"] == "available"


def test_a_failing_command_fails_the_job_with_its_error_output(
    live_server: str, api: Api, client_key: str
) -> None:
    miner_key = api.key("miner", "host-2")
    assert once(live_server, miner_key, "--gpus", GPUS, "--exec", "true").exit_code == 0
    job_id = submit(api, client_key, {"n": 1})
    failing = "echo 'CUDA out of memory' >&2; exit 3"
    ran = once(live_server, miner_key, "--gpus", GPUS, "--exec", failing)
    assert ran.exit_code == 0, ran.output
    failed = job(api, client_key, job_id)
    assert failed["state"] == "failed", failed
    assert "exit_3" in failed["error"] and "CUDA out of memory" in failed["error"], failed


def test_a_text_result_is_posted_as_a_string(live_server: str, api: Api, client_key: str) -> None:
    miner_key = api.key("miner", "host-3")
    assert once(live_server, miner_key, "--gpus", GPUS, "--exec", "true").exit_code == 0
    job_id = submit(api, client_key, {"prompt": "hi"})
    ran = once(live_server, miner_key, "--gpus", GPUS, "--exec", "cat >/dev/null; echo hello")
    assert ran.exit_code == 0, ran.output
    result = api.call("GET", f"/v1/jobs/{job_id}/result", client_key)
    assert (result.status_code, result.json()["result"]) == (200, "hello"), result.text


@pytest.fixture
def model_server() -> Iterator[tuple[str, list[Any]]]:
    """A local HTTP model endpoint: answers `{"echo": payload}` and keeps what it was sent."""
    received: list[Any] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            received.append((self.headers["X-Aitbc-Job-Id"], body))
            answer = json.dumps({"echo": body}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args: Any) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/generate", received
    server.shutdown()
    server.server_close()


def test_an_http_executor_gets_the_payload_and_its_answer_is_the_result(
    live_server: str, api: Api, client_key: str, model_server: tuple[str, list[Any]]
) -> None:
    url, received = model_server
    miner_key = api.key("miner", "host-4")
    assert once(live_server, miner_key, "--gpus", GPUS, "--http", url).exit_code == 0
    job_id = submit(api, client_key, {"prompt": "a cat"})
    ran = once(live_server, miner_key, "--gpus", GPUS, "--http", url)
    assert ran.exit_code == 0, ran.output
    assert received == [(job_id, {"prompt": "a cat"})]
    result = api.call("GET", f"/v1/jobs/{job_id}/result", client_key)
    assert result.json()["result"] == {"echo": {"prompt": "a cat"}}, result.text


def test_an_http_executor_runs_the_next_job_after_one_was_stopped(
    model_server: tuple[str, list[Any]],
) -> None:
    """A stop (the job cancelled, preempted or its booking run out) ends that job only: the
    host goes on serving jobs."""
    url, received = model_server
    executor = HttpExecutor(url, timeout=5)
    assert executor.run("job_1", {"n": 1}).ok
    executor.stop()
    second = executor.run("job_2", {"n": 2})
    assert second.ok, second
    assert [job for job, _ in received] == ["job_1", "job_2"]


SMI_OUTPUT = """0, NVIDIA GeForce RTX 4090, 24564, 37, 2048, 61
1, NVIDIA A100-SXM4-80GB, 81920, [N/A], 512, 45
"""


def test_nvidia_smi_lines_are_read_with_missing_figures_left_out() -> None:
    first, second = parse_smi(SMI_OUTPUT + "garbage line\n")
    assert (first.slot, first.name, first.memory_total_mb) == (
        "0",
        "NVIDIA GeForce RTX 4090",
        24564,
    )
    assert (first.utilization_pct, first.memory_used_mb, first.temperature_c) == (37, 2048, 61)
    assert (second.name, second.utilization_pct, second.memory_used_mb) == (
        "NVIDIA A100-SXM4-80GB",
        None,
        512,
    )


def test_gpus_come_from_nvidia_smi_when_it_is_there_with_their_health(
    live_server: str, api: Api, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    fake = tmp_path / "bin" / "nvidia-smi"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\ncat <<'EOF'\n{SMI_OUTPUT}EOF\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    miner_key = api.key("miner", "smi-host")
    ran = once(live_server, miner_key, "--price-per-hour", "0.8", "--exec", "true")
    assert ran.exit_code == 0, ran.output
    listed = {g["model"]: g for g in my_gpus(api, "smi-host")}
    assert set(listed) == {"NVIDIA GeForce RTX 4090", "NVIDIA A100-SXM4-80GB"}
    assert listed["NVIDIA A100-SXM4-80GB"]["memory_gb"] == 80
    assert listed["NVIDIA GeForce RTX 4090"]["base_price_per_hour"] == "0.800000"
    # The closing heartbeat of the cycle carried each GPU's figures.
    details = api.call("GET", f"/v1/marketplace/gpu/{listed['NVIDIA GeForce RTX 4090']['gpu_id']}")
    health = details.json()["health"]
    assert (health["utilization_pct"], health["temperature_c"]) == (37, 61), health
    assert health["memory_used_gb"] == 2.0


def test_without_nvidia_smi_or_gpus_the_agent_says_so(live_server: str, api: Api) -> None:
    ran = once(live_server, api.key("miner", "bare"), "--exec", "true")
    assert ran.exit_code != 0
    assert "no GPU found" in str(ran.exception) + ran.output


def test_exactly_one_executor_is_required(live_server: str, api: Api) -> None:
    key = api.key("miner", "m")
    neither = once(live_server, key, "--gpus", GPUS)
    both = once(live_server, key, "--gpus", GPUS, "--exec", "true", "--http", "http://x")
    for ran in (neither, both):
        assert ran.exit_code == 2 and "exactly one of --exec" in ran.output, ran.output


# -- a long-running agent, in its own process ------------------------------------------------


def start_agent(live_server: str, key: str, command: str, *extra: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "aitbc", "--url", live_server, "--api-key", key, "miner"]
    argv += ["run", "--gpus", GPUS, "--exec", command, "--heartbeat-seconds", "0.2", *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(agent: subprocess.Popen[str]) -> tuple[int, str, float]:
    began = time.monotonic()
    agent.send_signal(signal.SIGTERM)
    out, _ = agent.communicate(timeout=20)
    return agent.returncode, out, time.monotonic() - began


def test_a_running_agent_serves_jobs_as_they_come_and_stops_on_sigterm(
    live_server: str, api: Api, client_key: str
) -> None:
    miner_key = api.key("miner", "daemon-host")
    agent = start_agent(live_server, miner_key, DOUBLER, "--poll-wait", "20")
    try:
        wait_for(lambda: len(my_gpus(api, "daemon-host")) == 1)
        jobs = [submit(api, client_key, {"n": n}) for n in (1, 2, 3)]
        wait_for(lambda: all(job(api, client_key, j)["state"] == "completed" for j in jobs))
        for n, job_id in zip((1, 2, 3), jobs, strict=True):
            result = api.call("GET", f"/v1/jobs/{job_id}/result", client_key).json()["result"]
            assert result == {"doubled": n * 2}
    finally:
        # Idle in a 20-second long poll: SIGTERM ends it at once, not when the poll would.
        code, out, took = stop(agent)
    assert code == 0, out
    assert took < 5, (took, out)
    assert "stopped after 3 job(s)" in out
    # Its last word was "offline": nothing of it is offered any more.
    assert my_gpus(api, "daemon-host")[0]["status"] == "offline"


def test_sigterm_during_a_job_gives_it_the_grace_then_fails_it(
    live_server: str, api: Api, client_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="aitbc.access")
    miner_key = api.key("miner", "slow-host")
    agent = start_agent(live_server, miner_key, "sleep 60", "--stop-grace", "0.5")
    try:
        wait_for(lambda: len(my_gpus(api, "slow-host")) == 1)
        job_id = submit(api, client_key, {"n": 1})
        wait_for(lambda: job(api, client_key, job_id)["state"] == "running")
        # The agent took the job as a claim and confirmed it: past the claim's window the
        # sweeper leaves it with the agent.
        confirmed = f"POST /v1/miners/jobs/{job_id}/start 200"
        wait_for(lambda: any(confirmed in r.getMessage() for r in caplog.records))
        assert _claim_of(api, job_id) is None
        api.clock.advance(seconds=31)
        api.client.app.state.sweeper.run_once()  # type: ignore[attr-defined]
        assert job(api, client_key, job_id)["state"] == "running"
    finally:
        code, out, took = stop(agent)
    assert code == 0, out
    assert took < 10, (took, out)
    failed = job(api, client_key, job_id)
    assert failed["state"] == "failed", failed
    assert "agent_stopped" in failed["error"], failed


def test_sigterm_lets_a_job_that_finishes_within_the_grace_report_its_result(
    live_server: str, api: Api, client_key: str
) -> None:
    miner_key = api.key("miner", "tidy-host")
    command = f"sleep 1; {DOUBLER}"
    agent = start_agent(live_server, miner_key, command, "--stop-grace", "30")
    try:
        wait_for(lambda: len(my_gpus(api, "tidy-host")) == 1)
        job_id = submit(api, client_key, {"n": 5})
        # Running once the agent has confirmed it (a stop before that leaves it unclaimed).
        wait_for(lambda: job(api, client_key, job_id)["state"] == "running")
        wait_for(lambda: _claim_of(api, job_id) is None)
    finally:
        code, out, _ = stop(agent)
    assert code == 0, out
    done = job(api, client_key, job_id)
    assert done["state"] == "completed", (done, out)


def _claim_of(api: Api, job_id: str) -> object:
    """When the job's claim runs out (None once confirmed): read from the database, only to
    know when the agent's confirmation has arrived."""
    with db.engine(api.client.app).connect() as conn:
        found = conn.execute(
            text("SELECT claim_expires_at FROM jobs WHERE id = :j"), {"j": job_id}
        ).one()
        return found[0]


def test_a_job_cancelled_by_its_client_is_stopped_at_once_and_the_next_one_runs(
    live_server: str, api: Api, client_key: str
) -> None:
    miner_key = api.key("miner", "heeding-host")
    # Sleeps a minute for n = 1, answers at once otherwise.
    command = (
        f"{sys.executable} -c \"import json,sys,time; n=json.load(sys.stdin)['n']; "
        'time.sleep(60 if n == 1 else 0); print(json.dumps({"n": n}))"'
    )
    agent = start_agent(live_server, miner_key, command, "--poll-wait", "5", "--stop-grace", "1")
    try:
        wait_for(lambda: len(my_gpus(api, "heeding-host")) == 1)
        slow = submit(api, client_key, {"n": 1})
        wait_for(lambda: job(api, client_key, slow)["state"] == "running")
        cancelled = api.call("POST", f"/v1/jobs/{slow}/cancel", client_key)
        assert cancelled.status_code == 200, cancelled.text
        quick = submit(api, client_key, {"n": 2})
        began = time.monotonic()
        wait_for(lambda: job(api, client_key, quick)["state"] == "completed")
        assert time.monotonic() - began < 20  # not after the first job's minute
    finally:
        code, out, _ = stop(agent)
    assert code == 0, out
    # Stopped while it ran, or (heard first) never begun.
    assert f"job {slow} was cancelled by its client" in out
    assert job(api, client_key, slow)["state"] == "cancelled"


class _Counting:
    """An executor that counts what it was asked to run."""

    def __init__(self) -> None:
        self.ran: list[str] = []

    def run(self, job_id: str, payload: dict[str, Any]) -> Outcome:
        self.ran.append(job_id)
        return Outcome(True, result={"ok": True})

    def stop(self) -> None:
        pass


def test_a_job_heard_cancelled_before_it_reached_the_agent_is_not_run() -> None:
    executor = _Counting()
    agent = Agent(httpx.Client(base_url="http://127.0.0.1:9"), executor, AgentConfig())
    agent.heard({"type": "job.cancelled", "object_id": "job_1", "data": {}})
    agent.work({"job_id": "job_1", "payload": {}})  # its poll answer came after the event
    assert executor.ran == []
    assert agent.jobs_done == 0


class _Stoppable:
    """An executor whose job runs until it is stopped, failing then as a killed process
    does."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.stopped = threading.Event()

    def run(self, job_id: str, payload: dict[str, Any]) -> Outcome:
        self.started.set()
        if not self.stopped.wait(10):
            return Outcome(True, result={"ran": "to its end"})
        return Outcome(False, error_code="exit_-15", error_message="terminated")

    def stop(self) -> None:
        self.stopped.set()


def test_a_preempted_booking_stops_its_job_within_the_notice_and_is_not_a_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    posted: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        posted.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json={})

    client = httpx.Client(base_url="http://coordinator", transport=httpx.MockTransport(answer))
    executor = _Stoppable()
    agent = Agent(client, executor, AgentConfig())
    working = threading.Thread(target=agent.work, args=({"job_id": "job_1", "payload": {}},))
    with caplog.at_level(logging.INFO, logger="aitbc.agent"):
        working.start()
        assert executor.started.wait(5)
        notice = {"gpu_taken_at": "2026-12-05T10:10:30Z", "notice_ends_at": "2026-12-05T10:10:30Z"}
        agent.heard(
            {
                "type": "booking.preempted",
                "object_id": "bkg_1",
                "data": {"booking_id": "bkg_1", "gpu_id": "gpu_1", "job_id": "job_1",
                         "status": "preempted", "preemption": notice},
            }
        )  # fmt: skip
        working.join(5)
    assert not working.is_alive() and executor.stopped.is_set()
    assert posted == []  # neither a result nor a failure: the coordinator requeued it
    assert agent.jobs_done == 1
    assert "job job_1 was preempted and stopped" in caplog.text
    # a notice for a booking whose job is not running here stops nothing
    agent.heard({"type": "booking.preempted", "object_id": "bkg_2", "data": {"job_id": "x"}})


def test_a_job_whose_booking_ran_out_is_stopped_and_reported_failed(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Its booked time is over and the GPU is the next renter's: the agent stops the job at
    once and says why, rather than run it on a GPU nobody pays it for."""
    posted: list[tuple[str, Any]] = []

    def answer(request: httpx.Request) -> httpx.Response:
        posted.append((f"{request.method} {request.url.path}", json.loads(request.content)))
        return httpx.Response(200, json={})

    client = httpx.Client(base_url="http://coordinator", transport=httpx.MockTransport(answer))
    executor = _Stoppable()
    agent = Agent(client, executor, AgentConfig())
    agent.heard({"type": "booking.completed", "object_id": "bkg_0", "data": {"job_id": "job_1"}})
    working = threading.Thread(target=agent.work, args=({"job_id": "job_1", "payload": {}},))
    with caplog.at_level(logging.INFO, logger="aitbc.agent"):
        working.start()
        assert executor.started.wait(5)
        assert not executor.stopped.is_set()  # heard before it ran: nothing was stopped
        other = {"booking_id": "bkg_2", "gpu_id": "gpu_1", "job_id": None, "status": "completed"}
        agent.heard({"type": "booking.completed", "object_id": "bkg_2", "data": other})
        assert not executor.stopped.is_set()  # another booking of the GPU ended
        ended = {"booking_id": "bkg_1", "gpu_id": "gpu_1", "job_id": "job_1", "status": "completed"}
        agent.heard({"type": "booking.completed", "object_id": "bkg_1", "data": ended})
        working.join(5)
    assert not working.is_alive() and executor.stopped.is_set()
    [(path, body)] = posted
    assert path == "POST /v1/miners/job_1/fail"
    assert body["error_code"] == "booking_ended"
    assert "job job_1: its booking bkg_1 ran out; stopping it" in caplog.text


def test_a_job_that_finished_as_its_booking_ran_out_reports_its_result() -> None:
    posted: list[str] = []

    def answer(request: httpx.Request) -> httpx.Response:
        posted.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json={})

    client = httpx.Client(base_url="http://coordinator", transport=httpx.MockTransport(answer))

    class FinishesAsItIsHeard:
        def run(self, job_id: str, payload: dict[str, Any]) -> Outcome:
            ended = {"booking_id": "bkg_1", "job_id": job_id, "status": "completed"}
            agent.heard({"type": "booking.completed", "object_id": "bkg_1", "data": ended})
            return Outcome(True, result={"done": True})

        def stop(self) -> None:
            pass

    agent = Agent(client, FinishesAsItIsHeard(), AgentConfig())
    agent.work({"job_id": "job_1", "payload": {}})
    assert posted == ["POST /v1/miners/job_1/result"]


def test_a_preemption_missed_in_the_events_is_heard_in_a_heartbeats_answer() -> None:
    posted: list[str] = []
    notice = {"booking_id": "bkg_1", "gpu_id": "gpu_1", "job_id": "job_1"}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/miners/heartbeat":
            return httpx.Response(200, json={"miner_id": "m", "preemptions": [notice]})
        posted.append(f"{request.method} {request.url.path}")
        return httpx.Response(200, json={})

    client = httpx.Client(base_url="http://coordinator", transport=httpx.MockTransport(answer))
    executor = _Stoppable()
    agent = Agent(client, executor, AgentConfig(read_gpus=lambda: None))
    agent.heartbeat()  # no job running: nothing to stop
    assert not executor.stopped.is_set()
    working = threading.Thread(target=agent.work, args=({"job_id": "job_1", "payload": {}},))
    working.start()
    assert executor.started.wait(5)
    agent.heartbeat()
    agent.heartbeat()  # heard again while it stops: still one stop
    working.join(5)
    assert not working.is_alive() and executor.stopped.is_set()
    assert posted == []  # neither a result nor a failure: the coordinator requeued it
    assert agent.jobs_done == 1


def test_a_job_cancelled_between_the_poll_and_its_confirmation_is_said_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/miners/poll":
            return httpx.Response(200, json={"job_id": "job_1", "payload": {}})
        refusal = {"error": "job_not_running", "detail": "This job is cancelled."}
        return httpx.Response(409, json=refusal)  # the confirmation

    client = httpx.Client(base_url="http://coordinator", transport=httpx.MockTransport(answer))
    agent = Agent(client, _Stoppable(), AgentConfig(read_gpus=lambda: None))
    with caplog.at_level(logging.INFO, logger="aitbc.agent"):
        assert agent.poll(0) is None
    assert "job job_1 was cancelled by its client before it began" in caplog.text
