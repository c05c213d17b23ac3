"""Waking what waits for a change made by any server process: a miner's long poll for its
next job (``JOBS``: the payload is the miner), a feed's long poll for its owner's events and
the webhook deliveries (``outgoing.CHANNEL``: the payload is the owners concerned).

A transaction notifies a channel (``Conn.notify``): on PostgreSQL a ``NOTIFY`` delivered when
it commits to every process, this one included, which each process hears on one listening
connection; on SQLite, delivered after the commit to the same process only (other processes'
waits find the change when they run out)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from aitbc.store import outgoing

JOBS = "aitbc_job_assigned"
CHANNELS = (JOBS, outgoing.CHANNEL)
log = logging.getLogger("aitbc.wakeup")


def events_key(owner_id: str) -> str:
    """What a wait for ``owner_id``'s events waits on."""
    return f"{outgoing.CHANNEL}:{owner_id}"


class Signals:
    """The waits of one server process, by key: a miner's id (jobs), ``events_key(owner)``."""

    def __init__(self) -> None:
        self._waiting: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._listener: Any = None
        self._on_events: list[Callable[[], None]] = []

    @contextmanager
    def waiting(self, key: str) -> Iterator[asyncio.Event]:
        """An event set when ``key`` is woken, while the block runs."""
        event = asyncio.Event()
        entry = (asyncio.get_running_loop(), event)
        self._waiting.setdefault(key, set()).add(entry)
        try:
            yield event
        finally:
            waiters = self._waiting.get(key)
            if waiters is not None:
                waiters.discard(entry)
                if not waiters:
                    del self._waiting[key]

    def wake(self, key: str) -> None:
        """Safe from any thread."""
        for loop, event in list(self._waiting.get(key, ())):
            loop.call_soon_threadsafe(event.set)

    def on_events(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` (on the listening loop) whenever any events were written."""
        self._on_events.append(callback)

    def events_written(self, owners: str) -> None:
        """``owners``: the payload of an ``outgoing.CHANNEL`` notification."""
        if owners == outgoing.EVERYONE:
            prefix = events_key("")
            for key in [k for k in self._waiting if k.startswith(prefix)]:
                self.wake(key)
        else:
            for owner in owners.split(","):
                self.wake(events_key(owner))
        for callback in self._on_events:
            callback()

    @property
    def listening(self) -> bool:
        """Whether the listening connection is up (PostgreSQL)."""
        return self._listener is not None and not self._listener.is_closed()

    async def listen(
        self, connect: Any, *, first_delay: float = 0.5, longest_delay: float = 30.0
    ) -> None:
        """On PostgreSQL: hear every process's assignments and events on a connection of our
        own, for as long as the process serves. A connection lost (or never made) is logged
        and made again, after ``first_delay`` seconds and twice as long each time up to
        ``longest_delay``; meanwhile ``listening`` is False and waits find their changes
        when they run out. Once back, every wait looks again for what it missed."""
        delay, lost_before = first_delay, False
        while True:
            listener, lost = None, asyncio.Event()
            try:
                listener = await connect()
                listener.add_termination_listener(lambda _connection, lost=lost: lost.set())
                for channel in CHANNELS:
                    await listener.add_listener(channel, self._heard)
            except Exception as exc:
                log.warning(
                    "cannot listen for job assignments and events (%s); long polls wait out "
                    "their time; trying again in %.1f s",
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
                log.warning("listening for job assignments and events again")
                self.wake_all()
            while not lost.is_set() and not listener.is_closed():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(lost.wait(), timeout=5)
            self._listener, lost_before = None, True
            log.warning(
                "lost the connection listening for job assignments and events; reconnecting"
            )

    def wake_all(self) -> None:
        for key in list(self._waiting):
            self.wake(key)
        for callback in self._on_events:
            callback()

    def _heard(self, _connection: Any, _pid: int, channel: str, payload: str) -> None:
        if channel == JOBS:
            self.wake(payload)
        else:
            self.events_written(payload)

    async def close(self) -> None:
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
