"""The request path's database access: reads and whole write transactions, with no thread
hop where none is needed.

- SQLite: one read connection used on the event loop (a read takes tens of microseconds and
  never waits: WAL readers do not block on writers); write transactions run on one writer
  thread per process (``BEGIN IMMEDIATE`` may wait for another process's writer, which must
  not stall the loop).
- PostgreSQL: an asyncpg pool; reads and writes both stay on the event loop.

A write is a function of a connection, run inside one transaction that commits when it
returns and rolls back when it raises."""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import threading
from collections.abc import Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import asyncpg
from sqlalchemy.engine import URL, make_url

from aitbc.store import outbox
from aitbc.store.conn import AfterCommit, Conn, PgConn, Row, SqliteConn, drive
from aitbc.store.pgpool import PgPool
from aitbc.store.query import Query
from aitbc.store.values import shifted
from aitbc.store.write_gate import SQLITE_BUSY_TIMEOUT_MS, WriteGate, gate_for

log = logging.getLogger("aitbc.store")
# How often a write PostgreSQL ends to break a deadlock is run in all.
DEADLOCK_ATTEMPTS = 3
T = TypeVar("T")
Work = Callable[[Conn], Coroutine[Any, Any, T]]

# Pages each request-path connection keeps (negative: KiB). SQLite's default of 2 MiB holds
# the indexes' upper levels of a 100,000-GPU registry but not the rows a spread of GPU
# details touches, which then come from the operating system's cache at each request.
SQLITE_CACHE_KIB = 32 * 1024


def sqlite_connect(path: str) -> sqlite3.Connection:
    raw = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=30)
    raw.execute("PRAGMA journal_mode=WAL")
    raw.execute("PRAGMA foreign_keys=ON")
    raw.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    raw.execute("PRAGMA synchronous=NORMAL")
    raw.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
    raw.create_function("shifted", 2, shifted, deterministic=True)
    return raw


def _asyncpg_options(url: URL, timeout: float, *, pooler: bool = False) -> dict[str, Any]:
    """asyncpg's connection options for the URL. Behind a transaction-mode pooler
    (PgBouncer) a connection sets nothing at start (the pooler refuses startup parameters
    it does not know: set ``plan_cache_mode`` on the role or database instead) and keeps no
    prepared statements (the next transaction may run on another server connection)."""
    query = dict(url.query)
    options: dict[str, Any] = {
        # A database that accepts connections but never answers ends a connection attempt
        # or a statement after ``timeout`` (503), instead of holding the request for ever.
        "timeout": timeout,
        "command_timeout": timeout,
        "host": url.host or query.pop("host", None),
        "port": url.port,
        "user": url.username,
        "password": url.password,
        "database": url.database,
        "server_settings": {
            "application_name": "aitbc",
            # The request path's statements are prepared once per connection and chosen
            # for their indexes; re-planning each execution (PostgreSQL's habit for the
            # first executions, and whenever a custom plan looks cheaper) costs more than
            # running them.
            "plan_cache_mode": "force_generic_plan",
        },
    }
    if pooler:
        options["server_settings"] = {"application_name": "aitbc"}
        options["statement_cache_size"] = 0
    if "connect_timeout" in query:
        options["timeout"] = float(str(query.pop("connect_timeout")))
    if "sslmode" in query:
        options["ssl"] = query.pop("sslmode")
    return {k: v for k, v in options.items() if v is not None}


class _Read:
    """The context of ``Store.read`` as a plain object (it is on every read's path)."""

    __slots__ = ("_lent", "_pool", "_reader")

    def __init__(self, reader: SqliteConn | None, pool: PgPool | None) -> None:
        self._reader = reader
        self._pool = pool

    async def __aenter__(self) -> Conn:
        if self._reader is not None:
            return self._reader
        assert self._pool is not None
        self._lent = await self._pool.take()
        return PgConn(self._lent[1])

    async def __aexit__(self, *exc: object) -> None:
        if self._reader is None:
            here, raw = self._lent
            here.give(raw)


