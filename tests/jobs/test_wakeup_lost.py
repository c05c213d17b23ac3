"""A node that stops hearing job assignments (its PostgreSQL LISTEN connection lost) makes the
connection again, says so in its log and its readiness, and no waiting poll misses a job: a
poll whose wait runs out looks once more before it answers 204."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI

from aitbc.jobs.wakeup import CHANNEL
from aitbc.store.query import Query
from aitbc.store.signals import Signals
from aitbc.store.store import Store
from tests.jobs.slice_support import job, submitted
from tests.support.api import PG_URL, Api
from tests.support.market import deposit
from tests.support.waiting import until

_TERMINATE = Query("SELECT pg_terminate_backend($1)")
_NOTIFY = Query(f"SELECT pg_notify('{CHANNEL}', $1)")


async def _until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    for _ in range(int(seconds * 100)):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


def test_a_lost_listening_connection_is_made_again_and_heard_on(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    if not PG_URL:
        pytest.skip("LISTEN is PostgreSQL's")
    failures = 2

    async def scenario() -> None:
        nonlocal failures
        store = Store(database_url)
        await store.open()
        signals = Signals()

        async def connect() -> Any:  # the database refuses the first two attempts
            nonlocal failures
            if failures:
                failures -= 1
                raise OSError("connection refused")
            return await store.connect_raw()

        listening = asyncio.create_task(signals.listen(connect, first_delay=0.01))
        try:
            await _until(lambda: signals.listening)
            assert failures == 0
            first = signals._listener.get_server_pid()
            await store.fetchrow(_TERMINATE, first)
            await _until(lambda: signals.listening and signals._listener.get_server_pid() != first)
            with signals.waiting("m1") as assigned:
                await store.fetchrow(_NOTIFY, "m1")
                await asyncio.wait_for(assigned.wait(), 5)
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)
            await signals.close()
            await store.close()

    with caplog.at_level(logging.WARNING, logger="aitbc.wakeup"):
        asyncio.run(scenario())
    said = [record.getMessage() for record in caplog.records]
    assert sum("cannot listen for job assignments" in line for line in said) == 2
    assert any("lost the connection listening for job assignments" in line for line in said)
    assert sum("listening for job assignments and events again" in line for line in said) == 2


def test_readiness_says_how_polls_hear_of_their_jobs(api: Api) -> None:
    if not PG_URL:
        assert api.call("GET", "/health/ready").json()["job_wakeups"] == "local"
        return
    until(lambda: api.call("GET", "/health/ready").json()["job_wakeups"] == "listening")


def _poll(base: str, key: str, seconds: int, answers: list[tuple[int, Any]]) -> None:
    address = urlsplit(base)
    with socket.create_connection((address.hostname, address.port)) as sock:
        body = json.dumps({"max_wait_seconds": seconds}).encode()
        sock.sendall(
            f"POST /v1/miners/poll HTTP/1.1\r\nHost: x\r\nX-Api-Key: {key}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n".encode()
            + body
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, payload = data.partition(b"\r\n\r\n")
    status = int(head.split()[1])
    answers.append((status, json.loads(payload) if status == 200 else None))


def test_a_poll_that_was_not_woken_finds_its_job_when_its_wait_runs_out(
    api: Api, app: FastAPI, live_server: str
) -> None:
    miner = api.key("miner", "m1")
    client = api.key("client", "c1")
    deposit(api, "c1", "100")
    api.register_gpu(miner, name="RTX 4090", price_per_hour="3.6")
    deafen(app)
    answers: list[tuple[int, Any]] = []
    waiting = threading.Thread(target=_poll, args=(live_server, miner, 1, answers))
    waiting.start()
    until(lambda: "m1" in app.state.signals._waiting, 5, "the poll to wait")
    created = submitted(api, client, constraints={"gpu_model": "RTX 4090"})
    waiting.join(10)
    assert answers == [(200, answers[0][1])]
    assert answers[0][1]["job_id"] == created["job_id"]
    assert job(api, client, created["job_id"])["state"] == "running"


def deafen(app: FastAPI) -> None:
    """This node no longer hears assignments: as with a LISTEN connection lost."""
    app.state.signals.wake = lambda miner_id: None  # what the LISTEN connection calls
    app.state.store._local.clear()  # SQLite: this process's notifications
