"""Engine and sessions. One unit of work per request: the session dependency commits when the
endpoint returns and rolls back when it raises; services only flush."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from aitbc.store.write_gate import SQLITE_BUSY_TIMEOUT_MS, gate_for

WRITE_OPTION = "aitbc_write"


def _configure_sqlite(engine: Engine) -> None:
    path = engine.url.database
    on_file = bool(path) and path != ":memory:"
    gate = gate_for(path or "") if on_file else None

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # A write transaction takes the database write lock up front, so a read-then-write
        # (check the GPU is free, then book it) can never interleave with another writer.
        # It waits for the process's other writers in turn first (store.write_gate).
        if not conn.get_execution_options().get(WRITE_OPTION):
            conn.exec_driver_sql("BEGIN")
            return
        if gate is not None:
            gate.acquire()
            conn.info[_HOLDS_GATE] = gate
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        except BaseException:
            _give_back(conn.info)
            raise

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn: Any) -> None:
        _give_back(conn.info)

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        _give_back(record.info)  # a transaction that ended without either event


_HOLDS_GATE = "aitbc_write_gate"


def _give_back(info: dict[Any, Any]) -> None:
    held = info.pop(_HOLDS_GATE, None)
    if held is not None:
        held.release()


def create_db_engine(url: str, *, timeout: float = 10.0) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, pool_size=20
        )
        _configure_sqlite(engine)
        return engine
    # Per process: 4 processes x 20 stay under PostgreSQL's default 100 connections. A
    # database that does not answer fails a connection attempt, or the wait for a free
    # connection, after ``timeout`` (503) instead of holding a thread for ever.
    return create_engine(
        url,
        pool_size=10,
        max_overflow=10,
        pool_timeout=timeout,
        connect_args={"connect_timeout": max(1, round(timeout))},
    )


def finish(session: Session, *, commit: bool) -> None:
    """End a unit of work: commit (or roll back) and hand the connection back."""
    try:
        if commit:
            session.commit()
        else:
            session.rollback()
    finally:
        session.close()


class Database:
    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        self.url = url
        self.engine = create_db_engine(url, timeout=timeout)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(
            self.engine.execution_options(**{WRITE_OPTION: True}), expire_on_commit=False
        )
        # Called with each session that committed (work that must follow a commit).
        self.after_commit: list[Callable[[Session], None]] = []
        for maker in (self._read, self._write):
            event.listen(maker, "after_commit", self._committed)

    def _committed(self, session: Session) -> None:
        for callback in self.after_commit:
            callback(session)

    def session(self, *, write: bool) -> Session:
        return (self._write if write else self._read)()

    def dispose(self) -> None:
        self.engine.dispose()
