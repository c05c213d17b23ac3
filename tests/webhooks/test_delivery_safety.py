"""A delivery reaches only the address its check passed, within its timeout, and a URL that
cannot be sent is refused when the webhook is made (or logged as a failed attempt)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi import FastAPI

from aitbc.config import Settings
from aitbc.dispatcher import Dispatcher
from aitbc.kit.clock import ManualClock
from aitbc.webhooks.service import Attempt, Webhook
from tests.support.api import Api
from tests.support.market import Market
from tests.support.receiver import receiving

PUBLIC = "93.184.216.34"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"webhook_timeout_seconds": 0.5})


@pytest.mark.parametrize(
    "url",
    [
        "http://a..b/hook",
        "http://.example.com/hook",
        "http://" + "a" * 64 + ".com/hook",
        f"http://{PUBLIC}/a\x7f",
        f"http://{PUBLIC}/a b",
    ],
)
def test_a_url_that_cannot_be_sent_is_refused_when_the_webhook_is_made(
    api: Api, market: Market, url: str
) -> None:
    answer = api.call("POST", "/v1/webhooks", market.client("c1"), json={"url": url})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == "webhook_url_not_allowed"


def _hook(url: str) -> Webhook:
    now = datetime.now(UTC)
    return Webhook(
        id="whk_1", owner_id="c1", url=url, types=(), secret="whsec_x", enabled=True,
        disabled_reason=None, created_at=now, cursor=0, next_attempt_at=now, failures=0,
        failing_since=None, last_error=None, delivered=0,
    )  # fmt: skip


def _post(settings: Settings, url: str) -> tuple[float, Attempt]:
    dispatcher = Dispatcher(None, ManualClock(), settings)  # type: ignore[arg-type]

    async def go() -> tuple[float, Attempt]:
        started = time.monotonic()
        try:
            attempt = await dispatcher.post(_hook(url), {"id": 1, "type": "account.deposit"}, 1)
        finally:
            await dispatcher.close()
        return time.monotonic() - started, attempt

    return asyncio.run(go())


def test_a_stored_url_that_cannot_be_sent_is_a_failed_attempt(settings: Settings) -> None:
    """A webhook made before its URL was checked this closely fails its posts, logged."""
    _, attempt = _post(settings, f"http://{PUBLIC}/a\x7f")
    assert not attempt.ok and attempt.error


@contextmanager
def _dripping(seconds: float) -> Iterator[str]:
    """A receiver that sends its 200 a few bytes at a time over ``seconds``."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        conn, _ = server.accept()
        conn.recv(65536)
        answer = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
        for i in range(len(answer)):
            try:
                conn.sendall(answer[i : i + 1])
            except OSError:
                break
            time.sleep(seconds / len(answer))
        conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    finally:
        server.close()


def test_a_post_ends_within_its_timeout_however_slowly_the_receiver_answers(
    settings: Settings,
) -> None:
    private = settings.model_copy(update={"webhook_allow_private": True})
    with _dripping(3) as url:
        took, attempt = _post(private, url)
    assert took < 2, took  # the webhook's lease (2 x 0.5 s + 5 s) outlives it
    assert not attempt.ok and attempt.error == "No answer within 0.5 s"


def test_a_name_that_resolves_elsewhere_after_the_check_is_not_posted_to(
    api: Api, app: FastAPI, market: Market, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check sees a public address, a second look-up would give 127.0.0.1: the post
    goes to the checked address and the name is looked up once."""
    real = socket.getaddrinfo
    looked_up = []

    def resolve(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("rebind.example", b"rebind.example"):
            looked_up.append(host)
            address = PUBLIC if len(looked_up) % 2 == 1 else "127.0.0.1"
            return real(address, port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    assert app.state.settings.webhook_allow_private is False
    with receiving() as receiver:
        renter = market.client("c1")
        url = f"http://rebind.example:{receiver.port}/hook"
        made = api.call("POST", "/v1/webhooks", renter, json={"url": url})
        assert made.status_code == 201, made.text
        looked_up.clear()
        tested = api.call("POST", f"/v1/webhooks/{made.json()['webhook_id']}/test", renter)
        assert tested.status_code == 200, tested.text
        assert receiver.got == []
        assert tested.json()["ok"] is False
        assert len(looked_up) == 1
