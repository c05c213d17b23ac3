"""Schema migrations (Alembic, shipped inside the package) and first-start bootstrap."""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError

from aitbc.auth import service as auth_service
from aitbc.db import BOOTSTRAP_LOCK, create_db_engine
from aitbc.kit.clock import SystemClock
from aitbc.store.conn import Conn
from aitbc.store.query import Query
from aitbc.store.store import Store

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
_BOOTSTRAP_LOCK = Query.postgresql_only(f"SELECT pg_advisory_xact_lock({BOOTSTRAP_LOCK})")


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


class DatabaseUnavailable(Exception):
    """The database cannot be used: the message says what is missing and what to do."""


class SchemaBehind(DatabaseUnavailable):
    """The database is not at the schema this version needs (and was not to be migrated)."""


def _where(parsed: URL) -> str:
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def _unreachable(parsed: URL, exc: OperationalError) -> DatabaseUnavailable:
    """The driver's first line, after where the database was looked for."""
    reason = str(exc.orig).strip()
    first_line = reason.splitlines()[0] if reason else ""
    if parsed.get_backend_name() == "sqlite":
        return DatabaseUnavailable(
            f"Cannot open the SQLite database {parsed.database}: {first_line}"
        )
    return DatabaseUnavailable(f"Cannot reach PostgreSQL at {_where(parsed)}: {first_line}")


@contextmanager
def _connected(url: str) -> Iterator[Connection]:
    """A connection to the URL's database; a missing PostgreSQL database or server is one
    plain sentence, not a traceback from deep inside SQLAlchemy or the migrations."""
    parsed = make_url(url)
    engine = create_db_engine(url)
    try:
        with engine.connect() as conn:
            yield conn
    except OperationalError as exc:
        if 'database "' in str(exc.orig) and "does not exist" in str(exc.orig):
            raise DatabaseUnavailable(
                f"PostgreSQL at {_where(parsed)} has no database {parsed.database!r}; "
                "create it with "
                f"`aitbc db create --database-url {parsed.render_as_string(hide_password=True)}` "
                f"(or `createdb {parsed.database}`)."
            ) from None
        raise _unreachable(parsed, exc) from None
    finally:
        engine.dispose()


def _is_postgres(url: str) -> bool:
    return make_url(url).get_backend_name().startswith("postgresql")


def create_database(url: str) -> bool:
    """Create the URL's PostgreSQL database; False when it exists already."""
    parsed = make_url(url)
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            found = conn.execute(
                text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": parsed.database}
            ).first()
            if found:
                return False
            quoted = '"' + str(parsed.database).replace('"', '""') + '"'
            conn.execute(text(f"CREATE DATABASE {quoted}"))
            return True
    except OperationalError as exc:
        raise _unreachable(parsed, exc) from None
    finally:
        admin.dispose()


# The revisions folded into the baseline 0014 before the first release, and the last commit
# whose migrations still lead up to it one by one.
FOLDED = frozenset(f"{number:04d}" for number in range(1, 14))
BEFORE_THE_SQUASH = "295b343"


def _current(url: str) -> tuple[set[str], set[str]]:
    """The revisions the database is at and the heads of this version's migrations; a
    revision these migrations do not know is said plainly, not as Alembic's traceback."""
    scripts = ScriptDirectory.from_config(alembic_config(url))
    with _connected(url) as conn:
        current = set(MigrationContext.configure(conn).get_current_heads())
    known = {script.revision for script in scripts.walk_revisions()}
    for revision in sorted(current - known):
        if revision in FOLDED:
            raise DatabaseUnavailable(
                f"The database is at revision {revision}, from before the migrations were "
                "folded into 0014: bring it to 0014 with an aitbc from before the squash "
                f"(commit {BEFORE_THE_SQUASH}) and then run `aitbc db upgrade`, or start "
                "afresh with an empty database."
            )
        raise DatabaseUnavailable(
            f"The database is at revision {revision}, which this version's migrations do not "
            "know: run the newer aitbc that migrated it."
        )
    return current, set(scripts.get_heads())


def upgrade(url: str, revision: str = "head") -> None:
    _current(url)
    with warnings.catch_warnings():
        # SQLite's batch migrations reflect tables, and reflection warns that it skips
        # expression indexes; the indexes themselves stay in place.
        warnings.filterwarnings("ignore", "Skipped unsupported reflection of expression-based")
        command.upgrade(alembic_config(url), revision)


def require_current(url: str) -> None:
    """Refuse a database whose schema is not the one this version's migrations end at (for
    ``aitbc serve --no-migrate``, where migrating is a deployment step of its own)."""
    current, heads = _current(url)
    if current != heads:
        at = ", ".join(sorted(current)) or "no schema"
        raise SchemaBehind(
            f"The database is at {at}; this version needs {', '.join(sorted(heads))}: "
            "run `aitbc db upgrade` first (or start without --no-migrate)."
        )


_BUDGET = text(
    "SELECT current_setting('max_connections')::int, "
    "current_setting('superuser_reserved_connections')::int, "
    "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') - 1"
)


def check_connection_budget(url: str, *, processes: int, pool_size: int) -> None:
    """Refuse to start a node whose processes could open more PostgreSQL connections than
    the server has left: each process up to ``pool_size`` for its work and one to LISTEN
    on."""
    if not _is_postgres(url):
        return
    with _connected(url) as conn:
        limit, reserved, in_use = conn.execute(_BUDGET).one()
    needed = processes * (pool_size + 1)
    left = limit - reserved - in_use
    if needed > left:
        raise DatabaseUnavailable(
            f"This node may open {needed} PostgreSQL connections ({processes} process(es) x "
            f"(AITBC_DB_POOL_SIZE {pool_size} + 1 to listen on)), but the server has {left} "
            f"left (max_connections {limit}, {reserved} reserved, {in_use} in use): lower "
            "AITBC_DB_POOL_SIZE or --workers, or raise max_connections (docs/operations.md)."
        )


def bootstrap_admin_key(url: str, *, configured_admin_key: str | None) -> str | None:
    """On a database with no admin key, and none configured, create one and return its
    secret (to be printed once). Otherwise return None."""
    if configured_admin_key:
        return None

    async def bootstrap(conn: Conn) -> str | None:
        if conn.dialect == "postgresql":  # nodes started together: one makes the key
            await conn.execute(_BOOTSTRAP_LOCK)
        return await auth_service.bootstrap_admin(conn, now=SystemClock().now())

    async def run() -> str | None:
        store = Store(url)
        await store.open()
        try:
            return await store.write(bootstrap)
        finally:
            await store.close()

    return asyncio.run(run())
