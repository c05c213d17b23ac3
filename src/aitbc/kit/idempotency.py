"""``Idempotency-Key`` for money-moving POSTs: a retry with the same key and body gets the
first response and moves no more money; the same key with another body is refused.

The key's row is inserted at the start of the transaction, so a concurrent duplicate waits on
the unique index until the first commits, then replays its response."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import Header, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aitbc.errors import Conflict, Invalid
from aitbc.models import IdempotencyRecord

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Makes a retried request safe: same key and body, same response.",
    ),
]
_IN_PROGRESS = 0


def request_hash(method: str, path: str, body: BaseModel | None) -> str:
    payload = {
        "method": method,
        "path": path,
        "body": body.model_dump(mode="json") if body else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _replay(record: IdempotencyRecord, digest: str) -> JSONResponse:
    if record.request_hash != digest:
        raise Invalid(
            "This Idempotency-Key was used with a different request.",
            code="idempotency_key_reused",
        )
    if record.status_code == _IN_PROGRESS:
        raise Conflict("A request with this Idempotency-Key is in progress.", code="in_progress")
    return JSONResponse(
        json.loads(record.response_body),
        status_code=record.status_code,
        headers={"Idempotent-Replayed": "true"},
    )


def claim(
    session: Session, *, owner_id: str, key: str | None, digest: str, now: datetime
) -> JSONResponse | None:
    """The stored response to replay, or None after claiming the key for this request."""
    if not key:
        return None
    if len(key) > 128:
        raise Invalid("Idempotency-Key is at most 128 characters.", code="validation_error")
    record = session.get(IdempotencyRecord, (owner_id, key))
    if record is not None:
        return _replay(record, digest)
    try:
        with session.begin_nested():
            session.add(
                IdempotencyRecord(
                    owner_id=owner_id,
                    key=key,
                    request_hash=digest,
                    status_code=_IN_PROGRESS,
                    response_body="",
                    created_at=now,
                )
            )
    except IntegrityError:
        record = session.get(IdempotencyRecord, (owner_id, key), populate_existing=True)
        assert record is not None
        return _replay(record, digest)
    return None


def remember(
    session: Session, *, owner_id: str, key: str | None, status_code: int, body: Any
) -> None:
    if not key:
        return
    record = session.get(IdempotencyRecord, (owner_id, key))
    assert record is not None
    record.status_code = status_code
    record.response_body = json.dumps(body)
    session.flush()


def run_once(
    session: Session,
    request: Request,
    *,
    owner_id: str,
    key: str | None,
    body: BaseModel | None,
    now: datetime,
    status_code: int,
    action: Callable[[], BaseModel],
) -> BaseModel | JSONResponse:
    """Run ``action`` unless this key already has a response, which is returned instead."""
    digest = request_hash(request.method, request.url.path, body)
    replay = claim(session, owner_id=owner_id, key=key, digest=digest, now=now)
    if replay is not None:
        return replay
    result = action()
    remember(
        session,
        owner_id=owner_id,
        key=key,
        status_code=status_code,
        body=result.model_dump(mode="json"),
    )
    return result
