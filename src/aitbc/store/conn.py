"""One small async interface to a database connection, two ways to get it:

- ``SqliteConn``: a ``sqlite3`` connection. Its methods never suspend, so reads can run on
  the event loop and whole write transactions on the writer thread (see ``drive``).
- ``PgConn``: an asyncpg connection; nothing waits in a thread.

A write transaction's connection is also its unit of work: what must follow the commit
(``after_commit``), notifications sent on commit (``notify``) and attempts undone alone
(``attempt``, a savepoint) and events written just before the commit (``emit``,
store.outbox). Rows are read by column name."""

from __future__ import annotations

import sqlite3
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from aitbc.store.outgoing import Outgoing
from aitbc.store.query import Query
from aitbc.store.values import naive_utc, sqlite_time

T = TypeVar("T")
Row = Mapping[str, Any]


class Writer(Protocol):
    """What work after a commit is given: the store, to run transactions of its own."""

    async def write(self, work: Callable[[Conn], Coroutine[Any, Any, T]]) -> T: ...

    def notified(self, channel: str, payload: str) -> None: ...


# Work that must follow a write transaction's commit, in transactions of its own.
AfterCommit = Callable[[Writer], Awaitable[object]]


class Conn(Protocol):
    dialect: str

    async def fetch(self, query: Query, *args: Any) -> list[Row]: ...

    async def fetchrow(self, query: Query, *args: Any) -> Row | None: ...

    async def fetch_values(self, query: Query, *args: Any) -> list[Sequence[Any]]:
        """Rows as plain sequences, for the hottest reads that unpack them by position."""
        ...

    async def fetchval(self, query: Query, *args: Any) -> Any: ...

    async def execute(self, query: Query, *args: Any) -> int:
        """Runs a statement that returns no rows; how many rows it changed."""
        ...

    async def executemany(self, query: Query, rows: Iterable[Sequence[Any]]) -> None: ...

    def after_commit(self, work: AfterCommit) -> None:
        """Run ``work(store)`` once this write transaction has committed, before the caller
        hears of it; a failure is logged and the commit stands (the sweeper catches up)."""
        ...

    async def attempt(self, work: Callable[[], Awaitable[T]]) -> T:
        """Run ``work`` in a savepoint: when it raises, only its own writes are undone and
        the transaction goes on."""
        ...

    async def notify(self, channel: str, payload: str) -> None:
        """Tell the listeners of ``channel`` once this transaction commits: every process's
        on PostgreSQL (NOTIFY), this process's on SQLite (``Store.listen_locally``)."""
        ...

    outbox: list[Outgoing] | None  # emitted, not written yet
    wrote_events: bool

    def emit(self, event: Outgoing) -> None:
        """Append ``event`` to the event log as part of this transaction (store.outbox)."""
        ...


_NOTIFY = Query.postgresql_only("SELECT pg_notify($1, $2)")
_SAVEPOINT = Query("SAVEPOINT attempt")
_RELEASE = Query("RELEASE SAVEPOINT attempt")
_ROLL_BACK_TO = Query("ROLLBACK TO SAVEPOINT attempt")


class _Unit:
    """A connection's part in a unit of work: the work to follow its commit (a write
    transaction's connection has a list; a read's has none and refuses), and attempts that
    can be undone alone."""

    __slots__ = ()
    dialect: str
    followers: list[AfterCommit] | None
    outbox: list[Outgoing] | None
    wrote_events: bool  # events already written along with a statement of the work's

    def after_commit(self, work: AfterCommit) -> None:
        if self.followers is None:
            raise RuntimeError("after_commit outside a write transaction")
        self.followers.append(work)

    def emit(self, event: Outgoing) -> None:
        if self.outbox is None:
            raise RuntimeError("an event emitted outside a write transaction")
        self.outbox.append(event)

    async def execute(self, query: Query, *args: Any) -> int:
        raise NotImplementedError

    async def notify(self, channel: str, payload: str) -> None:
        if self.dialect == "postgresql":
            await self.execute(_NOTIFY, channel, payload)
            return

        async def deliver(store: Writer) -> None:
            store.notified(channel, payload)

        self.after_commit(deliver)

    async def attempt(self, work: Callable[[], Awaitable[T]]) -> T:
        # Savepoints of one name nest: each RELEASE or ROLLBACK TO names the newest.
        await self.execute(_SAVEPOINT)
        emitted = len(self.outbox or ())
        try:
            result = await work()
        except BaseException:
            if self.outbox is not None:
                del self.outbox[emitted:]  # its events are undone with its writes
            await self.execute(_ROLL_BACK_TO)
            await self.execute(_RELEASE)
            raise
        await self.execute(_RELEASE)
        return result


