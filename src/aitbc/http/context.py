"""The application's parts a request handler uses, typed: one object per application
(``app.state.context``), read by the ``ContextDep`` dependency or ``context(request)``,
instead of untyped ``app.state`` reads in every handler."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import datetime
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Request

from aitbc.config import Settings
from aitbc.dispatcher import Dispatcher
from aitbc.kit.clock import Clock
from aitbc.store.conn import Conn
from aitbc.store.signals import Signals
from aitbc.store.store import Store

P = ParamSpec("P")
T = TypeVar("T")
Work = Callable[Concatenate[Conn, P], Coroutine[Any, Any, T]]


class Context:
    __slots__ = ("_state",)

    def __init__(self, state: Any) -> None:  # the application's state
        self._state = state

    @property
    def store(self) -> Store:
        store: Store = self._state.store  # opened by the lifespan
        return store

    @property
    def clock(self) -> Clock:
        clock: Clock = self._state.clock
        return clock

    @property
    def settings(self) -> Settings:
        settings: Settings = self._state.settings
        return settings

    @property
    def signals(self) -> Signals:
        signals: Signals = self._state.signals  # made by the lifespan
        return signals

    @property
    def dispatcher(self) -> Dispatcher:
        dispatcher: Dispatcher = self._state.dispatcher  # made by the lifespan
        return dispatcher

    @property
    def draining(self) -> bool:
        """The node is going away: long polls answer now."""
        return bool(self._state.draining)

    def now(self) -> datetime:
        return self.clock.now()

    async def read(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``work(conn, ...)`` on a read connection."""
        async with self.store.read() as conn:
            return await work(conn, *args, **kwargs)

    async def write(self, work: Work[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """``work(conn, ...)`` in one write transaction (and what it asks to follow the
        commit)."""

        async def run(conn: Conn) -> T:
            return await work(conn, *args, **kwargs)

        return await self.store.write(run)


def context(request: Request) -> Context:
    found: Context = request.app.state.context
    return found


async def _context(request: Request) -> Context:
    return context(request)


ContextDep = Annotated[Context, Depends(_context)]
