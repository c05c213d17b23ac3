"""``Idempotency-Key`` for money-moving POSTs: a retry with the same key and body gets the
first response and moves no more money; the same key with another body is refused.

The key's row is inserted first thing in the request's transaction, so a concurrent
duplicate waits on the unique index until the first commits, then replays its response.
Bodies are compared in canonical form: the validated request, numbers by value (``"1.0"``
and ``1`` are the same duration)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Header, Request, Response
from pydantic import BaseModel

from aitbc.errors import Conflict, Invalid
from aitbc.store.conn import Conn
from aitbc.store.query import Query
from aitbc.store.store import Store

HEADER = "Idempotency-Key"
DESCRIPTION = "Makes a retried request safe: same key and body, same response."
IdempotencyKey = Annotated[str | None, Header(alias=HEADER, description=DESCRIPTION)]
# For endpoints that document their parameters themselves (http.params).
PARAMETER = {
    "name": HEADER,
    "in": "header",
    "required": False,
    "description": DESCRIPTION,
    "schema": {"type": "string", "maxLength": 128},
}
MAX_KEY_LENGTH = 128
_IN_PROGRESS = 0

_CLAIM = Query(
    "INSERT INTO idempotency_keys (owner_id, key, request_hash, status_code, response_body, "
    "created_at) VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT (owner_id, key) DO NOTHING"
)
_FIND = Query(
    "SELECT request_hash, status_code, response_body FROM idempotency_keys "
    "WHERE owner_id = $1 AND key = $2"
)
_REMEMBER = Query(
    "UPDATE idempotency_keys SET status_code = $3, response_body = $4 "
    "WHERE owner_id = $1 AND key = $2"
)


@dataclass(frozen=True, slots=True)
class Reply:
    status_code: int
    body: bytes
    replayed: bool = False

    def response(self) -> Response:
        headers = {"Idempotent-Replayed": "true"} if self.replayed else None
        return Response(
            self.body, status_code=self.status_code, media_type="application/json", headers=headers
        )


def _canonical(value: Any) -> Any:
    """The request as compared between a key's uses: decimals and numbers by value (``1``,
    ``1.0`` and ``"1.0"`` for a decimal field are one request; ``1`` and ``1.0`` inside a
    JSON payload too, marked apart from the string ``"1"``), times in UTC."""
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, int | float) and not isinstance(value, bool):
        # NUL cannot occur in a request (guard.py), so this key cannot collide with one.
        return {"\x00number": format(Decimal(repr(value)).normalize(), "f")}
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, dict):
        return {k: _canonical(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_canonical(v) for v in value]
    return value


def request_digest(method: str, path: str, body: BaseModel | None) -> str:
    payload = {
        "method": method,
        "path": path,
        "body": _canonical(body.model_dump()) if body is not None else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def key_of(request: Request) -> str | None:
    key = request.headers.get(HEADER) or None
    if key is not None and len(key) > MAX_KEY_LENGTH:
        raise Invalid(
            f"Idempotency-Key is at most {MAX_KEY_LENGTH} characters.", code="validation_error"
        )
    return key


async def run_once(
    conn: Conn,
    *,
    owner_id: str,
    key: str | None,
    digest: str,
    now: datetime,
    status_code: int,
    action: Callable[[], Awaitable[bytes]],
) -> Reply:
    """Run ``action`` (which returns the response body) unless this key already has a
    response, which is returned instead."""
    if key is None:
        return Reply(status_code, await action())
    if not await conn.execute(_CLAIM, owner_id, key, digest, now):
        found = await conn.fetchrow(_FIND, owner_id, key)
        assert found is not None
        if found["request_hash"] != digest:
            raise Invalid(
                "This Idempotency-Key was used with a different request.",
                code="idempotency_key_reused",
            )
        if found["status_code"] == _IN_PROGRESS:
            raise Conflict(
                "A request with this Idempotency-Key is in progress.", code="in_progress"
            )
        return Reply(found["status_code"], found["response_body"].encode(), replayed=True)
    body = await action()
    await conn.execute(_REMEMBER, owner_id, key, status_code, body.decode())
    return Reply(status_code, body)


async def write_once(
    request: Request,
    store: Store,
    owner_id: str,
    body: BaseModel | None,
    now: datetime,
    action: Callable[[Conn], Awaitable[bytes]],
    status_code: int = 200,
) -> Response:
    """One write transaction on the store that runs ``action`` once per Idempotency-Key:
    the response, first or replayed."""
    key = key_of(request)
    digest = request_digest(request.method, request.url.path, body) if key else ""

    async def work(conn: Conn) -> Reply:
        return await run_once(
            conn,
            owner_id=owner_id,
            key=key,
            digest=digest,
            now=now,
            status_code=status_code,
            action=lambda: action(conn),
        )

    return (await store.write(work)).response()


async def respond_once(
    request: Request,
    store: Store,
    owner_id: str,
    body: BaseModel | None,
    now: datetime,
    make: Callable[[Conn], Awaitable[BaseModel]],
    status_code: int = 200,
) -> Response:
    """``write_once`` for an action whose answer is a model."""

    async def action(conn: Conn) -> bytes:
        return (await make(conn)).model_dump_json().encode()

    return await write_once(request, store, owner_id, body, now, action, status_code)
