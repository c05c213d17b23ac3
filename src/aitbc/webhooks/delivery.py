"""Delivery's bookkeeping, in the database (the posting itself is ``aitbc.dispatcher``).

A webhook goes through its owner's events in id order; ``cursor`` is the last one handled
(delivered, or skipped as a type it does not want). A process takes a webhook with a lease
(``claim``) so that one process at a time delivers it, and every step checks the lease is
still its own. An event is posted until the receiver answers 2xx: the next one waits, so a
receiver sees each object's events in order. Failures back off to hourly; a webhook failing
for ``give_up`` without a success is disabled, with a ``webhook.disabled`` event, and picks
up at the same event when its owner turns it on again."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from aitbc.events import feed
from aitbc.events.log import emit
from aitbc.store.conn import Conn
from aitbc.store.query import Query
from aitbc.store.values import iso, maybe_time
from aitbc.webhooks.service import COLUMNS, Attempt, Webhook, record_all

LONGEST_WAIT = timedelta(hours=1)
# Enabled, due, held by no process, with events after its cursor.
_DUE = """
    w.enabled AND w.next_attempt_at <= $1 AND (w.lease_until IS NULL OR w.lease_until < $1)
    AND EXISTS (SELECT 1 FROM event_recipients r
                WHERE r.owner_id = w.owner_id AND r.event_id > w.cursor)
"""
_ANY_DUE = Query(f"SELECT 1 FROM webhooks w WHERE {_DUE} LIMIT 1")
_CLAIM = Query(
    f"""
UPDATE webhooks SET lease_until = $2, lease_token = $3
WHERE id IN (
    SELECT w.id FROM webhooks w WHERE {_DUE}
    ORDER BY w.next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)
RETURNING {COLUMNS}
"""
)
_ADVANCE = Query(
    "UPDATE webhooks SET cursor = $3, delivered = delivered + $4, failures = 0, "
    "failing_since = NULL, last_error = NULL, lease_until = $5 "
    "WHERE id = $1 AND lease_token = $2"
)
_FAILED = Query(
    "UPDATE webhooks SET failures = failures + 1, failing_since = coalesce(failing_since, $3), "
    "last_error = $4, next_attempt_at = $5, lease_until = NULL, lease_token = NULL "
    "WHERE id = $1 AND lease_token = $2 RETURNING failing_since"
)
_GIVE_UP = Query(
    "UPDATE webhooks SET enabled = FALSE, disabled_reason = $2 WHERE id = $1 AND enabled"
)
_RELEASE = Query(
    "UPDATE webhooks SET lease_until = NULL, lease_token = NULL WHERE id = $1 AND lease_token = $2"
)


def backoff(failures: int, first: float = 5.0) -> timedelta:
    """The wait after the ``failures``-th failure in a row: ``first`` seconds, doubling, at
    most an hour."""
    return min(LONGEST_WAIT, timedelta(seconds=first * 2 ** min(failures - 1, 20)))


async def any_due(conn: Conn, *, now: datetime) -> bool:
    """Whether a webhook has events to deliver now (a read, before any write)."""
    return await conn.fetchrow(_ANY_DUE, now) is not None


async def claim(
    conn: Conn, *, now: datetime, lease: timedelta, token: str, limit: int
) -> list[Webhook]:
    """Webhooks with events to deliver that no process holds, now held by ``token``."""
    rows = await conn.fetch(_CLAIM, now, now + lease, token, limit)
    return [Webhook.from_row(row) for row in rows]


async def pending(conn: Conn, hook: Webhook, *, limit: int) -> tuple[list[feed.EventRecord], int]:
    """The webhook's events after its cursor, of the types it wants, and the owner's newest
    event when they were read: once every one of them is delivered (fewer than ``limit``),
    the cursor moves there, past the events of other types."""
    through = await feed.last_id(conn, hook.owner_id)
    found = await feed.after(
        conn, hook.owner_id, cursor=hook.cursor, types=hook.types, limit=limit, through=through
    )
    return found, through


async def advanced(
    conn: Conn,
    hook: Webhook,
    *,
    token: str,
    cursor: int,
    attempts: Sequence[Attempt],
    now: datetime,
    lease: timedelta,
) -> bool:
    """The events up to ``cursor`` are handled (``attempts``: the deliveries since the last
    step, logged now); False when the lease is no longer ``token``'s."""
    if not await conn.execute(_ADVANCE, hook.id, token, cursor, len(attempts), now + lease):
        return False
    await record_all(conn, hook.id, attempts)
    return True


async def failed(
    conn: Conn,
    hook: Webhook,
    *,
    token: str,
    attempt: Attempt,
    give_up: timedelta,
    first_retry: float,
) -> None:
    """The delivery failed: logged, the next try backed off; after ``give_up`` of failures
    the webhook is disabled and its owner told."""
    now = attempt.at
    retry_at = now + backoff(hook.failures + 1, first_retry)
    since = await conn.fetchval(_FAILED, hook.id, token, now, attempt.error, retry_at)
    if since is None:
        return  # the lease was lost: the process that holds it now logs its own attempts
    await attempt.record(conn, hook.id)
    failing_since = maybe_time(since)
    if failing_since is not None and now - failing_since >= give_up:
        reason = f"failed for {give_up} without a success; last error: {attempt.error}"
        if await conn.execute(_GIVE_UP, hook.id, reason[:256]):
            emit(
                conn,
                "webhook.disabled",
                subject_id=hook.id,
                data={
                    "webhook_id": hook.id,
                    "url": hook.url,
                    "failing_since": iso(failing_since),
                    "last_error": attempt.error,
                    "stopped_at_event": attempt.event_id,
                },
                owners=(hook.owner_id,),
                at=now,
            )


async def release(conn: Conn, hook: Webhook, *, token: str) -> None:
    await conn.execute(_RELEASE, hook.id, token)
