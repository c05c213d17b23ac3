"""What the server bounds by itself on a connection, over real sockets: a connection that
sends nothing is closed after the keep-alive timeout, one whose request head trickles in is
closed after the header timeout; a request that arrives in time is answered."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn
from fastapi import FastAPI

from aitbc.http.protocol import BoundedHttp

LIMIT = 1.0  # both timeouts, in seconds


class _Quick(BoundedHttp):
    header_timeout = LIMIT


@pytest.fixture
def bounded_server(app: FastAPI) -> Iterator[tuple[str, int]]:
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=0,
        log_level="warning",
        http=_Quick,
        timeout_keep_alive=int(LIMIT),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        assert thread.is_alive(), "the server did not start"
        time.sleep(0.01)
    yield "127.0.0.1", server.servers[0].sockets[0].getsockname()[1]
    server.should_exit = True
    thread.join(timeout=10)


def _closed_within(sock: socket.socket, seconds: float) -> float | None:
    """How long until the server closed the connection; None if it did not in time."""
    started = time.monotonic()
    sock.settimeout(seconds)
    try:
        while sock.recv(1024):
            pass
    except TimeoutError:
        return None
    return time.monotonic() - started


def test_a_connection_that_sends_nothing_is_closed(bounded_server: tuple[str, int]) -> None:
    idle = [socket.create_connection(bounded_server) for _ in range(20)]
    for sock in idle:
        waited = _closed_within(sock, LIMIT + 3)
        assert waited is not None, "an idle connection was held past the keep-alive timeout"
        sock.close()


def test_a_request_head_that_trickles_in_is_cut_off(bounded_server: tuple[str, int]) -> None:
    sock = socket.create_connection(bounded_server)
    sock.sendall(b"GET /health/live HTTP/1.1\r\n")
    started = time.monotonic()
    closed = False
    while time.monotonic() - started < LIMIT + 3:
        try:
            sock.sendall(b"X-Slow: 1\r\n")
        except OSError:
            closed = True
            break
        sock.settimeout(0.3)
        try:
            if sock.recv(1024) == b"":
                closed = True
                break
        except TimeoutError:
            pass
    sock.close()
    assert closed, "a request whose headers never ended was held past the header timeout"


def test_a_request_in_time_is_answered_and_its_connection_kept(
    bounded_server: tuple[str, int],
) -> None:
    sock = socket.create_connection(bounded_server)
    for _ in range(2):  # two requests on one connection
        sock.sendall(b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n")
        sock.settimeout(5)
        answer = sock.recv(4096)
        assert answer.startswith(b"HTTP/1.1 200"), answer
    sock.close()