def drive(work: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never suspends (its connection is synchronous) to its end."""
    try:
        work.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    work.close()
    raise RuntimeError("work on a synchronous connection tried to suspend")


def _columns(rows: Iterable[Sequence[Any]]) -> list[list[Any]]:
    """Rows as one list per column (times as naive UTC), for a statement's ``arrays`` form."""
    return [list(_pg_args(column)) for column in zip(*rows, strict=True)]


def _sqlite_args(args: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(sqlite_time(a) if isinstance(a, datetime) else a for a in args)


def _pg_args(args: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(naive_utc(a) if isinstance(a, datetime) else a for a in args)


class SqliteConn(_Unit):
    dialect = "sqlite"
    __slots__ = ("_plain", "followers", "outbox", "raw", "wrote_events")

    def __init__(self, raw: sqlite3.Connection, *, writing: bool = False) -> None:
        self.followers = [] if writing else None
        self.outbox = [] if writing else None
        self.wrote_events = False
        raw.row_factory = sqlite3.Row
        self.raw = raw
        self._plain = raw.cursor()
        self._plain.row_factory = None

    async def fetch_values(self, query: Query, *args: Any) -> list[Sequence[Any]]:
        return self._plain.execute(query.sqlite, _sqlite_args(args)).fetchall()

    async def fetch(self, query: Query, *args: Any) -> list[Row]:
        return self.raw.execute(query.sqlite, _sqlite_args(args)).fetchall()

    async def fetchrow(self, query: Query, *args: Any) -> Row | None:
        row: Row | None = self.raw.execute(query.sqlite, _sqlite_args(args)).fetchone()
        return row

    async def fetchval(self, query: Query, *args: Any) -> Any:
        row = self.raw.execute(query.sqlite, _sqlite_args(args)).fetchone()
        return None if row is None else row[0]

    async def execute(self, query: Query, *args: Any) -> int:
        return self.raw.execute(query.sqlite, _sqlite_args(args)).rowcount

    async def executemany(self, query: Query, rows: Iterable[Sequence[Any]]) -> None:
        self.raw.executemany(query.sqlite, [_sqlite_args(r) for r in rows])


class PgConn(_Unit):
    dialect = "postgresql"
    __slots__ = ("followers", "outbox", "raw", "wrote_events")

    def __init__(self, raw: Any, *, writing: bool = False) -> None:  # an asyncpg connection
        self.raw = raw
        self.followers = [] if writing else None
        self.outbox = [] if writing else None
        self.wrote_events = False

    async def fetch_values(self, query: Query, *args: Any) -> list[Sequence[Any]]:
        rows: list[Sequence[Any]] = await self.raw.fetch(query.postgresql, *_pg_args(args))
        return rows

    async def fetch(self, query: Query, *args: Any) -> list[Row]:
        rows: list[Row] = await self.raw.fetch(query.postgresql, *_pg_args(args))
        return rows

    async def fetchrow(self, query: Query, *args: Any) -> Row | None:
        row: Row | None = await self.raw.fetchrow(query.postgresql, *_pg_args(args))
        return row

    async def fetchval(self, query: Query, *args: Any) -> Any:
        return await self.raw.fetchval(query.postgresql, *_pg_args(args))

    async def execute(self, query: Query, *args: Any) -> int:
        status: str = await self.raw.execute(query.postgresql, *_pg_args(args))
        tail = status.rsplit(" ", 1)[-1]
        return int(tail) if tail.isdigit() else 0

    async def executemany(self, query: Query, rows: Iterable[Sequence[Any]]) -> None:
        if query.arrays is not None:
            columns = _columns(rows)
            if columns:
                await self.execute(query.arrays, *columns)
            return
        await self.raw.executemany(query.postgresql, [_pg_args(r) for r in rows])
