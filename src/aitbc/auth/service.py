"""API keys: random secrets shown once, stored as SHA-256 (see auth.principal for lookups)."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from aitbc.auth.principal import BOOTSTRAP_ADMIN_OWNER, hash_key
from aitbc.errors import Conflict, NotFound
from aitbc.kit.ids import new_id
from aitbc.models import ApiKey

KEY_PREFIX = "aitbc_"


def create_key(session: Session, *, role: str, owner_id: str, now: datetime) -> tuple[ApiKey, str]:
    """A new key for ``owner_id`` acting as ``role``. An owner has one role: a client key
    for a miner's id would share the miner's account and see its bookings and jobs."""
    if session.get_bind().dialect.name == "postgresql":  # SQLite's writers take turns
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext('api_key_owner:' || :owner))"),
            {"owner": owner_id},
        )
    held = session.scalar(select(ApiKey.role).where(ApiKey.owner_id == owner_id).limit(1))
    if owner_id == BOOTSTRAP_ADMIN_OWNER and role != "admin":
        held = "admin"
    if held is not None and held != role:
        raise Conflict(
            f"{owner_id!r} is already a {held}; an owner has one role. Choose another owner id.",
            code="owner_role_taken",
        )
    secret = KEY_PREFIX + secrets.token_urlsafe(32)
    key = ApiKey(
        id=new_id("key"),
        key_hash=hash_key(secret),
        prefix=secret[: len(KEY_PREFIX) + 6],
        role=role,
        owner_id=owner_id,
        created_at=now,
    )
    session.add(key)
    session.flush()
    return key, secret


def list_keys(
    session: Session, *, role: str | None, owner_id: str | None, limit: int, offset: int
) -> list[ApiKey]:
    query = select(ApiKey).order_by(ApiKey.created_at, ApiKey.id).limit(limit).offset(offset)
    if role is not None:
        query = query.where(ApiKey.role == role)
    if owner_id is not None:
        query = query.where(ApiKey.owner_id == owner_id)
    return list(session.scalars(query))


def revoke_key(session: Session, *, key_id: str, now: datetime) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key {key_id!r}.", code="api_key_not_found")
    if key.revoked_at is None:
        key.revoked_at = now
        session.flush()
    return key


def has_admin_key(session: Session) -> bool:
    query = select(ApiKey.id).where(ApiKey.role == "admin", ApiKey.revoked_at.is_(None))
    return session.execute(query.limit(1)).first() is not None
