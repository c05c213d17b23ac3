"""Service calls on the store outside a server: one write transaction, committed when the
work returns (for the tests that call a service directly)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from aitbc.store.conn import Conn
from aitbc.store.store import Store

T = TypeVar("T")


def write(url: str, work: Callable[[Conn], Coroutine[Any, Any, T]]) -> T:
    async def run() -> T:
        store = Store(url)
        await store.open()
        try:
            return await store.write(work)
        finally:
            await store.close()

    return asyncio.run(run())
