"""Waking long polls: a miner's waiting poll returns as soon as a job is assigned to it, on
whichever server process the assignment happened.

The assigning transaction notifies ``CHANNEL`` (``Conn.notify``): on PostgreSQL a ``NOTIFY``
delivered when it commits to every process, this one included, which each process hears on
one listening connection; on SQLite, delivered after the commit to the waiting polls of the
same process (other processes' polls find the job when their wait runs out)."""

from __future__ import annotations

import asyncio
import contextlib
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

    @property
    def listening(self) -> bool:
        """Whether the listening connection is up (PostgreSQL)."""
        return self._listener is not None and not self._listener.is_closed()

    async def listen(
        self, connect: Any, *, first_delay: float = 0.5, longest_delay: float = 30.0
    ) -> None:
        """On PostgreSQL: hear every process's assignments on a connection of our own, for
        as long as the process serves. A connection lost (or never made) is logged and made
        again, after ``first_delay`` seconds and twice as long each time up to
        ``longest_delay``; meanwhile ``listening`` is False and polls find their jobs when
        their wait runs out. Once back, every waiting poll looks again for what it missed."""
        delay, lost_before = first_delay, False
        while True:
            listener, lost = None, asyncio.Event()
            try:
                listener = await connect()
                listener.add_termination_listener(lambda _connection, lost=lost: lost.set())
                await listener.add_listener(CHANNEL, self._heard)
            except Exception as exc:
                log.warning(
                    "cannot listen for job assignments (%s); long polls wait out their time; "
                    "trying again in %.1f s",
                    exc,
                    delay,
                )
                if listener is not None:
                    listener.terminate()
                await asyncio.sleep(delay)
                delay, lost_before = min(delay * 2, longest_delay), True
                continue
            self._listener, delay = listener, first_delay
            if lost_before:
                log.warning("listening for job assignments again")
                self.wake_all()
            while not lost.is_set() and not listener.is_closed():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), timeout=5)
            self._listener, lost_before = None, True
            log.warning("lost the connection listening for job assignments; reconnecting")

    def wake_all(self) -> None:
        for miner_id in list(self._waiting):
            self.wake(miner_id)

    def _heard(self, _connection: Any, _pid: int, _channel: str, miner_id: str) -> None:
        self.wake(miner_id)

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
