"""The application's parts a request handler uses, typed: one object per application
(``app.state.context``), read by the ``ContextDep`` dependency or ``context(request)``,
instead of untyped ``app.state`` reads in every handler."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, Request

from aitbc.config import Settings
from aitbc.kit.clock import Clock
from aitbc.store.store import Store


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

    def now(self) -> datetime:
        return self.clock.now()


def context(request: Request) -> Context:
    found: Context = request.app.state.context
    return found


async def _context(request: Request) -> Context:
    return context(request)


ContextDep = Annotated[Context, Depends(_context)]
