"""Waking long polls: a miner's waiting poll returns as soon as a job is assigned to it, on
whichever server process the assignment happened.

The assigning transaction notifies ``CHANNEL`` (``Conn.notify``): on PostgreSQL a ``NOTIFY``
delivered when it commits to every process, this one included, which each process hears on
one listening connection; on SQLite, delivered after the commit to the waiting polls of the
same process (other processes' polls find the job when their wait runs out)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aitbc.store.conn import Conn

CHANNEL = "aitbc_job_assigned"
log = logging.getLogger("aitbc.wakeup")


async def job_assigned(conn: Conn, miner_id: str) -> None:
    """Called in the transaction that assigned a job to ``miner_id``."""
    await conn.notify(CHANNEL, miner_id)


class Signals:
    """The waiting polls of one server process, by miner."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._listener: Any = None

    @contextmanager
    def waiting(self, miner_id: str) -> Iterator[asyncio.Event]:
        """An event set when a job is assigned to the miner, while the block runs."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        self._waiting.setdefault(miner_id, set()).add(entry)
        try:
            yield event
        finally:
            waiters = self._waiting.get(miner_id)
            if waiters is not None:
                waiters.discard(entry)
                if not waiters:
                    del self._waiting[miner_id]

    def wake(self, miner_id: str) -> None:
        """Safe from any thread."""
        for loop, event in list(self._waiting.get(miner_id, ())):
            loop.call_soon_threadsafe(event.set)

    async def listen(self, connect: Any) -> None:
        """On PostgreSQL: hear every process's assignments on a connection of our own."""
        try:
            self._listener = await connect()
            await self._listener.add_listener(CHANNEL, self._heard)
        except Exception:  # polls still find jobs when their wait runs out
            log.warning("cannot listen for job assignments; long polls will wait it out")
            self._listener = None

    def _heard(self, _connection: Any, _pid: int, _channel: str, miner_id: str) -> None:
        self.wake(miner_id)

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
