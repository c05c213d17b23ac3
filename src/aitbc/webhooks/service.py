"""Webhooks as their owners manage them: make, list, show, change, delete, and their
delivery log. Delivery itself is ``webhooks.delivery``."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from aitbc.errors import Conflict, NotFound
from aitbc.events import feed
from aitbc.events.feed import parse_types
from aitbc.kit.ids import new_id
from aitbc.store.conn import Conn, Row
from aitbc.store.query import Query
from aitbc.store.records import FromRow, record

MAX_PER_OWNER = 10
COLUMNS = (
    "id, owner_id, url, types, secret, enabled, disabled_reason, created_at, cursor, "
    "next_attempt_at, failures, failing_since, last_error, delivered"
)
_INSERT = Query(
    "INSERT INTO webhooks (id, owner_id, url, types, secret, enabled, created_at, cursor, "
    "next_attempt_at, failures, delivered) VALUES ($1, $2, $3, $4, $5, TRUE, $6, $7, $6, 0, 0)"
)
_COUNT = Query("SELECT count(*) FROM webhooks WHERE owner_id = $1")
_OWNER_LOCK = Query.postgresql_only("SELECT pg_advisory_xact_lock(hashtext('webhooks:' || $1))")
_MINE = Query(f"SELECT {COLUMNS} FROM webhooks WHERE owner_id = $1 ORDER BY created_at, id")
_ONE = Query(f"SELECT {COLUMNS} FROM webhooks WHERE id = $1")
_ONE_LOCKED = Query(f"SELECT {COLUMNS} FROM webhooks WHERE id = $1 FOR UPDATE")
_DELETE = Query("DELETE FROM webhooks WHERE id = $1")
_DELETE_LOG = Query("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
_ENABLE = Query(
    "UPDATE webhooks SET enabled = TRUE, disabled_reason = NULL, failures = 0, "
    "failing_since = NULL, next_attempt_at = $2 WHERE id = $1"
)
_DISABLE = Query("UPDATE webhooks SET enabled = FALSE, disabled_reason = $2 WHERE id = $1")
_LOG = Query(
    "SELECT id, event_id, event_type, at, attempt, ok, status_code, error, duration_ms "
    "FROM webhook_deliveries WHERE webhook_id = $1 ORDER BY id DESC LIMIT $2"
)
_PRUNE_LOG = Query("DELETE FROM webhook_deliveries WHERE at < $1")
_RECORD = Query(
    "INSERT INTO webhook_deliveries (webhook_id, event_id, event_type, at, attempt, ok, "
    "status_code, error, duration_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
)


@dataclass(frozen=True, slots=True)
class Webhook:
    id: str
    owner_id: str
    url: str
    types: tuple[str, ...]
    secret: str
    enabled: bool
    disabled_reason: str | None
    created_at: datetime
    cursor: int
    next_attempt_at: datetime
    failures: int
    failing_since: datetime | None
    last_error: str | None
    delivered: int

    @classmethod
    def from_row(cls, row: Row) -> Webhook:
        return record(cls, row, types=tuple(t for t in row["types"].split(",") if t))


@dataclass(frozen=True, slots=True)
class Attempt(FromRow):
    """One post of an event (``event_id`` None: a test) to a webhook, as logged."""

    event_id: int | None
    event_type: str
    at: datetime
    attempt: int
    ok: bool
    status_code: int | None
    error: str | None
    duration_ms: int

    def row(self, webhook_id: str) -> tuple[object, ...]:
        return (
            webhook_id,
            self.event_id,
            self.event_type,
            self.at,
            self.attempt,
            self.ok,
            self.status_code,
            self.error,
            self.duration_ms,
        )

    async def record(self, conn: Conn, webhook_id: str) -> None:
        await record_all(conn, webhook_id, [self])


async def record_all(conn: Conn, webhook_id: str, attempts: Sequence[Attempt]) -> None:
    """Log ``attempts`` of the webhook's."""
    await conn.executemany(_RECORD, [attempt.row(webhook_id) for attempt in attempts])


async def create(
    conn: Conn, *, owner_id: str, url: str, types: str | None, now: datetime
) -> Webhook:
    """A webhook for the owner's events from now on; its secret is in the answer only."""
    wanted = parse_types(types)
    if conn.dialect == "postgresql":
        await conn.execute(_OWNER_LOCK, owner_id)
    if await conn.fetchval(_COUNT, owner_id) >= MAX_PER_OWNER:
        raise Conflict(
            f"An owner has at most {MAX_PER_OWNER} webhooks; delete one first.",
            code="too_many_webhooks",
        )
    webhook_id, secret = new_id("whk"), f"whsec_{secrets.token_urlsafe(32)}"
    start = await feed.last_id(conn, owner_id)
    await conn.execute(_INSERT, webhook_id, owner_id, url, ",".join(wanted), secret, now, start)
    row = await conn.fetchrow(_ONE, webhook_id)
    assert row is not None
    return Webhook.from_row(row)


async def mine(conn: Conn, *, owner_id: str) -> list[Webhook]:
    return [Webhook.from_row(row) for row in await conn.fetch(_MINE, owner_id)]


async def get(conn: Conn, *, webhook_id: str, owner_id: str, lock: bool = False) -> Webhook:
    """The owner's webhook (another owner's does not exist for them)."""
    row = await conn.fetchrow(_ONE_LOCKED if lock else _ONE, webhook_id)
    if row is None or row["owner_id"] != owner_id:
        raise NotFound(f"No webhook {webhook_id!r}.", code="webhook_not_found")
    return Webhook.from_row(row)


async def set_enabled(
    conn: Conn, *, webhook_id: str, owner_id: str, enabled: bool, now: datetime
) -> Webhook:
    """Turn a webhook on again (from the event it stopped at: nothing is skipped) or off."""
    await get(conn, webhook_id=webhook_id, owner_id=owner_id, lock=True)
    if enabled:
        await conn.execute(_ENABLE, webhook_id, now)
    else:
        await conn.execute(_DISABLE, webhook_id, "turned off by its owner")
    return await get(conn, webhook_id=webhook_id, owner_id=owner_id)


async def delete(conn: Conn, *, webhook_id: str, owner_id: str) -> None:
    await get(conn, webhook_id=webhook_id, owner_id=owner_id, lock=True)
    await conn.execute(_DELETE_LOG, webhook_id)
    await conn.execute(_DELETE, webhook_id)


async def log(conn: Conn, *, webhook_id: str, owner_id: str, limit: int) -> list[Attempt]:
    """The webhook's delivery attempts, newest first."""
    await get(conn, webhook_id=webhook_id, owner_id=owner_id)
    return [Attempt.from_row(row) for row in await conn.fetch(_LOG, webhook_id, limit)]


async def prune_log(conn: Conn, *, now: datetime, retention: timedelta) -> int:
    """Forget delivery attempts older than ``retention`` (the sweeper, hourly)."""
    return await conn.execute(_PRUNE_LOG, now - retention)
