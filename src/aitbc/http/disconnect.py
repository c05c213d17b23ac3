"""A long poll ends when its client leaves, not when its wait runs out."""

from __future__ import annotations

from fastapi import Request


async def gone(request: Request) -> None:
    """Returns when the client has closed its connection (the request's body, if any, has
    been read by then: what is left to receive is the disconnect)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass
