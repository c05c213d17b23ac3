"""A node told to stop (SIGTERM) drains: readiness turns 503 at once, waiting long polls are
answered (204) instead of holding the shutdown for their wait, and the process exits within
its grace."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from fastapi import FastAPI

from aitbc.app import drain
from tests.support.api import ADMIN_KEY, Api
from tests.support.responses import assert_error
from tests.support.waiting import free_port, until


def _poll_in_background(base: str, key: str) -> tuple[threading.Thread, list[tuple[int, float]]]:
    """A 25-second long poll on a thread of its own: its status and how long it took."""
    answers: list[tuple[int, float]] = []

    def poll() -> None:
        started = time.monotonic()
        response = httpx.post(
            f"{base}/v1/miners/poll",
            headers={"X-Api-Key": key},
            json={"max_wait_seconds": 25},
            timeout=40,
        )
        answers.append((response.status_code, time.monotonic() - started))

    thread = threading.Thread(target=poll)
    thread.start()
    return thread, answers


def test_draining_turns_readiness_503_and_answers_waiting_polls(
    api: Api, app: FastAPI, live_server: str
) -> None:
    miner = api.key("miner", "m1")
    api.register_gpu(miner, name="RTX 4090")
    waiting, answers = _poll_in_background(live_server, miner)
    until(lambda: "m1" in app.state.signals._waiting, 5, "the poll to wait")
    assert api.call("GET", "/health/ready").status_code == 200

    drain(app)

    waiting.join(10)
    assert [status for status, _ in answers] == [204]
    assert answers[0][1] < 10  # not the poll's 25 s
    assert_error(api.call("GET", "/health/ready"), 503, "draining")
    assert api.call("GET", "/health/live").status_code == 200
    assert api.call("GET", "/health").status_code == 200  # the miners' check: still alive
    # A poll arriving now looks once and does not wait.
    started = time.monotonic()
    assert (
        api.call("POST", "/v1/miners/poll", miner, json={"max_wait_seconds": 25}).status_code == 204
    )
    assert time.monotonic() - started < 5


def test_sigterm_answers_the_waiting_poll_and_the_server_exits(tmp_path: Path) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = os.environ | {"AITBC_ADMIN_KEY": ADMIN_KEY, "AITBC_SWEEP_INTERVAL_SECONDS": "60"}
    env.pop("AITBC_DATABASE_URL", None)
    argv = [sys.executable, "-m", "aitbc", "serve", "--port", str(port)]
    argv += ["--database-url", f"sqlite:///{tmp_path / 'drain.db'}"]
    server = subprocess.Popen(argv, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, env=env)
    try:
        until(lambda: _answers(f"{base}/health"), 30, "the server")
        admin = {"X-Api-Key": ADMIN_KEY}
        made = httpx.post(
            f"{base}/v1/admin/api-keys", headers=admin, json={"role": "miner", "owner_id": "m1"}
        )
        assert made.status_code == 201, made.text
        miner = made.json()["key"]
        registered = httpx.post(
            f"{base}/v1/miners/register",
            headers={"X-Api-Key": miner},
            json={"capabilities": {"gpus": [{"name": "RTX 4090", "memory_gb": 24}]}},
        )
        assert registered.status_code == 200, registered.text
        waiting, answers = _poll_in_background(base, miner)
        time.sleep(0.5)  # the poll is waiting on the server (no other way to see it from here)
        stopped_at = time.monotonic()
        server.send_signal(signal.SIGTERM)
        waiting.join(15)
        server.wait(15)
        took = time.monotonic() - stopped_at
    finally:
        if server.poll() is None:
            server.kill()
        _, err = server.communicate(timeout=10)
    assert [status for status, _ in answers] == [204], err.decode()
    assert server.returncode == 0, err.decode()
    assert took < 10, took  # not the poll's 25 s


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.TransportError:
        return False
