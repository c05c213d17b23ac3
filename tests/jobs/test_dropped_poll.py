"""A long poll whose miner hung up takes no job: the job stays assigned for the miner's next
poll, which it reaches. Served over real
HTTP, since only a real connection can close under a waiting poll."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI

from tests.jobs.slice_support import job, polled, report_result, submitted
from tests.support.api import Api
from tests.support.market import deposit


def _open_poll(base: str, key: str, method: str) -> socket.socket:
    """Send a long poll (25 s) on a connection of its own and leave it waiting."""
    address = urlsplit(base)
    sock = socket.create_connection((address.hostname, address.port))
    if method == "POST":
        body = json.dumps({"max_wait_seconds": 25}).encode()
        head = (
            f"POST /v1/miners/poll HTTP/1.1\r\nHost: x\r\nX-Api-Key: {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
    else:
        body = b""
        head = (
            "GET /v1/miners/poll?max_wait_seconds=25 HTTP/1.1\r\n"
            f"Host: x\r\nX-Api-Key: {key}\r\n\r\n"
        )
    sock.sendall(head.encode() + body)
    return sock


def _until(condition: Callable[[], bool], seconds: float) -> bool:
    for _ in range(int(seconds * 100)):
        if condition():
            return True
        threading.Event().wait(0.01)
    return False


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_a_poll_whose_miner_hung_up_takes_no_job(
    api: Api, app: FastAPI, live_server: str, method: str
) -> None:
    miner = api.key("miner", "m1")
    client = api.key("client", "c1")
    deposit(api, "c1", "100")
    api.register_gpu(miner, name="RTX 4090", price_per_hour="3.6")
    waiting = app.state.signals._waiting

    sock = _open_poll(live_server, miner, method)
    assert _until(lambda: "m1" in waiting, 5), "the poll never waited"
    sock.close()
    # A poll that does not watch its connection would still be waiting here.
    _until(lambda: "m1" not in waiting, 1)

    created = submitted(api, client, constraints={"gpu_model": "RTX 4090"})
    assert job(api, client, created["job_id"])["state"] == "assigned"

    # The miner, back, gets the job; it runs from then on.
    api.clock.advance(seconds=10)
    handed = polled(api, miner)
    assert handed["job_id"] == created["job_id"]
    assert job(api, client, created["job_id"])["state"] == "running"
    api.clock.advance(seconds=5)
    finished = report_result(api, miner, created["job_id"], {"ok": True}).json()
    assert finished["state"] == "completed"
