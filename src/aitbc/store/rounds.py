"""Rows a sweep works through a page at a time, so that those it cannot serve never keep the
others from being tried."""

from __future__ import annotations

from datetime import UTC, datetime

from aitbc.store.conn import Conn
from aitbc.store.query import Query
from aitbc.store.values import as_time

_BEFORE_ALL = (datetime(1970, 1, 1, tzinfo=UTC), "")


class Rounds:
    """A page of ids at each call, oldest first by (created_at, id), going on where the last
    call stopped and starting over after the newest. ``query`` selects ``id, created_at``;
    its parameters are now ($1), the last page's last created_at and id ($2, $3) and the
    page's size ($4). Each process keeps its own place."""

    def __init__(self, query: Query, page: int = 50) -> None:
        self._query = query
        self._page = page
        self._after: tuple[datetime, str] = _BEFORE_ALL

    async def __call__(self, conn: Conn, *, now: datetime) -> list[str]:
        rows = await conn.fetch_values(self._query, now, *self._after, self._page)
        full = len(rows) == self._page
        self._after = (as_time(rows[-1][1]), rows[-1][0]) if full else _BEFORE_ALL
        return [row[0] for row in rows]
