"""API keys: random secrets shown once, stored as SHA-256 (see auth.principal for lookups)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aitbc.auth.principal import BOOTSTRAP_ADMIN_OWNER, hash_key
from aitbc.errors import Conflict, NotFound
from aitbc.kit.ids import new_id
from aitbc.models.account import PLATFORM_OWNER, WORLD_OWNER
from aitbc.store.conn import Conn
from aitbc.store.query import Query, built
from aitbc.store.records import FromRow

KEY_PREFIX = "aitbc_"
_COLUMNS = "id, prefix, role, owner_id, created_at, revoked_at"
_OWNER_LOCK = Query.postgresql_only(
    "SELECT pg_advisory_xact_lock(hashtext('api_key_owner:' || $1))"
)
_ROLE_HELD = Query("SELECT role FROM api_keys WHERE owner_id = $1 LIMIT 1")
_INSERT = Query(
    "INSERT INTO api_keys (id, key_hash, prefix, role, owner_id, created_at) "
    "VALUES ($1, $2, $3, $4, $5, $6)"
)
_KEY = Query(f"SELECT {_COLUMNS} FROM api_keys WHERE id = $1")
_REVOKE = Query("UPDATE api_keys SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
# Owner ids only admins' keys may take: the first admin's, and the platform's own accounts
# (its fees, the outside world deposits come from).
_ADMINS_ONLY = frozenset({BOOTSTRAP_ADMIN_OWNER, PLATFORM_OWNER, WORLD_OWNER})
_AN_ADMIN_KEY = Query("SELECT id FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL LIMIT 1")


@dataclass(frozen=True, slots=True)
class ApiKey(FromRow):
    """A key as it is shown: never its secret."""

    id: str
    prefix: str
    role: str
    owner_id: str
    created_at: datetime
    revoked_at: datetime | None


async def create_key(conn: Conn, *, role: str, owner_id: str, now: datetime) -> tuple[ApiKey, str]:
    """A new key for ``owner_id`` acting as ``role``. An owner has one role: a client key
    for a miner's id would share the miner's account and see its bookings and jobs."""
    if conn.dialect == "postgresql":  # SQLite's writers take turns
        await conn.execute(_OWNER_LOCK, owner_id)
    held = await conn.fetchval(_ROLE_HELD, owner_id)
    if owner_id in _ADMINS_ONLY and role != "admin":
        held = "admin"  # an admin may read the platform's fees; a client would spend them
    if held is not None and held != role:
        raise Conflict(
            f"{owner_id!r} is already a {held}; an owner has one role. Choose another owner id.",
            code="owner_role_taken",
        )
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=new_id("key"),
        prefix=secret[: len(KEY_PREFIX) + 6],
        role=role,
        owner_id=owner_id,
        created_at=now,
        revoked_at=None,
    )
    await conn.execute(_INSERT, key.id, hash_key(secret), key.prefix, role, owner_id, now)
    return key, secret


async def list_keys(
    conn: Conn, *, role: str | None, owner_id: str | None, limit: int, offset: int
) -> list[ApiKey]:
    where: list[str] = []
    args: list[Any] = []
    for column, value in (("role", role), ("owner_id", owner_id)):
        if value is not None:
            args.append(value)
            where.append(f"{column} = ${len(args)}")
    args += [limit, offset]
    query = built(
        f"SELECT {_COLUMNS} FROM api_keys {'WHERE ' + ' AND '.join(where) if where else ''} "
        f"ORDER BY created_at, id LIMIT ${len(args) - 1} OFFSET ${len(args)}"
    )
    return [ApiKey.from_row(row) for row in await conn.fetch(query, *args)]


async def revoke_key(conn: Conn, *, key_id: str, now: datetime) -> ApiKey:
    await conn.execute(_REVOKE, key_id, now)
    row = await conn.fetchrow(_KEY, key_id)
    if row is None:
        raise NotFound(f"No API key {key_id!r}.", code="api_key_not_found")
    return ApiKey.from_row(row)


async def bootstrap_admin(conn: Conn, *, now: datetime) -> str | None:
    """On a database with no admin key, create one and return its secret (to be printed
    once); else None."""
    if await conn.fetchval(_AN_ADMIN_KEY) is not None:
        return None
    _, secret = await create_key(conn, role="admin", owner_id="admin", now=now)
    return secret
