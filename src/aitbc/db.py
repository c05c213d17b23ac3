"""The SQLAlchemy engine the migrations (and the tests' and tools' direct checks) run on. The
service itself reads and writes only through ``aitbc.store``; the ORM models describe the
schema for Alembic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from aitbc.store.write_gate import SQLITE_BUSY_TIMEOUT_MS

# PostgreSQL advisory lock keys (any 64-bit numbers no other tool on the database uses): the
# migrations, and the first admin key, happen in one node at a time.
MIGRATION_LOCK = 0x61_69_74_62_63_00_00_01
BOOTSTRAP_LOCK = 0x61_69_74_62_63_00_00_02


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN")


def create_db_engine(url: str, *, timeout: float = 10.0) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        _configure_sqlite(engine)
        return engine
    # A database that does not answer fails the connection attempt after ``timeout``.
    return create_engine(
        url, pool_size=1, max_overflow=1, connect_args={"connect_timeout": max(1, round(timeout))}
    )
