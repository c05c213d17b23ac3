"""The outermost gate for request bodies and URLs: a body over the size limit is 413, one that
takes longer than the body timeout to arrive is 408, and a NUL character anywhere in the
request is 422, all in the usual error shape, before any route runs. (A NUL would otherwise
be stored by SQLite and refused by PostgreSQL.)

A JSON body that is malformed, nested too deep or holds non-finite numbers (kit.json_body) is
not answered here: the route would answer 401 or 403 first to a caller without the right key.
The problem is noted in the scope under ``BODY_PROBLEM`` and the route gets a body that fails
its validation, which errors.py then answers with the problem (422 ``invalid_json``)."""

from __future__ import annotations

import asyncio
import json
import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from aitbc.http.errors import BODY_PROBLEM
from aitbc.kit import json_body

_NUL_MARKERS = (b"\x00", b"\\u0000", b"%00")
_NUL_IN_URL = re.compile(b"|".join(re.escape(m) for m in _NUL_MARKERS), re.IGNORECASE)
# What the route gets instead of a body that is not acceptable JSON: a JSON string, which no
# route's body model accepts.
_STAND_IN = b'"the body was not acceptable JSON"'


async def _reply(send: Send, status: int, code: str, detail: str) -> None:
    body = json.dumps({"error": code, "detail": detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class RequestGuard:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int, body_timeout_seconds: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.body_timeout_seconds = body_timeout_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        target = scope.get("raw_path", b"") + b"?" + scope.get("query_string", b"")
        if _NUL_IN_URL.search(target) is not None:
            await _reply(send, 422, "validation_error", "The URL contains a NUL character.")
            return
        declared = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                declared = value  # the last one, as a dict of the headers would give
        if declared is not None and declared.isdigit() and int(declared) > self.max_body_bytes:
            await _reply(send, 413, "payload_too_large", self._too_large())
            return
        if scope.get("method") in ("GET", "HEAD", "OPTIONS", "DELETE") and declared is None:
            await self.app(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.body_timeout_seconds):
                chunks = await self._read(receive)
        except TimeoutError:
            detail = f"The request body took longer than {self.body_timeout_seconds:g} s to arrive."
            await _reply(send, 408, "request_timeout", detail)
            return
        if chunks is None:
            await _reply(send, 413, "payload_too_large", self._too_large())
            return
        body = b"".join(chunks)
        if any(marker in body for marker in _NUL_MARKERS[:2]):
            await _reply(send, 422, "validation_error", "The body contains a NUL character.")
            return
        if body and _is_json(scope):
            problem = json_body.problem(body)
            if problem is not None:
                scope = {**scope, BODY_PROBLEM: problem}
                body = _STAND_IN
        await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> list[bytes] | None:
        """The body's chunks; None when it is over the size limit."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return chunks
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return chunks

    def _too_large(self) -> str:
        return f"The request body is larger than {self.max_body_bytes} bytes."


def _is_json(scope: Scope) -> bool:
    """Parsed as JSON by the routes: declared so, or not declared at all."""
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            return b"json" in value.lower()
    return True


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
