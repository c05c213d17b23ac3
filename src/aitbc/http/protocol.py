"""The HTTP protocol ``aitbc serve`` runs: uvicorn's httptools protocol with the two bounds it
lacks. A connection that sends no request is closed after the keep-alive timeout, as one idle
between requests already is; a request whose head (request line and headers) has not arrived
within the header timeout is closed. Without them every idle or slow-header client holds a
connection (and a file descriptor) for ever. A slow body is the request guard's (408)."""

from __future__ import annotations

import asyncio
from functools import cache
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from aitbc.config import Settings


@cache
def _configured_header_timeout() -> float:
    return Settings().header_timeout_seconds


class BoundedHttp(HttpToolsProtocol):
    header_timeout: float | None = None  # None: AITBC_HEADER_TIMEOUT_SECONDS

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._head_pending = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.timeout_keep_alive_task = self.loop.call_later(
            self.timeout_keep_alive, self.timeout_keep_alive_handler
        )

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_pending = True

    def on_headers_complete(self) -> None:
        self._head_pending = False
        self._stop_head_timer()
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        # The timer starts only for a head that did not arrive whole with its first bytes:
        # nearly every request's does, and then costs no timer at all.
        if self._head_pending and self._head_timer is None and not self.transport.is_closing():
            limit = self.header_timeout or _configured_header_timeout()
            self._head_timer = self.loop.call_later(limit, self.timeout_keep_alive_handler)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