class Store:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        timeout: float = 10.0,
        idle_seconds: float = 60.0,
        pooler: bool = False,
        listen_url: str | None = None,
    ) -> None:
        parsed = make_url(url)
        self.dialect = parsed.get_backend_name()
        self._pool_size = pool_size
        self._idle_seconds = idle_seconds
        self._pool: PgPool | None = None
        self._reader: SqliteConn | None = None
        self._reader_thread = 0
        self._others = threading.local()
        self._writer: ThreadPoolExecutor | None = None
        self._writer_conn: sqlite3.Connection | None = None
        self._gate: WriteGate | None = None
        if self.dialect == "sqlite":
            self._path = parsed.database or ""
            if not self._path or self._path == ":memory:":
                raise ValueError("the store needs an SQLite file, not an in-memory database")
            self._gate = gate_for(self._path)
        else:
            self._connect = _asyncpg_options(parsed, timeout, pooler=pooler)
            # LISTEN needs a session of its own: not through a transaction-mode pooler.
            self._listen: dict[str, Any] | None = self._connect
            if listen_url is not None:
                self._listen = _asyncpg_options(make_url(listen_url), timeout)
            elif pooler:
                self._listen = None
        self._local: dict[str, list[Callable[[str], None]]] = {}
        # Numbers committed events (PostgreSQL; SQLite numbers them as they are written).
        self.numbering = outbox.Numbering(self) if self.dialect != "sqlite" else None

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    async def open(self) -> None:
        if self.dialect == "sqlite":
            Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            self._reader = SqliteConn(sqlite_connect(self._path))
            self._reader_thread = threading.get_ident()
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="aitbc-sqlite-writer")
        else:
            # No connection yet: the service starts (and /health answers 503) while the
            # database is down.
            self._pool = PgPool(
                max_size=self._pool_size, idle_seconds=self._idle_seconds, **self._connect
            )

    @property
    def can_listen(self) -> bool:
        """On PostgreSQL: whether ``connect_raw`` has a database to LISTEN on (behind a
        transaction-mode pooler only with a listen URL of its own)."""
        return self.is_postgres and self._listen is not None

    async def connect_raw(self) -> Any:
        """A PostgreSQL connection of its own, outside the pool (to LISTEN on)."""
        import asyncpg

        assert self._listen is not None, "no database to listen on"
        return await asyncpg.connect(**self._listen)

    def listen_locally(self, channel: str, callback: Callable[[str], None]) -> None:
        """Hear this process's notifications on ``channel`` (``Conn.notify`` on SQLite; on
        PostgreSQL every process hears them through LISTEN instead)."""
        self._local.setdefault(channel, []).append(callback)

    def notified(self, channel: str, payload: str) -> None:
        for callback in self._local.get(channel, ()):
            callback(payload)

    async def leave_loop(self) -> None:
        """Close the PostgreSQL connections the calling event loop opened."""
        if self._pool is not None:
            await self._pool.close()

    async def close(self) -> None:
        await self.leave_loop()
        if self._writer is not None:
            self._writer.submit(self._close_writer_conn).result()
            self._writer.shutdown(wait=True)
            self._writer = None
        if self._reader is not None:
            self._reader.raw.close()
            self._reader = None

    # -- reads --------------------------------------------------------------------------

    def read(self) -> _Read:
        """``async with store.read() as conn``: SQLite's reader, or a pooled PostgreSQL
        connection given back when the block ends."""
        if self._reader is not None and threading.get_ident() != self._reader_thread:
            return _Read(self._reader_here(), None)
        return _Read(self._reader, self._pool)

    def _reader_here(self) -> SqliteConn:
        """A reader of this thread's own: a sqlite3 connection is used by one thread at a
        time, and the event loop's may be in use (a sweep run from a tool's thread while the
        server serves)."""
        reader: SqliteConn | None = getattr(self._others, "reader", None)
        if reader is None:
            reader = self._others.reader = SqliteConn(sqlite_connect(self._path))
        return reader

    async def fetch(self, query: Query, *args: Any) -> list[Row]:
        async with self.read() as conn:
            return await conn.fetch(query, *args)

    async def fetch_values(self, query: Query, *args: Any) -> list[Sequence[Any]]:
        async with self.read() as conn:
            return await conn.fetch_values(query, *args)

    async def fetchrow(self, query: Query, *args: Any) -> Row | None:
        async with self.read() as conn:
            return await conn.fetchrow(query, *args)

    # -- writes -------------------------------------------------------------------------

    async def write(self, work: Work[T]) -> T:
        """Run ``work`` in one transaction, write the events it emitted (store.outbox) and
        commit it; then what the work asked to follow the commit (``Conn.after_commit``),
        each in transactions of its own."""
        if self._writer is not None:
            loop = asyncio.get_running_loop()
            result, followers = await loop.run_in_executor(self._writer, self._write_sqlite, work)
        else:
            result, followers = await self._write_pg(work)
        for follow in followers:
            try:
                await follow(self)
            except Exception:  # the commit stands; the sweeper does the same work later
                log.exception("work after a commit failed")
        return result

    async def _write_pg(self, work: Work[T]) -> tuple[T, list[AfterCommit]]:
        """The transaction, run again when PostgreSQL ended it to break a deadlock: two
        writes that lock the same rows in different orders (a bid filling GPUs cheapest
        first, a gang locking them by id) are both answered. Nothing of an attempt that
        rolled back is kept: its events and after-commit work belong to its connection."""
        assert self._pool is not None
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                async with self._pool.acquire() as raw, raw.transaction():
                    conn = PgConn(raw, writing=True)
                    result = await work(conn)
                    if conn.outbox or conn.wrote_events:
                        await outbox.flush(conn, conn.outbox or [], self.numbering)
                return result, conn.followers or []
            except asyncpg.DeadlockDetectedError:
                if attempt == DEADLOCK_ATTEMPTS:
                    raise
                log.info("a write ended to break a deadlock; running it again")
                await asyncio.sleep(random.uniform(0.001, 0.02))
        raise AssertionError("unreachable")

    def _write_sqlite(self, work: Work[T]) -> tuple[T, list[AfterCommit]]:
        if self._writer_conn is None:
            self._writer_conn = sqlite_connect(self._path)
        raw, gate = self._writer_conn, self._gate
        assert gate is not None
        gate.acquire()  # in turn with the process's other writers (store.write_gate)
        try:
            raw.execute("BEGIN IMMEDIATE")
            conn = SqliteConn(raw, writing=True)
            try:
                result = drive(work(conn))
                if conn.outbox:
                    drive(outbox.flush(conn, conn.outbox, None))
            except BaseException:
                raw.execute("ROLLBACK")
                raise
            raw.execute("COMMIT")
            return result, conn.followers or []
        finally:
            gate.release()

    def _close_writer_conn(self) -> None:
        if self._writer_conn is not None:
            self._writer_conn.close()
            self._writer_conn = None
